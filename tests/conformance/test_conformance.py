"""The engine's promises hold for every pair: one suite, parametrised over every registered flow.

A new pair joins by adding its harness to ``harnesses.HARNESSES``; it cannot skip a check.
"""

from __future__ import annotations

import inspect

import pytest

from integrations.flows import flow_kinds

from . import checks
from .checks import CHECKS
from .harnesses import HARNESSES


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_every_pair_keeps_the_engines_promises(harness, check):
    check(harness)


def test_every_registered_pair_has_a_harness():
    covered = {harness.kind for harness in HARNESSES.values()}
    missing = sorted(kind for kind, _ in flow_kinds() if kind not in covered)
    assert not missing, f"pairs without a conformance harness (add one to tests/conformance/harnesses.py): {missing}"


def test_every_check_of_the_module_is_in_the_suite():
    defined = {name for name, fn in inspect.getmembers(checks, inspect.isfunction) if name.startswith("check_")}
    assert defined == {check.__name__ for check in CHECKS}
