"""Every check of the suite runs against every pair's harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harnesses import HARNESSES
from .pairs import PairHarness


@pytest.fixture(params=sorted(HARNESSES))
def harness(request, db, monkeypatch) -> Iterator[PairHarness]:
    with HARNESSES[request.param](monkeypatch).running() as running:
        yield running
