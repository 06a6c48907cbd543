"""Sustained lost answers: a page written in several batch calls keeps the outcomes of the calls
that were answered, and retries only the others (looked up first) in the same run.

Found by the conformance suite: a page used to fail as a whole when any one of its calls lost its
answer, and under a quarter of answers lost the backlog of failed invoices never drained.
"""

from __future__ import annotations

import pytest

from integrations.models import RecordStatus
from integrations.sandbox.base import Faults

from .checks import PAGE
from .harnesses import SageX3InvoicesHarness

pytestmark = pytest.mark.django_db

ROUNDS = 6


@pytest.mark.slow
def test_invoices_converge_when_small_batches_lose_a_quarter_of_their_answers(monkeypatch):
    with SageX3InvoicesHarness(monkeypatch).running() as h:
        h.prepare()
        h.configure(page_size=PAGE, batch_size=2)  # headers and lines: several write calls per page
        h.add_records(4 * PAGE)
        h.set_target_faults(Faults(drop_rate=0.25, seed=8))  # lost answers only, nothing else
        unsynced = []
        for _ in range(ROUNDS):
            h.failed_records_come_due()
            h.run_round()
            unsynced.append(sum(r.status != RecordStatus.SYNCED for r in h.records().values()))
        doubled = {key: len(rows) for key, rows in h.target_rows().items() if len(rows) > 1}
        assert not doubled, f"lost answers doubled rows: {doubled}"
        assert unsynced[-1] == 0, f"records still not synced after each of {ROUNDS} rounds: {unsynced}"
