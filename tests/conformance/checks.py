"""The engine's promises, as checks any pair must pass. Each raises AssertionError when broken.

A check takes a running :class:`~tests.conformance.pairs.PairHarness` and uses nothing else,
so the same check holds every pair (and the deliberately broken fake flows) to the same rule.
"""

from __future__ import annotations

from collections import Counter

from integrations.models import RecordStatus, RunStatus, StreamState, SyncAttempt, SyncRun
from integrations.sandbox.base import Faults

from .pairs import PairHarness, WorkerKilled

PAGE = 4  # small pages: every rule is exercised across page boundaries
MAX_BUDGET_RUNS = 30
MAX_ROUNDS = 12


# --- what every check ends with ----------------------------------------------------------------
def assert_target_matches_source(h: PairHarness, *, written_once: bool = False) -> None:
    """Every source record is in the target exactly once, with its current value, and our records
    point at those rows. ``written_once``: no row was ever written twice (not even rewritten)."""
    expected = h.source_values()
    rows = h.target_rows()
    lost = sorted(set(expected) - set(rows))
    assert not lost, f"{len(lost)} record(s) never reached the target: {lost[:10]}"
    doubled = {key: len(found) for key, found in rows.items() if len(found) > 1}
    assert not doubled, f"{len(doubled)} record(s) written as several target rows: {dict(list(doubled.items())[:10])}"
    strangers = sorted(set(rows) - set(expected))
    assert not strangers, f"target rows for records the source does not have: {strangers[:10]}"
    stale = {key: (rows[key][0].value, value) for key, value in expected.items() if rows[key][0].value != value}
    assert not stale, f"target rows that differ from the source (target, source): {dict(list(stale.items())[:10])}"
    records = h.records()
    unsettled = {key: (r.status, r.error_message[:80]) for key, r in records.items() if r.status != RecordStatus.SYNCED}
    assert not unsettled, f"records not synced: {dict(list(unsettled.items())[:10])}"
    assert set(records) == set(expected), f"lineage missing for {sorted(set(expected) - set(records))[:10]}"
    unlinked = sorted(key for key, r in records.items() if r.target_id != rows[key][0].id)
    assert not unlinked, f"records that do not point at their target row: {unlinked[:10]}"
    if written_once:
        rewritten = {key: found[0].version for key, found in rows.items() if found[0].version}
        assert not rewritten, f"target rows written more than once: {dict(list(rewritten.items())[:10])}"


def assert_one_attempt_each(h: PairHarness) -> None:
    attempts = Counter(SyncAttempt.objects.filter(record__integration=h.integration, record__stream=h.main_stream)
                       .values_list("record__source_key", flat=True))
    again = {key: n for key, n in attempts.items() if n > 1}
    assert not again, f"records attempted more than once: {dict(list(again.items())[:10])}"


def assert_rerun_writes_nothing(h: PairHarness) -> None:
    before = h.gate.writes
    run = h.run()
    assert run.status == RunStatus.SUCCEEDED, (run.status, run.error)
    assert (run.created, run.updated, run.failed) == (0, 0, 0), run.counts()
    assert h.gate.writes == before, f"an unchanged re-run sent {h.gate.writes - before} write call(s)"


# --- the checks ----------------------------------------------------------------------------------
def check_an_unchanged_rerun_writes_nothing(h: PairHarness) -> None:
    h.prepare()
    h.configure(page_size=PAGE)
    h.add_records(3)
    h.add_records(PAGE + 1, tie="batch")
    first = h.run()
    assert first.status == RunStatus.SUCCEEDED, (first.status, first.error)
    assert_target_matches_source(h, written_once=True)

    assert_rerun_writes_nothing(h)
    # Forget the watermark: everything is read again, found unchanged by its hash, nothing sent.
    StreamState.objects.filter(pk=h.state().pk).update(cursor="", checkpoint={})
    before = h.gate.writes
    reread = h.run()
    assert reread.status == RunStatus.SUCCEEDED, (reread.status, reread.error)
    assert reread.read == reread.unchanged == len(h.source_values()), reread.counts()
    assert h.gate.writes == before, f"re-reading unchanged records sent {h.gate.writes - before} write call(s)"
    assert_target_matches_source(h, written_once=True)


def check_records_sharing_a_cursor_across_page_boundaries_arrive_once(h: PairHarness) -> None:
    h.prepare()
    h.configure(page_size=PAGE)
    h.add_records(2)
    tied = h.add_records(2 * PAGE + 3, tie="bulk")  # one update time, across at least two page boundaries
    run = h.run()
    assert run.status == RunStatus.SUCCEEDED, (run.status, run.error)
    assert_target_matches_source(h, written_once=True)
    assert_one_attempt_each(h)
    assert tied[-1] in h.records()

    # Another record stamped at the watermark's very time: picked up, the others not written again.
    h.add_records(1, tie="bulk")
    again = h.run()
    assert (again.created, again.updated, again.failed) == (1, 0, 0), again.counts()
    assert_target_matches_source(h, written_once=True)
    assert_one_attempt_each(h)
    assert_rerun_writes_nothing(h)


def check_a_run_cut_by_its_call_budget_resumes_exactly(h: PairHarness) -> None:
    h.prepare()
    h.configure(page_size=PAGE, batch_size=PAGE)
    h.add_records(3)
    # Spread over two pages, not more: a run re-reads the pages of its checkpoint's time, so a
    # tie filling more pages than the budget allows is refused (with what to change) by design.
    h.add_records(PAGE + 2, tie="bulk")
    h.add_records(2 * PAGE)
    total = len(h.source_values())
    h.limit_calls(h.budget)

    runs: list[SyncRun] = []
    for _ in range(MAX_BUDGET_RUNS):
        run = h.run()
        runs.append(run)
        if run.status != RunStatus.PARTIAL:
            break
        state = h.state()
        assert state.resume.get("reason") == "call budget reached", state.resume
        assert state.resume.get("cursor") == state.cursor, "the resume point is the checkpoint"
    statuses = [r.status for r in runs]
    assert statuses[-1] == RunStatus.SUCCEEDED, (statuses, runs[-1].error)
    assert statuses.count(RunStatus.PARTIAL) >= 1, "the budget cut the work into several runs"
    assert_target_matches_source(h, written_once=True)
    assert sum(r.created for r in runs) == total, [r.counts() for r in runs]
    assert sum(r.updated for r in runs) == 0, [r.counts() for r in runs]
    if h.budget_side == "source":  # nothing was sent past a budget: no record needed a second attempt
        assert_one_attempt_each(h)
    assert h.state().resume == {}
    assert_rerun_writes_nothing(h)


def check_a_failed_page_read_leaves_the_checkpoint_on_what_was_written(h: PairHarness) -> None:
    h.prepare()
    h.configure(page_size=PAGE)
    h.add_records(2 * PAGE)
    h.add_records(PAGE + 1, tie="bulk")
    h.add_records(PAGE)
    h.source_gate.outage_from(call=3)  # the source goes down in the middle of the run's reads
    interrupted = h.run()
    # a source outage is temporary: the run is interrupted (retried next run), nobody is paged
    assert interrupted.status == RunStatus.INTERRUPTED, (interrupted.status, interrupted.counts())

    h.source_gate.outage_over()
    healed = h.run()
    assert healed.status == RunStatus.SUCCEEDED, (healed.status, healed.error)
    assert_target_matches_source(h, written_once=True)
    assert_rerun_writes_nothing(h)


def check_a_worker_killed_mid_page_resumes_without_loss_or_doubles(h: PairHarness) -> None:
    h.prepare()
    h.configure(page_size=PAGE, batch_size=PAGE // 2)  # at least two write calls per page
    h.add_records(3 * PAGE)
    h.gate.kill_after(writes=3)  # the third write call commits, then the worker dies: mid-page
    try:
        h.run()
    except WorkerKilled:
        pass
    else:
        raise AssertionError("the worker was not killed: the stream wrote fewer than three calls")

    killed = SyncRun.objects.get(integration=h.integration, stream=h.main_stream, status=RunStatus.RUNNING)
    assert h.state().lock_token, "a dead worker leaves its lock behind"
    pending = {k for k, r in h.records().items() if r.status == RecordStatus.PENDING}
    assert pending, "the write intent of the killed page is on disk"
    in_target = set(h.target_rows())
    assert pending & in_target, "the kill came after the target committed part of the page"
    assert h.run().status == RunStatus.SKIPPED, "a lock that still looks alive keeps a second run out"

    h.lock_goes_stale()
    resumed = h.run()
    assert resumed.status == RunStatus.SUCCEEDED, (resumed.status, resumed.error)
    killed.refresh_from_db()
    assert killed.status == RunStatus.FAILED and killed.finished_at, "the dead worker's run is closed"
    assert_target_matches_source(h)
    assert_rerun_writes_nothing(h)


def check_a_response_lost_after_commit_never_doubles_a_row(h: PairHarness) -> None:
    h.prepare()
    h.configure(page_size=PAGE)
    h.add_records(2 * PAGE)

    # One answer lost: the same run looks the page up and finishes it.
    h.gate.drop_answers(1)
    run = h.run()
    assert h.gate.lost == 1, "the answer of the first write call was lost"
    assert run.status == RunStatus.SUCCEEDED and run.failed == 0, (run.status, run.counts(), run.error)
    assert_target_matches_source(h)

    # Every answer lost for a whole run: each write committed once however often it was resent...
    h.edit_records(sorted(h.source_values())[:PAGE])
    h.add_records(PAGE)
    h.set_target_faults(Faults(drop_rate=1.0))
    lost = h.run()
    # a target whose rows can be read back by source identity verifies them (nothing fails, nothing
    # is written twice); one that cannot fails them, to be retried
    assert lost.failed > 0 or lost.status == RunStatus.SUCCEEDED, (lost.status, lost.counts(), lost.error)
    doubled = {key: len(rows) for key, rows in h.target_rows().items() if len(rows) > 1}
    assert not doubled, f"resent writes made several rows: {doubled}"

    # ...and once the answers arrive again, the retries find the rows instead of creating them.
    h.set_target_faults(Faults())
    h.failed_records_come_due()
    healed = h.run()
    assert healed.status == RunStatus.SUCCEEDED and healed.failed == 0, (healed.counts(), healed.error)
    assert healed.created == 0, f"{healed.created} row(s) created again instead of found"
    assert_target_matches_source(h)
    assert_rerun_writes_nothing(h)


def check_repeated_runs_under_faults_converge_to_the_source(h: PairHarness, *, seed: int = 7, drop_rate: float = 0.1,
                                                           rounds: int = MAX_ROUNDS) -> None:
    h.prepare()
    # The target's own batch size: a page is then one write call per table, as in production
    # (see test_known_limits.py for what many calls per page do under lost answers).
    h.configure(page_size=PAGE)
    h.add_records(PAGE)
    h.add_records(2 * PAGE, tie="bulk")
    h.add_records(PAGE)
    h.gate.drop_answers(2)  # one lost answer for certain, whatever the seed does
    h.set_source_faults(Faults(error_rate=0.15, burst_429_rate=0.05, burst_429_length=2, retry_after=0, seed=seed))
    h.set_target_faults(Faults(error_rate=0.2, burst_429_rate=0.05, burst_429_length=2, retry_after=0,
                               drop_rate=drop_rate, seed=seed + 1))
    calm = 0
    for round_no in range(1, rounds + 1):
        h.failed_records_come_due()
        runs = h.run_round()
        if round_no == 1:  # the source moves on while the sync catches up
            h.edit_records(sorted(h.source_values())[:3])
            h.add_records(2, tie="late")
            calm = 0
            continue
        records = h.records()
        settled = (all(r.status == RunStatus.SUCCEEDED for r in runs) and set(records) == set(h.source_values())
                   and all(r.status == RecordStatus.SYNCED for r in records.values()))
        calm = calm + 1 if settled else 0
        if calm == 2:
            break
    else:
        raise AssertionError(f"not settled after {rounds} rounds: " + str(sorted(
            (k, r.status, r.error_message[:80]) for k, r in h.records().items()
            if r.status != RecordStatus.SYNCED)[:5]))
    assert h.gate.lost, "committed writes lost their answer on the way"
    h.set_source_faults(Faults())
    h.set_target_faults(Faults())
    assert_target_matches_source(h)
    assert_rerun_writes_nothing(h)


CHECKS = (
    check_an_unchanged_rerun_writes_nothing,
    check_records_sharing_a_cursor_across_page_boundaries_arrive_once,
    check_a_run_cut_by_its_call_budget_resumes_exactly,
    check_a_failed_page_read_leaves_the_checkpoint_on_what_was_written,
    check_a_worker_killed_mid_page_resumes_without_loss_or_doubles,
    check_a_response_lost_after_commit_never_doubles_a_row,
    check_repeated_runs_under_faults_converge_to_the_source,
)
