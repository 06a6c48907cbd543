"""X3 → ServiceNow converges within three rounds when ServiceNow loses acknowledgements per item.

ServiceNow commits each write of a batch and then, for 10 % of the items, the connection is
dropped (the whole answer is lost); 5 % of items are answered 503 without being run; 5 % of calls
fail 503 before being processed; 429 bursts; tokens that live 30 seconds. Batches of 20 items.
Once the approver has approved the mappings (before any fault), the scheduler's rounds of
``run_integration`` alone must reach the exact target state in at most three rounds: nothing
replayed by hand, nothing duplicated. The rounds and HTTP calls are printed (``-s``) and
attached to the test report.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from integrations.engine.runner import run_integration
from integrations.models import RecordStatus, SyncRecord
from integrations.sandbox.base import Faults
from integrations.sandbox.clock import ManualClock
from tests.support import (
    INVOICE,
    INVOICE_LINE,
    PO,
    PO_LINE,
    REFERENCE_STREAMS,
    SUPPLIER,
    approve_all_mappings,
    assert_invoices_match_x3,
    assert_purchase_orders_match_x3,
    assert_suppliers_match_x3,
    make_failed_records_due,
    set_integration_settings,
    skey,
)

from .test_convergence import assert_references_resolve

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

MAX_ROUNDS = 3
BATCH = "/api/now/v1/batch"
# the source side: 503s, 429 bursts and short tokens too (it loses no write: it is only read)
X3_FAULTS = Faults(error_rate=0.05, burst_429_rate=0.05, burst_429_length=2, retry_after=0, token_lifetime=30,
                   seed=5)


def lost_acks(seed: int, mode: str = "after_batch") -> Faults:
    return Faults(item_drop_rate=0.1, item_drop_mode=mode, item_error_rate=0.05, error_rate=0.05,
                  burst_429_rate=0.05, burst_429_length=2, retry_after=0, token_lifetime=30, seed=seed)


def converged(integration, x3_sim) -> bool:
    wanted = {"suppliers": len(x3_sim.records("BPSUPPLIER")), "purchase_orders": len(x3_sim.records("PORDER")),
              "invoices": len(x3_sim.records("PINVOICE"))}
    return all(SyncRecord.objects.filter(integration=integration, stream=stream, status=RecordStatus.SYNCED).count()
               == count for stream, count in wanted.items())


def play(integration, x3_sim, sn_sim, clock) -> tuple[int, int]:
    """Rounds of the scheduler until converged (at most MAX_ROUNDS); returns (rounds, HTTP calls)."""
    before = len(sn_sim.requests) + len(x3_sim.requests)
    rounds = 0
    while rounds < MAX_ROUNDS and not converged(integration, x3_sim):
        rounds += 1
        run_integration(integration)
        make_failed_records_due(integration)  # the retry schedule's time has come
        clock.advance(31)  # every 30-second token handed out so far has expired
    return rounds, len(sn_sim.requests) + len(x3_sim.requests) - before


@pytest.mark.parametrize(("seed", "mode"), [(11, "after_batch"), (12, "mid_batch"), (13, "after_batch")])
def test_x3_to_servicenow_converges_in_three_rounds_under_per_item_lost_acks(
        integration, x3_sim, sn_sim, seed, mode, record_property):
    set_integration_settings(integration, page_size=50, batch_size=20)
    run_integration(integration, streams=REFERENCE_STREAMS)  # the approver's visit, before any fault
    approve_all_mappings(integration)
    clock = ManualClock(datetime.now(UTC))
    x3_sim.set_clock(clock)
    sn_sim.auth.timer = lambda: clock().timestamp()
    sn_sim.set_faults(lost_acks(seed, mode))
    x3_sim.set_faults(X3_FAULTS)
    start = len(sn_sim.requests)

    rounds, calls = play(integration, x3_sim, sn_sim, clock)
    sent = sn_sim.requests[start:]
    batches = sum(1 for r in sent if r.path == BATCH)
    lookups = sum(1 for r in sent if "u_source_keyIN" in (r.param("sysparm_query") or ""))
    print(f"\nX3 → ServiceNow, seed {seed}, {mode}: {rounds} round(s), {calls} HTTP calls "
          f"({batches} batch calls, {lookups} look-ups by source identity)")
    assert lookups, "acknowledgements were lost, and the rows were looked up"
    record_property("rounds", rounds)
    record_property("http_calls", calls)

    assert converged(integration, x3_sim), (rounds, list(
        SyncRecord.objects.exclude(status=RecordStatus.SYNCED).values_list("stream", "source_key", "status",
                                                                          "error_message")[:10]))
    for table in (SUPPLIER, PO, PO_LINE, INVOICE, INVOICE_LINE):
        doubled = {key: n for key, n in Counter(skey(r) for r in sn_sim.rows(table) if skey(r)).items() if n > 1}
        assert not doubled, f"{table} rows written twice: {doubled}"
    assert_suppliers_match_x3(x3_sim, sn_sim)
    assert_purchase_orders_match_x3(x3_sim, sn_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)
    assert_references_resolve(x3_sim, sn_sim)
    row_of = {skey(r): r["sys_id"] for r in sn_sim.rows(INVOICE)}
    assert all(r.target_id == row_of[r.source_key] for r in SyncRecord.objects.filter(stream="invoices"))


def test_without_shrinking_and_verifying_the_same_faults_do_not_converge_in_three_rounds(
        integration, x3_sim, sn_sim, monkeypatch):
    """The old behaviour, for contrast: every lost batch re-sent whole, at full size, no
    verification and no in-cycle retry of waiting records."""
    from integrations.engine import runner
    from integrations.systems import servicenow

    monkeypatch.setattr(servicenow, "UPSERT_ROUNDS", 1)
    monkeypatch.setattr(servicenow.ServiceNowClient, "_verify", _lookup_only)
    monkeypatch.setattr(servicenow.ServiceNowClient, "batch_now", property(lambda self: self.batch_size,
                                                                           lambda self, value: None), raising=False)
    monkeypatch.setattr(runner, "_retry_waiting", lambda *args: None)
    set_integration_settings(integration, page_size=50, batch_size=20)
    run_integration(integration, streams=REFERENCE_STREAMS)
    approve_all_mappings(integration)
    clock = ManualClock(datetime.now(UTC))
    x3_sim.set_clock(clock)
    sn_sim.auth.timer = lambda: clock().timestamp()
    sn_sim.set_faults(lost_acks(11))
    x3_sim.set_faults(X3_FAULTS)

    play(integration, x3_sim, sn_sim, clock)

    assert not converged(integration, x3_sim)


def _lookup_only(self, table, rows, **_options):
    """The old look-up before a re-send: the sys_id is kept, the row is written again anyway."""
    if rows:
        column = self.source_id_field
        found = self.lookup(table, column, [v for row in rows for v in {row.written_identity, row.key}], fields=[])
        for row in rows:
            hit = found.get(row.written_identity) or found.get(row.key)
            if hit and not row.sys_id:
                row.sys_id = str(hit["sys_id"])
    return {}


# --- dependencies resolved within a run -------------------------------------------------------------
def _suppliers_fail_for_their_whole_run(monkeypatch) -> list[int]:
    """Every write of the suppliers stream fails transiently during its run (all its page attempts)."""
    from integrations.engine import pages
    from integrations.flows.x3_servicenow import Suppliers
    from integrations.systems.errors import TransientError

    original = Suppliers.write_page
    calls = [0]

    def flaky(self, ctx, items):
        calls[0] += 1
        if calls[0] <= pages.PAGE_WRITE_ATTEMPTS:
            raise TransientError("Service Unavailable", status=503)
        return original(self, ctx, items)

    monkeypatch.setattr(Suppliers, "write_page", flaky)
    return calls


def test_records_waiting_for_a_supplier_synced_later_in_the_cycle_are_retried_in_that_cycle(
        integration, x3_sim, sn_sim, monkeypatch):
    run_integration(integration, streams=REFERENCE_STREAMS)
    approve_all_mappings(integration)
    _suppliers_fail_for_their_whole_run(monkeypatch)

    runs = run_integration(integration)

    assert converged(integration, x3_sim), list(
        SyncRecord.objects.exclude(status=RecordStatus.SYNCED).values_list("stream", "source_key", "error_message")[:5])
    by_stream = {run.stream: run for run in runs}
    assert by_stream["purchase_orders"].failed == 0 and by_stream["purchase_orders"].created > 0
    assert by_stream["suppliers"].failed == 0  # counted once, as what it finally became
    assert_suppliers_match_x3(x3_sim, sn_sim)
    assert_purchase_orders_match_x3(x3_sim, sn_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)
    assert_references_resolve(x3_sim, sn_sim)


def test_nothing_is_retried_at_the_end_of_a_cycle_when_no_record_waits(integration, x3_sim, sn_sim):
    run_integration(integration, streams=REFERENCE_STREAMS)
    approve_all_mappings(integration)
    run_integration(integration)
    before = len(sn_sim.requests)

    run_integration(integration)

    assert all(r.method == "GET" for r in sn_sim.requests[before:])


def test_replaying_failed_records_replays_their_dependencies_first(integration, x3_sim, sn_sim, monkeypatch):
    from integrations.engine import runner
    from integrations.engine.replay import replay_records

    monkeypatch.setattr(runner, "_retry_waiting", lambda *args: None)  # the cycle leaves them failed
    run_integration(integration, streams=REFERENCE_STREAMS)
    approve_all_mappings(integration)
    _suppliers_fail_for_their_whole_run(monkeypatch)
    run_integration(integration)
    failed = SyncRecord.objects.filter(integration=integration, status=RecordStatus.FAILED)
    assert set(failed.values_list("stream", flat=True)) == {"suppliers", "purchase_orders", "invoices"}

    # asked in the opposite order: invoices first, their suppliers last
    ids = [pk for stream in ("invoices", "purchase_orders", "suppliers")
           for pk in failed.filter(stream=stream).values_list("pk", flat=True)]
    result = replay_records(ids)

    assert result.failed == 0 and converged(integration, x3_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)
    assert_references_resolve(x3_sim, sn_sim)


# --- the client: batches that shrink under failure, verification instead of re-writing -------------
def _client(batch_size: int):
    from integrations.systems.auth import MemoryTokenStore
    from integrations.systems.servicenow import build_client
    from integrations.systems.spec import ConnectionSpec
    from tests.conftest import SN_URL

    spec = ConnectionSpec("servicenow", SN_URL, "basic", settings={"username": "integration.user",
                                                                   "batch_size": batch_size},
                          secrets={"password": "integration-pass"})
    return build_client(spec, MemoryTokenStore())


def _rows(n: int, start: int = 0):
    from integrations.systems.servicenow import UpsertRow

    return [UpsertRow(f"K{i}", {"name": f"Vendor {i}", "supplier_number": f"S{i}"}, identity=f"test:K{i}")
            for i in range(start, start + n)]


def _batch_sizes(sn_sim, since: int) -> list[int]:
    import json

    return [len(json.loads(r.body)["rest_requests"]) for r in sn_sim.requests[since:] if r.path == BATCH]


def test_without_faults_one_call_per_batch_size_and_no_look_up(sandbox, sn_sim):
    client = _client(20)
    client.source_column.require(SUPPLIER)
    before = len(sn_sim.requests)

    outcomes = client.upsert(SUPPLIER, _rows(45))

    assert all(o.action == "created" for o in outcomes.values())
    assert _batch_sizes(sn_sim, before) == [20, 20, 5]
    assert len(sn_sim.requests) - before == 3, "nothing but the three batch calls"


def test_a_lost_answer_halves_the_next_calls_and_answered_calls_double_them_back(sandbox, sn_sim):
    client = _client(16)
    client.source_column.require(SUPPLIER)
    # each call commits its first item, then the connection drops: the rest of the call never ran
    sn_sim.set_faults(Faults(item_drop_rate=1.0, item_drop_mode="mid_batch"))
    before = len(sn_sim.requests)

    outcomes = client.upsert(SUPPLIER, _rows(16))

    assert _batch_sizes(sn_sim, before)[:5] == [16, 8, 4, 2, 1], "halved after each lost answer"
    assert all(o.error is None for o in outcomes.values()), "looked up, verified, the rest sent again"
    assert sorted(r["u_source_key"] for r in sn_sim.rows(SUPPLIER) if r.get("u_source_key", "").startswith(
        "test:")) == sorted(f"test:K{i}" for i in range(16)), "each row once"
    assert client.batch_now == 1
    sn_sim.set_faults(Faults())
    before = len(sn_sim.requests)
    outcomes = client.upsert(SUPPLIER, _rows(40, start=20))
    assert all(o.error is None for o in outcomes.values())
    assert _batch_sizes(sn_sim, before) == [1, 2, 4, 8, 16, 9], "doubled back after each answered call"
    assert client.batch_now == 16


def test_rows_committed_behind_lost_answers_are_verified_not_written_again(sandbox, sn_sim):
    client = _client(20)
    client.source_column.require(SUPPLIER)
    sn_sim.set_faults(Faults(drop_rate=1.0))  # every batch commits, every answer is lost
    before = len(sn_sim.requests)

    outcomes = client.upsert(SUPPLIER, _rows(20))

    assert _batch_sizes(sn_sim, before) == [20], "one write; the look-up found every row as it was sent"
    mine = {r["u_source_key"]: r["sys_id"] for r in sn_sim.rows(SUPPLIER) if r.get("u_source_key", "").startswith("test:")}
    assert len(mine) == 20
    assert {key: o.sys_id for key, o in outcomes.items()} == {f"K{i}": mine[f"test:K{i}"] for i in range(20)}
    assert all(o.error is None and o.action == "updated" for o in outcomes.values())


def test_a_found_row_that_differs_from_the_payload_is_written_again(sandbox, sn_sim):
    from integrations.systems.servicenow import UpsertRow

    client = _client(20)
    client.source_column.require(SUPPLIER)
    client.upsert(SUPPLIER, _rows(2))
    before = len(sn_sim.requests)
    changed = [UpsertRow("K0", {"name": "Vendor 0", "supplier_number": "S0"}, uncertain=True, identity="test:K0"),
               UpsertRow("K1", {"name": "Renamed", "supplier_number": "S1"}, uncertain=True, identity="test:K1")]

    outcomes = client.upsert(SUPPLIER, changed)

    assert _batch_sizes(sn_sim, before) == [1], "only the row that differs is written"
    assert outcomes["K0"].error is None and outcomes["K1"].error is None
    assert {r["name"] for r in sn_sim.rows(SUPPLIER) if r.get("u_source_key") in ("test:K0", "test:K1")} == {
        "Vendor 0", "Renamed"}


def test_unserviced_items_are_sent_again_without_shrinking_the_batch(sandbox, sn_sim):
    client = _client(20)
    client.source_column.require(SUPPLIER)
    sn_sim.batch_max_items = 7
    before = len(sn_sim.requests)

    outcomes = client.upsert(SUPPLIER, _rows(20))

    assert all(o.error is None for o in outcomes.values())
    assert _batch_sizes(sn_sim, before) == [20, 13, 6], "the unserviced rest, re-sent at full size"
    assert client.batch_now == 20


# --- the other pairs into ServiceNow, through the conformance harnesses ------------------------------
def _harnesses():
    from tests.conformance.harnesses import Sage300Harness, SageX3InvoicesHarness, SysproHarness, SysproInvoicesHarness

    return [Sage300Harness, SysproHarness, SysproInvoicesHarness, SageX3InvoicesHarness]


@pytest.mark.parametrize("harness", _harnesses(), ids=lambda h: h.__name__)
def test_every_pair_into_servicenow_converges_in_three_rounds_under_per_item_lost_acks(
        harness, monkeypatch, record_property):
    with harness(monkeypatch).running() as h:
        h.prepare()  # upstream streams synced and mappings approved, before any fault
        h.configure(page_size=50, batch_size=20)
        h.add_records(60)
        h.set_target_faults(lost_acks(17))
        h.set_source_faults(Faults(error_rate=0.05, burst_429_rate=0.05, burst_429_length=2, retry_after=0, seed=18))
        before = len(h.target_sim.requests) + len(h.source_sim.requests)
        rounds = 0
        while rounds < MAX_ROUNDS and (not h.records() or any(
                r.status != RecordStatus.SYNCED for r in h.records().values())):
            rounds += 1
            h.run_round()
            h.failed_records_come_due()
        calls = len(h.target_sim.requests) + len(h.source_sim.requests) - before
        print(f"\n{harness.__name__}: {rounds} round(s), {calls} HTTP calls")
        record_property("rounds", rounds)
        record_property("http_calls", calls)

        unsynced = {k: (r.status, r.error_message) for k, r in h.records().items() if r.status != RecordStatus.SYNCED}
        assert not unsynced, list(unsynced.items())[:5]
        rows = h.target_rows()
        assert not {key: len(found) for key, found in rows.items() if len(found) > 1}, "rows written twice"
        assert {key: found[0].value for key, found in rows.items()} == h.source_values()
