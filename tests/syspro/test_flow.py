"""SYSPRO → ServiceNow through the engine: one e.net session per cycle, always logged off; reference
data read from both sides and aligned; invoices held for their cost centres; GL postings staged;
incremental reads by (date, key); nothing ever written to SYSPRO; no secret anywhere."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from urllib.parse import quote, quote_plus, urlsplit

import pytest
import responses

from integrations.engine.context import build_client
from integrations.engine.mappings import approve, map_manually
from integrations.engine.replay import replay_records
from integrations.engine.runner import ensure_streams, run_integration, run_stream
from integrations.flows import syspro_servicenow
from integrations.models import (
    AuditEvent,
    Connection,
    Mapping,
    MappingReason,
    MappingStatus,
    RecordStatus,
    RunStatus,
    StreamState,
    SyncAttempt,
    SyncRecord,
    SyncRun,
    Trigger,
)
from integrations.sandbox.inprocess import mount
from integrations.sandbox.syspro import SysproSimulator
from integrations.sandbox.syspro_query import parse_xmlin
from integrations.sandbox.syspro_seed import COMPANY, OPERATOR, add_invoice
from integrations.systems.http import CallCounter
from tests.support import skey

from .conftest import SN_URL, URL, load

pytestmark = pytest.mark.django_db

STREAMS = ["sn_gl_accounts", "sn_cost_centers", "syspro_gl_accounts", "syspro_cost_centers", "gl_accounts",
           "suppliers", "purchase_orders", "invoices", "gl_postings"]  # cost_centers: opt-in, off


def sn_rows(sn_sim, table: str) -> list[dict]:
    return list(sn_sim.store.require(table).rows.values())


def approve_suggested(integration) -> None:
    decision = approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))
    replay_records(decision.released_ids, actor="test", reason="approved", trigger=Trigger.MAPPING)


def records(integration, stream: str, status: str | None = None):
    found = SyncRecord.objects.filter(integration=integration, stream=stream)
    return found.filter(status=status) if status else found


def assert_sessions_all_ended(sim: SysproSimulator, logons: int | None = None) -> None:
    assert sim.open_sessions == 0, "a licence seat is still taken"
    assert sim.logons == sim.logoffs, (sim.logons, sim.logoffs)
    if logons is not None:
        assert sim.logons == logons


def add_same_day_invoice(sim: SysproSimulator, number: str, day: str, journal: int) -> None:
    tables = sim.companies[COMPANY[0]][1]
    add_invoice(tables, "CON001", "USD", number, day, [("60100", "CC100", Decimal("41.10"), "Late delivery")],
                journal)


# --- the first sync -------------------------------------------------------------------------------
def test_the_first_sync_aligns_reference_data_and_holds_invoices_until_their_cost_centres_are_approved(
        integration, sim, sn_sim):
    runs = run_integration(integration)
    assert [r.stream for r in runs] == STREAMS
    assert all(r.status == RunStatus.SUCCEEDED for r in runs), [(r.stream, r.error) for r in runs]

    # GL accounts pushed: the eleven ServiceNow already had by code are adopted (audited), not doubled
    gl = [r for r in sn_rows(sn_sim, "itfm_gl_accounts")]
    by_code = defaultdict(list)
    for row in gl:
        by_code[row["account_number"]].append(row)
    assert all(len(rows) == 1 for rows in by_code.values())
    assert {skey(rows[0]) for code, rows in by_code.items() if code != "69900"} == {
        "20000", *(f"{n}" for n in range(60100, 61300, 100))}
    assert AuditEvent.objects.filter(action="record.adopted", integration=integration).count() == 11
    # ... and each one is its own approved mapping
    gl_maps = Mapping.objects.filter(integration=integration, kind="gl_account")
    assert gl_maps.count() == 13 and all(m.status == MappingStatus.APPROVED for m in gl_maps)

    # cost centres are suggested (code, then name), never written to the shared cmn_cost_center
    cc = {m.source_code: (m.status, m.reason, m.target_code)
          for m in Mapping.objects.filter(integration=integration, kind="cost_center")}
    assert cc["CC100"] == (MappingStatus.SUGGESTED, MappingReason.EXACT_CODE, "CC100")
    assert cc["600"] == (MappingStatus.SUGGESTED, MappingReason.NAME_MATCH, "CC600")
    assert cc["CC700"][0] == MappingStatus.UNMAPPED
    assert not any(r.path.endswith("cmn_cost_center") and r.method != "GET" for r in sn_sim.requests)
    assert all(not row.get("u_source_key") for row in sn_rows(sn_sim, "cmn_cost_center"))
    assert records(integration, "invoices", RecordStatus.HELD).count() == 10

    approve_suggested(integration)
    held = records(integration, "invoices", RecordStatus.HELD).get()
    assert held.source_key == "LOD001/INV-1010" and held.missing_keys == ["cost_center:CC700"]
    assert records(integration, "invoices", RecordStatus.SYNCED).count() == 9
    decision = map_manually(Mapping.objects.get(integration=integration, kind="cost_center", source_code="CC700"),
                            "CC400")
    replay_records(decision.released_ids, actor="test", reason="mapped", trigger=Trigger.MAPPING)
    assert records(integration, "invoices", RecordStatus.SYNCED).count() == 10
    assert sim.writes == [] and {r.method for r in sim.requests} == {"GET"}


def test_amounts_names_and_lines_arrive_exactly(integration, sim, sn_sim):
    run_integration(integration)
    approve_suggested(integration)
    source = {(r["Supplier"], r["Invoice"]): r for r in sim.table("ApInvoice").as_dicts()}
    lines = sim.table("ApInvoiceDistr").as_dicts()
    invoices = {r["supplier_invoice_number"]: r for r in sn_rows(sn_sim, "sn_apo_invoice")}
    assert len(invoices) == 9
    for (supplier, number), row in source.items():
        if number not in invoices:
            continue
        staged = invoices[number]
        assert staged["amount_invoiced"] == row["OrigInvValue"]  # the exact text, as a Decimal rendered
        staged_lines = {r["line_number"]: r for r in sn_rows(sn_sim, "sn_apo_invoice_line")
                        if r["invoice"] == staged["sys_id"]}
        mine = {r["DistrLine"]: r for r in lines if (r["Supplier"], r["Invoice"]) == (supplier, number)}
        assert {n: r["line_amount_invoiced"] for n, r in staged_lines.items()} == {
            n: r["DistrValue"] for n, r in mine.items()}
        assert Decimal(staged["subtotal"]) == sum(Decimal(r["DistrValue"]) for r in mine.values())
    # each line on the ServiceNow GL account row pushed for its code, and the mapped cost center
    gl = {r["sys_id"]: r["account_number"] for r in sn_rows(sn_sim, "itfm_gl_accounts")}
    cc = {r["sys_id"]: r["code"] for r in sn_rows(sn_sim, "cmn_cost_center")}
    one = invoices["INV-1006"]
    staged_lines = sorted((r["line_number"], gl[r["gl_account"]], cc[r["cost_center"]])
                          for r in sn_rows(sn_sim, "sn_apo_invoice_line") if r["invoice"] == one["sys_id"])
    assert staged_lines == [("1", "60600", "CC600"), ("2", "60700", "CC100"), ("3", "60800", "CC200")]
    # Windows-1252 names arrive intact (and a character cp1252 lacks, sent as a reference)
    names = {r["supplier_number"]: r["name"] for r in sn_rows(sn_sim, "proc_vendor")}
    assert names["MUL001"] == "Müller Gießerei GmbH" and names["OBR001"] == "O’Brien Fasteners Ltd"
    assert names["SMI001"] == "Smith & Sons – Hydraulics" and names["LOD001"] == "Łódź Precision Tools"
    # purchase orders with their lines; the invoice on a PO points at it
    pos = {r["erp_number"]: r for r in sn_rows(sn_sim, "proc_po")}
    assert pos["000102"]["total_amount"] == "483.00"  # 100 x 1.95 + 12 x 24.00
    assert invoices["INV-1001"]["purchase_order"] == pos["000101"]["sys_id"]


def test_gl_postings_are_staged_one_row_per_entry_and_every_journal_balances(integration, sim, sn_sim):
    runs = {r.stream: r for r in run_integration(integration)}
    assert runs["gl_postings"].created == 10  # one record per journal (one per invoice)
    rows = sn_rows(sn_sim, "u_ml_gl_posting")
    assert len(rows) == len(sim.table("GenJournalDetail").rows)
    journals: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal("0"), Decimal("0")])
    for row in rows:
        assert skey(row) == f"{row['u_journal']}/{row['u_entry_number']}"
        journals[row["u_journal"]][0] += Decimal(row["u_debit"] or "0")
        journals[row["u_journal"]][1] += Decimal(row["u_credit"] or "0")
    assert len(journals) == 10 and all(debit == credit > 0 for debit, credit in journals.values())
    control = [r for r in rows if r["u_gl_account"] == "20000"]
    assert {r["u_entry_type"] for r in control} == {"C"} and len(control) == 10


def test_a_journal_that_does_not_balance_fails_as_a_data_error_naming_both_sides(integration, sim):
    sim.table("GenJournalDetail").update(["5000", "1"], {"EntryValue": "999.00"})
    run_integration(integration)
    failed = records(integration, "gl_postings", RecordStatus.FAILED).get()
    assert failed.source_key == "5000" and failed.error_class == "data"
    assert "does not balance" in failed.error_message and "999.00" in failed.error_message


def test_an_invoice_line_without_a_cost_centre_is_invalid_not_held(integration, sim):
    sim.table("ApInvoiceDistr").update(["MUL001", "INV-1001", "1"], {"CostCentre": ""})
    run_integration(integration)
    failed = records(integration, "invoices").get(source_key="MUL001/INV-1001")
    assert failed.status == RecordStatus.FAILED and failed.error_class == "data"
    assert "distribution line 1 has no cost center" in failed.error_message


# --- one session per cycle, always logged off -------------------------------------------------------
def test_one_logon_serves_the_whole_cycle_and_is_logged_off_and_audited(integration, sim):
    run_integration(integration)
    assert_sessions_all_ended(sim, logons=1)
    actions = list(AuditEvent.objects.filter(connection=integration.source).order_by("pk")
                   .values_list("action", flat=True))
    seat = [a for a in actions if a.startswith("connection.session_")]
    assert seat == ["connection.session_opened", "connection.session_ended"]


def test_a_replay_and_a_connection_test_log_off_too(integration, sim):
    from integrations.engine.checks import test_connection

    run_integration(integration)
    approve_suggested(integration)  # a replay of the released invoices: its own session
    assert_sessions_all_ended(sim, logons=2)
    report = test_connection(integration.source)
    assert report["ok"], report["failed"]
    assert_sessions_all_ended(sim, logons=3)
    target = test_connection(integration.target)  # its tables and columns, GL postings' included
    assert target["ok"], target["failed"]
    assert any(c["check"] == "table:u_ml_gl_posting" and c["ok"] for c in target["checks"])


def test_a_systemic_failure_still_logs_off(integration, sim):
    Connection.objects.filter(pk=integration.source_id).update(
        settings={**integration.source.settings, "tables": {"invoice": "ApInvoiceGone"}})
    integration = load_again(integration)
    runs = run_integration(integration)
    assert runs[-1].stream == "invoices" and runs[-1].status == RunStatus.FAILED
    assert "ApInvoiceGone" in runs[-1].error
    assert_sessions_all_ended(sim, logons=1)


def test_an_exception_in_a_transform_still_logs_off(integration, sim, monkeypatch):
    def broken(self, ctx, record):
        raise RuntimeError("a bug in a transform")

    monkeypatch.setattr(syspro_servicenow.Suppliers, "transform", broken)
    with pytest.raises(RuntimeError):
        run_integration(integration)
    assert_sessions_all_ended(sim, logons=1)


def test_a_run_cut_by_its_call_budget_still_logs_off(integration, sim):
    limit_syspro_calls(integration, 6)
    integration = load_again(integration)
    runs = run_integration(integration)
    assert runs[-1].status == RunStatus.PARTIAL and "budget" in runs[-1].error
    assert_sessions_all_ended(sim, logons=1)  # the log-off goes out even with the budget spent
    assert not AuditEvent.objects.filter(action="connection.logoff_failed").exists()


def test_a_session_that_expires_mid_cycle_is_logged_on_again_once(integration, sim):
    expired = []

    def progress(run):
        if run.stream == "suppliers" and not expired:
            sim.expire_sessions()  # SYSPRO's inactivity timeout, or the seat bumped
            expired.append(run.stream)

    runs = run_integration(integration, progress=progress)
    assert all(r.status == RunStatus.SUCCEEDED for r in runs), [(r.stream, r.error) for r in runs]
    assert (sim.logons, sim.logoffs, sim.expired, sim.open_sessions) == (2, 1, 1, 0)
    assert AuditEvent.objects.filter(action="connection.reauthenticated", connection=integration.source).count() == 1


def test_the_session_a_killed_run_left_is_logged_off_by_the_next_run(integration, sim):
    dead = build_client(integration.source, CallCounter())  # a worker that logged on, then was killed
    dead.logon()
    assert sim.open_sessions == 1  # it holds the only seat
    runs = run_integration(integration)
    assert all(r.status == RunStatus.SUCCEEDED for r in runs), [(r.stream, r.error) for r in runs]
    assert_sessions_all_ended(sim, logons=2)
    assert AuditEvent.objects.filter(action="connection.leftover_logged_off").count() == 1


def test_a_live_runs_session_is_never_taken_for_a_leftover(integration, sim):
    ensure_streams(integration)
    live = build_client(integration.source, CallCounter())  # another worker, mid-run on "invoices"
    live.logon()
    from django.utils import timezone

    StreamState.objects.filter(integration=integration, stream="invoices").update(
        lock_token="another-worker", lock_heartbeat_at=timezone.now())
    run = run_stream(integration, "suppliers")
    assert run.status == RunStatus.INTERRUPTED and "licence seat" in run.error  # one seat, taken: retried later
    assert sim.open_sessions == 1 and not AuditEvent.objects.filter(
        action="connection.leftover_logged_off").exists()
    live.close()
    assert_sessions_all_ended(sim)


# --- incremental reads by (date, key) -----------------------------------------------------------------
def test_a_change_later_the_same_day_and_a_same_day_posting_are_picked_up(integration, sim, sn_sim):
    suppliers = sim.table("ApSupplier")
    last_day = max(r["DateLastModified"] for r in suppliers.as_dicts())
    suppliers.update(["OBR001"], {"DateLastModified": last_day})  # edited today, before the sync
    run_integration(integration)
    approve_suggested(integration)
    suppliers.update(["OBR001"], {"SupplierName": "O’Brien Fasteners (Ireland) Ltd"})  # and again today
    last_post = max(r["PostDate"] for r in sim.table("ApInvoice").as_dicts())
    add_same_day_invoice(sim, "INV-2001", last_post, 6001)  # posted later on the day already read

    runs = {r.stream: r for r in run_integration(integration)}

    assert (runs["suppliers"].updated, runs["suppliers"].created) == (1, 0)
    names = {r["supplier_number"]: r["name"] for r in sn_rows(sn_sim, "proc_vendor")}
    assert names["OBR001"] == "O’Brien Fasteners (Ireland) Ltd"
    assert runs["invoices"].created == 1 and runs["gl_postings"].created == 1
    staged = [r for r in sn_rows(sn_sim, "sn_apo_invoice") if r["supplier_invoice_number"] == "INV-2001"]
    assert len(staged) == 1 and staged[0]["amount_invoiced"] == "41.10"
    assert {r["u_journal"] for r in sn_rows(sn_sim, "u_ml_gl_posting")} >= {"6001"}


def test_an_unchanged_resync_writes_nothing(integration, sim, sn_sim):
    run_integration(integration)
    approve_suggested(integration)
    writes_before = sum(1 for r in sn_sim.requests if r.method != "GET")
    runs = run_integration(integration)
    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    # reference streams count the rows they noted (the pushed accounts, read back); records: none
    assert all(r.created == r.updated == 0 for r in runs if r.stream in STREAMS[4:])
    assert sum(1 for r in sn_sim.requests if r.method != "GET") == writes_before
    assert sim.writes == []


def test_a_run_cut_by_the_budget_resumes_strictly_after_its_key_without_downloading_again(db, clock, sn_sim):
    sim = SysproSimulator(clock=clock).seed_bulk(invoices=40, lines_per_invoice=2, suppliers=4, per_day=10)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, URL, rsps)
        mount(sn_sim, SN_URL, rsps)
        from integrations.demo import syspro_servicenow_document

        integration = load(syspro_servicenow_document(URL, SN_URL, settings={"page_size": 5}))
        run_integration(integration, streams=STREAMS[:7])
        approve_suggested(integration)
        limit_syspro_calls(integration, 9)
        integration = load_again(integration)

        runs, checkpoint = [], {}
        for _ in range(20):
            seen = len(sim.requests)
            run = run_stream(integration, "invoices")
            runs.append(run)
            if len(runs) > 1:  # a continuation: it seeks after the checkpoint, on invoices and lines alike
                invoice_q = [q for q in queries_since(sim, seen) if q.table == "ApInvoice"][0]
                line_q = [q for q in queries_since(sim, seen) if q.table == "ApInvoiceDistr"][0]
                gt = {(e.column, e.value) for e in invoice_q.where if e.condition == "GT"}
                key = json.loads(checkpoint["key"])
                assert ("Invoice", key[1]) in gt and ("Supplier", key[0]) in gt
                assert {e.column for e in line_q.where if e.condition == "GT"} == {"PostDate", "Supplier", "Invoice"}
            checkpoint = StreamState.objects.get(integration=integration, stream="invoices").checkpoint
            if run.status != RunStatus.PARTIAL:
                break
            assert sim.open_sessions == 0
        assert [r.status for r in runs][-1] == RunStatus.SUCCEEDED and len(runs) > 2
        assert sum(r.read for r in runs) == 40  # no invoice downloaded twice
        assert records(integration, "invoices", RecordStatus.SYNCED).count() == 40
        attempts = SyncAttempt.objects.filter(record__integration=integration, record__stream="invoices")
        assert attempts.count() == 40
        assert len(sn_rows(sn_sim, "sn_apo_invoice_line")) == 80
        assert_sessions_all_ended(sim)


def test_an_install_that_takes_only_eq_reads_day_by_day_to_the_same_result(db, clock, sn_sim):
    staged = {}
    for mode, conditions in (("range", "all"), ("by_day", "eq_only")):
        sim = SysproSimulator(clock=clock, conditions=conditions).seed_demo()
        from integrations.sandbox.clock import ManualClock
        from integrations.sandbox.servicenow import ServiceNowSimulator

        target = ServiceNowSimulator(clock=ManualClock()).seed_demo()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            mount(sim, URL, rsps)
            mount(target, SN_URL, rsps)
            from integrations.demo import syspro_servicenow_document

            doc = syspro_servicenow_document(URL, SN_URL, slug=f"acme-{mode.replace('_', '')}",
                                             connection_settings={"seek_mode": mode})
            integration = load(doc)
            runs = run_integration(integration)
            assert all(r.status == RunStatus.SUCCEEDED for r in runs), [(r.stream, r.error) for r in runs]
            approve_suggested(integration)
        lines = {r["sys_id"]: r for r in sn_rows(target, "sn_apo_invoice_line")}
        staged[mode] = sorted((r["supplier_invoice_number"], r["amount_invoiced"],
                               sorted(line["line_amount_invoiced"] for line in lines.values()
                                      if line["invoice"] == r["sys_id"]))
                              for r in sn_rows(target, "sn_apo_invoice"))
    assert staged["range"] == staged["by_day"] and len(staged["range"]) == 9


# --- cost centres: mapped, created only when asked ---------------------------------------------------
def test_creating_cost_centres_is_opt_in_and_never_doubles_an_existing_one(db, pair, sim, sn_sim, tenant_doc):
    from integrations.sandbox.snseed import COST_CENTER, SOURCE

    sn_sim.install_table("cmn_cost_center", fields=[*COST_CENTER, *SOURCE])  # the customer added the column
    tenant_doc["integrations"][0]["settings"] = {"page_size": 4, "create_cost_centers": True}
    integration = load(tenant_doc)
    before = {r["sys_id"] for r in sn_rows(sn_sim, "cmn_cost_center")}
    runs = {r.stream: r for r in run_integration(integration)}
    assert runs["cost_centers"].created == 1
    created = [r for r in sn_rows(sn_sim, "cmn_cost_center") if r["sys_id"] not in before]
    assert [(r["code"], r["name"], skey(r)) for r in created] == [("CC700", "Quality assurance", "CC700")]
    skipped = {r.source_key: r.error_message for r in records(integration, "cost_centers", RecordStatus.SKIPPED)}
    assert set(skipped) == {"CC100", "CC200", "CC300", "CC400", "CC500", "600"}
    assert "name 'Information technology'" in skipped["600"]
    mapping = Mapping.objects.get(integration=integration, kind="cost_center", source_code="CC700")
    assert mapping.status == MappingStatus.APPROVED and mapping.target_external_id == created[0]["sys_id"]
    assert Mapping.objects.get(integration=integration, kind="cost_center", source_code="CC100").status == \
        MappingStatus.SUGGESTED  # the existing ones still wait for a person


# --- the GL posting table ------------------------------------------------------------------------------
def test_a_missing_gl_posting_table_is_reported_and_named_when_postings_run(integration, sim, sn_sim):
    from integrations.engine.checks import test_connection

    Connection.objects.filter(pk=integration.target_id).update(
        settings={**integration.target.settings, "tables": {"gl_posting": "u_reconciliation_postings"}})
    integration = load_again(integration)
    report = test_connection(integration.target)
    line = next(c for c in report["checks"] if c["check"] == "table:u_reconciliation_postings")
    assert not line["ok"] and not report["ok"]  # this connection's integration stages GL postings
    assert "is missing" in line["message"] and "GL postings" in line["message"]
    runs = run_integration(integration)
    assert runs[-1].stream == "gl_postings" and runs[-1].status == RunStatus.FAILED
    assert "u_reconciliation_postings" in runs[-1].error and "create it" in runs[-1].error


# --- secrets -----------------------------------------------------------------------------------------
def test_no_password_or_user_id_reaches_audit_runs_records_or_logs(integration, sim, caplog, tenant_doc):
    caplog.set_level("DEBUG")
    run_integration(integration)  # a good cycle, with a session that expires on the way
    sim.expire_sessions()
    approve_suggested(integration)
    sim.table("ApInvoiceDistr").update(["MUL001", "INV-1001", "1"], {"GlCode": ""})  # a record error
    run_integration(integration)
    tenant_doc["connections"][0]["auth"]["operator_password"] = "Wr0ng & pass+word #9"  # a systemic one
    from integrations.tenants import load_document

    load_document(tenant_doc)
    integration = load_again(integration)
    runs = run_integration(integration)
    assert runs[0].status == RunStatus.SUCCEEDED and runs[2].status == RunStatus.FAILED  # SYSPRO refused

    user_ids = {(r.param("UserId") or "").strip() for r in sim.requests if r.param("UserId")}
    assert len(user_ids) >= 2
    secrets = {OPERATOR[1], "Wr0ng & pass+word #9", *user_ids}
    forms = {form for s in secrets for form in (s, quote(s, safe=""), quote_plus(s))}
    texts = [f"{e.action} {e.message} {json.dumps(e.detail, default=str)}" for e in AuditEvent.objects.all()]
    texts += [r.error for r in SyncRun.objects.all()]
    texts += [r.error_message for r in SyncRecord.objects.all()]
    texts += [f"{c.last_error} {json.dumps(c.last_test_report, default=str)}" for c in Connection.objects.all()]
    texts += [record.getMessage() for record in caplog.records]
    leaked = {form for form in forms for text in texts if form in text}
    assert not leaked
    assert any("refused the logon of operator ADMIN" in t for t in texts)


# --- helpers -----------------------------------------------------------------------------------------
def load_again(integration):
    from integrations.models import Integration

    return Integration.objects.select_related("source", "target", "tenant").get(pk=integration.pk)


def limit_syspro_calls(integration, calls: int) -> None:
    """The SYSPRO connection may make ``calls`` calls per cycle (ServiceNow keeps its own counter)."""
    source = Connection.objects.get(pk=integration.source_id)
    Connection.objects.filter(pk=source.pk).update(settings={**source.settings, "call_budget": calls})


def queries_since(sim: SysproSimulator, start: int) -> list:
    return [parse_xmlin(r.param("XmlIn") or "") for r in list(sim.requests)[start:]
            if urlsplit(r.url).path.endswith("Query/Query")]
