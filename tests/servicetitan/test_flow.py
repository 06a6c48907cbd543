"""ServiceTitan → Sage X3 through the engine: job costs as balanced journal entries, inventory bills
as supplier invoices, mappings across kinds with the gate, never posted twice (lost answers,
re-runs, replays), reversals for jobs changed after posting, voided and corrected bills put in
front of a person, and not one write to ServiceTitan's invoices or bills."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
import responses

from integrations.benchmark.pairs import PAIRS
from integrations.demo import servicetitan_x3_document
from integrations.engine.mappings import approve, map_manually
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration
from integrations.flows import get_flow
from integrations.flows.servicetitan_x3_postings import DOCUMENTS_PER_PART
from integrations.models import (
    AuditEvent,
    Integration,
    Mapping,
    MappingStatus,
    RecordStatus,
    RunStatus,
    SyncRecord,
    Trigger,
)
from integrations.sandbox.base import SimResponse
from integrations.sandbox.bench import build_benchmark_simulator
from integrations.sandbox.inprocess import mount
from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.sage_x3_seed import FIELD_SERVICE_FOLDER, FIELD_SUPPLIER_RENAMED
from integrations.sandbox.servicetitan import ServiceTitanSimulator
from integrations.tenants import load_document

pytestmark = pytest.mark.django_db

ST_URL = "https://api-integration.servicetitan.io"
ST_AUTH = "https://auth-integration.servicetitan.io"
X3_URL = "http://x3.field.test:8124"


class Pair:
    def __init__(self) -> None:
        self.st = ServiceTitanSimulator(rate_limit_per_second=0).seed_demo()
        self.x3 = SageX3Simulator(folders=())
        self.x3.seed_field_service()
        self.integration: Integration | None = None

    def load(self, **settings) -> Integration:
        document = servicetitan_x3_document(ST_URL, X3_URL, st_token_url=f"{ST_AUTH}/connect/token")
        document["integrations"][0]["settings"].update(settings)
        load_document(document)
        self.integration = Integration.objects.select_related("source", "target", "tenant").get(name="st-to-x3")
        return self.integration

    def run(self, *streams: str):
        return run_integration(self.integration, streams=list(streams) or None, trigger=Trigger.MANUAL, actor="test")

    def approve_suggested(self) -> None:
        decision = approve(list(Mapping.objects.filter(integration=self.integration, status=MappingStatus.SUGGESTED)),
                           actor="test")
        replay_records(decision.released_ids, actor="test", reason="approved", trigger=Trigger.MAPPING)

    def entries(self) -> list[dict]:
        return self.x3.records("GACCENTRY", FIELD_SERVICE_FOLDER)

    def invoices(self) -> list[dict]:
        return self.x3.records("PINVOICE", FIELD_SERVICE_FOLDER)

    def record(self, stream: str, key: str) -> SyncRecord:
        return SyncRecord.objects.get(integration=self.integration, stream=stream, source_key=key)


@pytest.fixture
def pair() -> Iterator[Pair]:
    pair = Pair()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(pair.st, ST_URL, rsps)
        mount(pair.st, ST_AUTH, rsps)
        mount(pair.x3, X3_URL, rsps)
        yield pair


@pytest.fixture
def synced(pair: Pair) -> Pair:
    """A first sync with the suggested mappings approved and the Tailspin vendor mapped by hand."""
    pair.load()
    pair.run()
    pair.approve_suggested()
    replay_records(_map_tailspin_by_hand(pair), actor="test", reason="mapped", trigger=Trigger.MAPPING)
    return pair


def _map_tailspin_by_hand(pair: Pair) -> list[int]:
    """Map the vendor X3 knows under another name (no suggestion finds it); the records it releases."""
    renamed = next(row for row in pair.x3.records("BPSUPPLIER", FIELD_SERVICE_FOLDER)
                   if row["BPSNAM"] == FIELD_SUPPLIER_RENAMED["Tailspin Tools"])
    mapping = Mapping.objects.get(integration=pair.integration, kind="supplier", source_label="Tailspin Tools")
    return map_manually(mapping, renamed["BPSNUM"]).released_ids


def _balance(entry: dict) -> Decimal:
    return sum((line["SNS"] * line["AMTCUR"] for line in entry["GACCENTRYD"]), Decimal("0"))


def test_mappings_are_suggested_across_kinds_and_hold_until_approved(pair: Pair) -> None:
    pair.load()
    pair.run()
    suggested = {(m.kind, m.source_label): m.target_code for m in Mapping.objects.filter(
        integration=pair.integration, status=MappingStatus.SUGGESTED)}
    # job type → labor and materials accounts by description, business unit → cost center by name
    assert suggested[("labor_account", "Panel Upgrade")] == "51010"
    assert suggested[("material_account", "Panel Upgrade")] == "51020"
    assert suggested[("cost_center", "Electrical North")] == "ELN"
    # ServiceTitan GL account → the X3 account with the same code; vendor → supplier by name; PO by number
    assert suggested[("gl_account", "Materials Cost")] == "5100"
    assert ("supplier", "Northwind Electrical Supply") in suggested
    assert any(kind == "purchase_order" for kind, _ in suggested)
    # nothing is posted before a person approves
    assert pair.entries() == [] and pair.invoices() == []
    held = SyncRecord.objects.filter(integration=pair.integration, stream="job_costs", status=RecordStatus.HELD)
    assert held.count() == 6
    assert "labor_account:21" in held.get(source_key="1001").missing_keys


def test_completed_jobs_become_one_balanced_entry_each(synced: Pair) -> None:
    entries = {entry["REF"]: entry for entry in synced.entries()}
    assert sorted(entries) == [f"ST-JOB-{n}" for n in range(1001, 1007)]  # the six completed jobs
    job = synced.st.record("jpm", "jobs", 1001)
    costs = {field["name"]: Decimal(field["value"]) for field in job["customFields"]}
    entry = entries["ST-JOB-1001"]
    assert _balance(entry) == 0
    debits = {(line["ACC"], line["CCE"]): line["AMTCUR"] for line in entry["GACCENTRYD"] if line["SNS"] == 1}
    assert debits == {("51010", "ELN"): costs["laborCost"], ("51020", "ELN"): costs["materialCost"]}
    credit = next(line for line in entry["GACCENTRYD"] if line["SNS"] == -1)
    assert (credit["ACC"], credit["AMTCUR"]) == ("21500", costs["laborCost"] + costs["materialCost"])
    assert entry["TYP"] == "ODT" and str(entry["ACCDAT"]) == job["completedOn"][:10]
    record = synced.record("job_costs", "1001")
    assert record.status == RecordStatus.SYNCED and record.target_id == entry["NUM"]
    # the job in progress and the cancelled one post nothing
    assert synced.record("job_costs", "1007").status == RecordStatus.SKIPPED
    assert synced.record("job_costs", "1008").status == RecordStatus.SKIPPED


def test_a_second_run_posts_nothing_again(synced: Pair) -> None:
    entries, invoices = len(synced.entries()), len(synced.invoices())
    synced.run()
    records = SyncRecord.objects.filter(integration=synced.integration, stream__in=["job_costs", "inventory_bills"])
    replay_records([r.pk for r in records], actor="test", reason="again", trigger=Trigger.REPLAY)
    assert (len(synced.entries()), len(synced.invoices())) == (entries, invoices)


def test_inventory_bills_become_supplier_invoices_against_the_po(synced: Pair) -> None:
    invoices = {inv["BPRVCR"]: inv for inv in synced.invoices()}
    assert sorted(invoices) == ["8001", "8002", "8003", "8004"]  # 8005 was voided before it was posted
    bill = synced.st.record("accounting", "inventory-bills", 8002)
    invoice = invoices["8002"]
    assert invoice["AMTATI"] == Decimal(bill["billAmount"])
    assert invoice["AMTNOT"] == Decimal(bill["billAmount"]) - Decimal(bill["taxAmount"])
    po = synced.st.record("inventory", "purchase-orders", bill["purchaseOrderId"])
    item_lines = [line for line in invoice["PINVOICED"] if line.get("POHNUM")]
    assert {line["POHNUM"] for line in item_lines} == {po["number"]}
    assert [line["POPLIN"] for line in item_lines] == list(range(1, len(po["items"]) + 1))
    tax = [line for line in invoice["PINVOICED"] if line["ACC"] == "21600"]
    assert [line["AMTNOTLIN"] for line in tax] == [Decimal(bill["taxAmount"])]
    assert sum((line["AMTNOTLIN"] for line in invoice["PINVOICED"]), Decimal("0")) == invoice["AMTATI"]
    assert synced.record("inventory_bills", "8005").status == RecordStatus.SKIPPED


def test_a_lost_x3_answer_does_not_post_twice(pair: Pair) -> None:
    pair.load()
    pair.run()
    pair.x3.faults.drop_rate = 1.0  # every write commits, then the connection drops before the answer
    pair.approve_suggested()
    posts = [r for r in pair.x3.requests if r.method == "POST" and "/GACCENTRY" in r.url]
    assert len(posts) == 6  # each entry sent once: after the lost answer it was found by its REF
    assert len(pair.entries()) == 6
    lookups = [r for r in pair.x3.requests if r.method == "GET" and "/GACCENTRY" in r.url and "REF" in r.url]
    assert lookups
    for record in SyncRecord.objects.filter(integration=pair.integration, stream="job_costs",
                                            source_key__in=[str(n) for n in range(1001, 1007)]):
        assert record.status == RecordStatus.SYNCED
        assert record.target_id == next(e["NUM"] for e in pair.entries() if e["REF"] == f"ST-JOB-{record.source_key}")
    invoices = pair.invoices()
    assert len({(inv["BPR"], inv["BPRVCR"]) for inv in invoices}) == len(invoices)
    pair.x3.faults.drop_rate = 0.0
    pair.run("job_costs", "inventory_bills")
    failed = SyncRecord.objects.filter(integration=pair.integration, stream__in=["job_costs", "inventory_bills"],
                                       status=RecordStatus.FAILED)
    replay_records([r.pk for r in failed], actor="test", reason="retry", trigger=Trigger.REPLAY)
    assert len(pair.entries()) == 6 and len(pair.invoices()) == len(invoices)


def test_a_job_changed_after_posting_is_reversed_and_posted_again(synced: Pair) -> None:
    first = next(e for e in synced.entries() if e["REF"] == "ST-JOB-1002")
    job = synced.st.record("jpm", "jobs", 1002)
    fields = [{**f, "value": "999.00"} if f["name"] == "laborCost" else f for f in job["customFields"]]
    synced.st.update("jpm", "jobs", 1002, customFields=fields)
    synced.run("job_costs")
    by_ref = {e["REF"]: e for e in synced.entries()}
    reversal, second = by_ref["ST-JOB-1002-R1"], by_ref["ST-JOB-1002-2"]
    assert by_ref["ST-JOB-1002"] == first  # never edited
    assert sorted((line["ACC"], -line["SNS"], line["AMTCUR"]) for line in reversal["GACCENTRYD"]) == sorted(
        (line["ACC"], line["SNS"], line["AMTCUR"]) for line in first["GACCENTRYD"])
    assert _balance(reversal) == 0 and _balance(second) == 0
    assert Decimal("999.00") in {line["AMTCUR"] for line in second["GACCENTRYD"]}
    assert synced.record("job_costs", "1002").target_id == second["NUM"]
    synced.run("job_costs")  # seen again: nothing more
    assert len([e for e in synced.entries() if e["REF"].startswith("ST-JOB-1002")]) == 3


def test_a_reopened_job_gets_its_reversal_alone(synced: Pair) -> None:
    synced.st.update("jpm", "jobs", 1003, jobStatus="InProgress")
    synced.run("job_costs")
    refs = sorted(e["REF"] for e in synced.entries() if e["REF"].startswith("ST-JOB-1003"))
    assert refs == ["ST-JOB-1003", "ST-JOB-1003-R1"]


def test_a_voided_bill_is_audited_and_not_posted_again(synced: Pair) -> None:
    before = len(synced.invoices())
    synced.st.void_bill(8001)
    synced.run("inventory_bills")
    record = synced.record("inventory_bills", "8001")
    assert record.status == RecordStatus.HELD
    assert "voided in ServiceTitan after it was posted" in record.error_message
    assert record.target_id  # still points at the X3 invoice
    assert AuditEvent.objects.filter(action="record.held", record_id=record.pk).exists()
    assert len(synced.invoices()) == before


def test_a_corrected_bill_is_held_with_the_difference(synced: Pair) -> None:
    bill = synced.st.record("accounting", "inventory-bills", 8003)
    synced.st.update("accounting", "inventory-bills", 8003,
                     billAmount=str(Decimal(bill["billAmount"]) + Decimal("10.00")),
                     taxAmount=str(Decimal(bill["taxAmount"]) + Decimal("10.00")))
    before = len(synced.invoices())
    synced.run("inventory_bills")
    record = synced.record("inventory_bills", "8003")
    assert record.status == RecordStatus.HELD
    assert f"amount {bill['billAmount']} → {Decimal(bill['billAmount']) + Decimal('10.00')}" in record.error_message
    assert len(synced.invoices()) == before


def test_nothing_is_ever_written_to_servicetitan_invoices_or_bills(synced: Pair) -> None:
    synced.run()
    assert synced.st.forbidden_writes == []
    writes = [r for r in synced.st.requests if r.method not in ("GET", "HEAD") and "/connect/token" not in r.url]
    assert all("/inventory/v2/" in r.url and "/vendors" in r.url for r in writes)


def test_an_unbalanced_or_refused_entry_fails_with_x3s_message(synced: Pair) -> None:
    Mapping.objects.filter(integration=synced.integration, kind="labor_account").update(target_code="99999")
    job = synced.st.record("jpm", "jobs", 1004)
    fields = [{**f, "value": "12.00"} if f["name"] == "laborCost" else f for f in job["customFields"]]
    synced.st.update("jpm", "jobs", 1004, customFields=fields)
    synced.run("job_costs")
    record = synced.record("job_costs", "1004")
    assert record.status == RecordStatus.FAILED
    assert "99999" in record.error_message


def test_the_export_token_is_the_bills_checkpoint(synced: Pair) -> None:
    from integrations.models import StreamState, SyncRun

    state = StreamState.objects.get(integration=synced.integration, stream="inventory_bills")
    token = state.checkpoint.get("token")
    assert token and len(token) > 64  # ServiceTitan's own continueFrom, longer than any cursor column
    template = synced.st.record("accounting", "inventory-bills", 8002)
    synced.st.add("accounting", "inventory-bills", {**template, "id": 8101, "referenceNumber": "8101"})
    seen = len(synced.st.requests)
    synced.run("inventory_bills")
    exports = [r for r in synced.st.requests[seen:] if "/export/inventory-bills" in r.url]
    assert exports and f"from={token[:20]}" in exports[0].url.replace("%3D", "=")
    run = SyncRun.objects.filter(integration=synced.integration, stream="inventory_bills").latest("pk")
    assert run.read == 1  # only the new bill: nothing read twice
    assert "8101" in {inv["BPRVCR"] for inv in synced.invoices()}


def test_the_offset_account_must_be_set(pair: Pair) -> None:
    pair.load(journal_offset_account="")
    pair.run()
    pair.approve_suggested()
    record = pair.record("job_costs", "1001")
    assert record.status == RecordStatus.FAILED
    assert "journal_offset_account" in record.error_message
    assert pair.entries() == []


def test_webhook_events_name_the_job_or_bill() -> None:
    from integrations.flows import get_flow

    flow = get_flow("servicetitan__sage_x3")
    assert flow.webhook_records("job.completed", {"data": {"id": 1007}}) == [("job_costs", "1007")]
    assert flow.webhook_records("appointment.updated", {"data": {"id": 5, "jobId": 1007}}) == [("job_costs", "1007")]
    assert flow.webhook_records("inventoryBill.created", {"data": {"id": 8001}}) == [("inventory_bills", "8001")]
    assert flow.webhook_records("customer.updated", {"data": {"id": 1}}) == []


def test_reversal_dates_are_today(synced: Pair) -> None:
    synced.st.update("jpm", "jobs", 1005, jobStatus="Canceled")
    synced.run("job_costs")
    reversal = next(e for e in synced.entries() if e["REF"] == "ST-JOB-1005-R1")
    from django.utils import timezone

    assert abs(reversal["ACCDAT"] - timezone.now().date()) <= timedelta(days=1)


def test_a_delivered_webhook_leads_to_exactly_one_entry(synced: Pair, settings, monkeypatch) -> None:
    import django_q.conf
    from django.test import Client

    from integrations.models import WebhookEvent
    from integrations.sandbox.servicetitan_seed import WEBHOOK_KEY

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)  # the queued processing runs inline
    job = synced.st.record("jpm", "jobs", 1001)
    synced.st.update("jpm", "jobs", 1007, jobStatus="Completed", completedOn="2026-01-03T10:00:00Z",
                     customFields=job["customFields"])
    synced.st.webhook_event("job.completed", {"id": 1007})

    portal = Client()

    def transport(url: str, raw: bytes, headers: dict[str, str]) -> int:
        return portal.post(url, data=raw, content_type="application/json",
                           HTTP_X_SERVICETITAN_SIGNATURE=headers["X-ServiceTitan-Signature"]).status_code

    url = "/webhooks/servicetitan/acme-field/st/"
    assert [a.status for a in synced.st.deliver(url, WEBHOOK_KEY, transport=transport)] == [202]
    assert [a.status for a in synced.st.deliver(url, WEBHOOK_KEY, transport=transport)] == [200]  # a replay
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.record == synced.record("job_costs", "1007")
    entries = [e for e in synced.entries() if e["REF"] == "ST-JOB-1007"]
    assert len(entries) == 1 and event.record.target_id == entries[0]["NUM"]
    synced.run("job_costs")  # the next poll sees the same job: nothing more
    assert len([e for e in synced.entries() if e["REF"].startswith("ST-JOB-1007")]) == 1


def test_a_page_of_more_jobs_than_a_part_posts_each_job_once_and_resumes_after_the_last() -> None:
    """A ServiceTitan page of 1,100 jobs is worked in parts (X3 takes one document per call): every
    completed job gets its one entry, and the stream resumes after the page's last job."""
    jobs = 1100
    assert jobs > 2 * DOCUMENTS_PER_PART
    st = ServiceTitanSimulator(rate_limit_per_second=0).seed_bulk(jobs, lines=1, vendors=5)
    x3 = build_benchmark_simulator("sage_x3", invoices=jobs, lines_per_invoice=1, suppliers=5, field_service=True)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(st, ST_URL, rsps)
        mount(st, ST_AUTH, rsps)
        mount(x3, X3_URL, rsps)
        document = PAIRS["servicetitan-x3"].document(ST_URL, X3_URL)
        load_document(document)
        integration = Integration.objects.select_related("source", "target", "tenant").get(name="st-to-x3")
        references = ["x3_gl_accounts", "x3_cost_centers", "st_job_types", "st_business_units"]
        run_integration(integration, streams=references, trigger=Trigger.MANUAL, actor="test")
        approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)), actor="test")
        (run,) = run_integration(integration, streams=["job_costs"], trigger=Trigger.MANUAL, actor="test")

    posted = [entry["REF"] for entry in x3.records("GACCENTRY", "FIELD")]
    records = SyncRecord.objects.filter(integration=integration, stream="job_costs")
    synced = records.filter(status=RecordStatus.SYNCED)
    assert run.status == "succeeded"
    assert synced.count() == len(posted) == len(set(posted)) > 2 * DOCUMENTS_PER_PART
    assert sorted(posted) == sorted(f"ST-JOB-{key}" for key in synced.values_list("source_key", flat=True))
    last = max(st.rows("jpm", "jobs"), key=lambda job: (job["modifiedOn"], job["id"]))
    state = integration.streams.get(stream="job_costs")
    assert state.checkpoint["key"].lstrip("0") == str(last["id"])


def test_inventory_bills_keep_the_purchase_orders_of_one_page_only(synced: Pair) -> None:
    """Memory follows a page, not every bill ever read: a page's orders replace the page before's.
    Their numbers come from the purchase orders' reference list: ServiceTitan is asked only for an
    order the list has not stored (entered since it was read), and for that order alone."""
    from integrations.engine.context import Cycle, stream_context
    from integrations.flows.servicetitan_x3_postings import InventoryBills
    from integrations.models import ReferenceRecord

    bills = sorted(synced.st.rows("accounting", "inventory-bills"), key=lambda bill: bill["id"])[:3]
    first, second = [bills[0], bills[1]], [bills[1], bills[2]]
    stream = InventoryBills()
    cycle = Cycle(synced.integration)
    newer = str(bills[2]["purchaseOrderId"])
    assert str(bills[1]["purchaseOrderId"]) != newer  # the demo's bills each have their own order
    # as if the order had been entered in ServiceTitan after its list was read
    assert ReferenceRecord.objects.filter(integration=synced.integration, kind="st_purchase_order",
                                          external_id=newer).delete()[0] == 1

    def asked_for_orders() -> list[str]:
        return [request.url for request in synced.st.requests if "/inventory/" in request.url
                and "purchase-orders" in request.url]

    try:
        with stream_context(synced.integration, cycle) as ctx:
            asked = len(asked_for_orders())
            stream.prepare_page(ctx, [InventoryBills._record(bill, True) for bill in first])
            assert asked_for_orders()[asked:] == [], "the first page's orders are all in the stored list"
            stream.prepare_page(ctx, [InventoryBills._record(bill, True) for bill in second])
            later = asked_for_orders()[asked:]
            assert len(later) == 1 and later[0].split("ids=")[1].split("&")[0].split("%2C") == [newer]
            assert stream._po_numbers == {
                str(bill["purchaseOrderId"]): str(synced.st.record("inventory", "purchase-orders",
                                                                   bill["purchaseOrderId"])["number"])
                for bill in second}
            assert len(stream._x3_orders) == len({bill["purchaseOrderId"] for bill in second})
            # the page's bills still become invoices against their orders
            payload = stream.transform(ctx, InventoryBills._record(bills[2], True))
            assert payload["lines"][0]["po"]
            payload = stream.transform(ctx, InventoryBills._record(bills[1], True))
            assert payload["lines"][0]["po"]
    finally:
        cycle.close()


@pytest.fixture
def mapped_before_bills(pair: Pair) -> Pair:
    """Reference lists read and their suggestions approved before the bills' first run, the bills'
    export feed two bills a page (the demo has five: three pages)."""
    pair.st.export_page_size = 2
    pair.load()
    documents = ("job_costs", "inventory_bills")
    pair.run(*[name for name in get_flow(pair.integration.kind).stream_names() if name not in documents])
    pair.approve_suggested()
    _map_tailspin_by_hand(pair)
    return pair


def _x3_order_reads(pair: Pair) -> list[str]:
    """The thread each X3 purchase-order read came from (seen at the simulator, the HTTP boundary)."""
    threads: list[str] = []
    handle = pair.x3.handle

    def recording(request):
        if request.method == "GET" and "/PORDER" in request.url:
            threads.append(threading.current_thread().name)
        return handle(request)

    pair.x3.handle = recording
    return threads


def _posted_against_their_orders(pair: Pair) -> None:
    invoices = {inv["BPRVCR"]: inv for inv in pair.invoices()}
    assert sorted(invoices) == ["8001", "8002", "8003", "8004"]
    for number, invoice in invoices.items():
        bill = pair.st.record("accounting", "inventory-bills", int(number))
        po = pair.st.record("inventory", "purchase-orders", bill["purchaseOrderId"])
        item_lines = [line for line in invoice["PINVOICED"] if line.get("POHNUM")]
        assert {line["POHNUM"] for line in item_lines} == {po["number"]}
        assert [line["POPLIN"] for line in item_lines] == list(range(1, len(po["items"]) + 1))


def test_the_bills_x3_orders_are_read_ahead_on_the_reading_thread(mapped_before_bills: Pair, settings) -> None:
    """While a page of bills is planned, the next page's X3 purchase orders (for their line numbers)
    are read on the thread reading the bills: the plan waits for none of them."""
    settings.SYNC_READ_AHEAD = True
    threads = _x3_order_reads(mapped_before_bills)

    run = mapped_before_bills.run("inventory_bills")[0]

    assert run.status == RunStatus.SUCCEEDED and run.created == 4
    assert len(threads) == 3 and set(threads) == {"read-ahead"}  # one read a page, none on the plan's thread
    _posted_against_their_orders(mapped_before_bills)


def test_a_failed_look_ahead_leaves_the_orders_to_the_page_plan(mapped_before_bills: Pair, settings, caplog) -> None:
    """A look-ahead X3 refuses is logged and dropped: the page's plan reads the orders itself, and the
    bills are still posted against their order lines."""
    settings.SYNC_READ_AHEAD = True
    threads = _x3_order_reads(mapped_before_bills)
    recording = mapped_before_bills.x3.handle

    def refusing_the_reading_thread(request):
        if request.method == "GET" and "/PORDER" in request.url and threading.current_thread().name == "read-ahead":
            recording(request)  # noted
            return SimResponse.json(500, {"$diagnoses": [{"$severity": "error", "$message": "Server busy"}]})
        return recording(request)

    mapped_before_bills.x3.handle = refusing_the_reading_thread

    run = mapped_before_bills.run("inventory_bills")[0]

    assert run.status == RunStatus.SUCCEEDED and run.created == 4
    main = threading.current_thread().name
    assert threads.count(main) == 3, "each page's plan read its orders itself"
    assert "looking ahead for a page failed" in caplog.text
    _posted_against_their_orders(mapped_before_bills)


def test_a_purchase_order_stored_under_two_numbers_is_asked_of_servicetitan(synced: Pair) -> None:
    """A purchase order renumbered in ServiceTitan leaves the reference row of its old number beside
    the row of its new one, and the stored rows cannot tell which is current: the bills ask
    ServiceTitan for that order (alone) and take the number it has now."""
    from integrations.engine.context import Cycle, stream_context
    from integrations.flows.servicetitan_x3_postings import InventoryBills
    from integrations.models import ReferenceRecord

    bills = sorted(synced.st.rows("accounting", "inventory-bills"), key=lambda row: row["id"])[:2]
    po_id, other = str(bills[0]["purchaseOrderId"]), str(bills[1]["purchaseOrderId"])
    stored = ReferenceRecord.objects.get(integration=synced.integration, kind="st_purchase_order", external_id=po_id)
    ReferenceRecord.objects.create(integration=synced.integration, side=stored.side, kind=stored.kind,
                                   code=f"{stored.code}-A", label=f"{stored.code}-A", external_id=po_id)
    now = str(synced.st.record("inventory", "purchase-orders", bills[0]["purchaseOrderId"])["number"])
    stream = InventoryBills()
    cycle = Cycle(synced.integration)

    def asked_for_orders() -> list[str]:
        return [request.url for request in synced.st.requests if "/inventory/" in request.url
                and "purchase-orders" in request.url]

    try:
        with stream_context(synced.integration, cycle) as ctx:
            assert ctx.references("st_purchase_order", [po_id, other]).keys() == {other}
            asked = len(asked_for_orders())
            stream.prepare_page(ctx, [InventoryBills._record(bill, True) for bill in bills])
            later = asked_for_orders()[asked:]
            assert len(later) == 1 and later[0].split("ids=")[1].split("&")[0].split("%2C") == [po_id]
            assert stream._po_numbers[po_id] == now
    finally:
        cycle.close()


def test_changed_lists_come_out_in_time_then_id_order_the_same_when_sorted_on_disk(pair: Pair) -> None:
    """ServiceTitan lists by id; the portal orders what changed by (modifiedOn, id) itself. Beyond its
    window it sorts on disk: the pages are the same, so memory does not grow with the list."""
    from integrations.engine.context import Cycle, stream_context
    from integrations.flows.base import Checkpoint
    from integrations.flows.servicetitan_x3_postings import changed

    pair.load()
    cycle = Cycle(pair.integration)
    try:
        with stream_context(pair.integration, cycle) as ctx:
            whole = [[(c, p, row["id"]) for c, p, row in page]
                     for page in changed(ctx, "inventory", "purchase-orders", Checkpoint())]
            spilled = [[(c, p, row["id"]) for c, p, row in page]
                       for page in changed(ctx, "inventory", "purchase-orders", Checkpoint(), window=2)]
            flat = [entry for page in whole for entry in page]
            assert spilled == whole and len(flat) >= 3
            assert [(c, p) for c, p, _ in flat] == sorted((c, p) for c, p, _ in flat)
            # a run cut short resumes strictly after its last record, sorted on disk or not
            middle = flat[len(flat) // 2]
            resumed = [row["id"] for page in changed(ctx, "inventory", "purchase-orders",
                                                      Checkpoint(cursor=middle[0], key=middle[1]), window=2)
                       for _, _, row in page]
            assert resumed == [entry[2] for entry in flat[len(flat) // 2 + 1:]]
    finally:
        cycle.close()


def test_a_reference_list_is_sorted_with_each_rows_code_name_and_id_not_the_whole_row(pair: Pair) -> None:
    """A purchase order carries its lines; the reference list of them needs its number and id only,
    and sorts those (on disk too), so a window of purchase orders is not a window of their lines."""
    from integrations.engine.context import Cycle, stream_context
    from integrations.flows.base import Checkpoint
    from integrations.flows.servicetitan_x3 import StPurchaseOrders
    from integrations.flows.servicetitan_x3_postings import changed

    pair.load()
    cycle = Cycle(pair.integration)
    stream = StPurchaseOrders()
    try:
        with stream_context(pair.integration, cycle) as ctx:
            rows = [(c, p, row) for page in changed(ctx, "inventory", "purchase-orders", Checkpoint()) for c, p, row in page]
            assert rows and all(row.get("items") for _, _, row in rows), "the premise: orders come with their lines"
            for window in (2, 5000):
                kept = [entry for page in changed(ctx, "inventory", "purchase-orders", Checkpoint(), window=window,
                                                  keep=stream._kept) for entry in page]
                assert kept == [(c, p, (str(row["number"]).strip(), str(row["number"]).strip(), str(row["id"])))
                                for c, p, row in rows]
            items = [item for page in stream.read(ctx, Checkpoint()) for item in page]
            assert [(i.code, i.external_id, i.cursor, i.order_key) for i in items] == [
                (str(row["number"]).strip(), str(row["id"]), c, p) for c, p, row in rows]
    finally:
        cycle.close()


def test_purchase_orders_are_suggested_by_the_same_number_only_reading_just_the_numbers_of_each_chunk(
        pair: Pair, monkeypatch) -> None:
    """Purchase-order numbers are not names: the same number (in either case) is suggested, a number a
    digit apart is not an order "alike", and each chunk of codes reads only the X3 orders with its numbers."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations.engine import mappings as engine
    from integrations.models import Mapping, MappingStatus, ReferenceRecord, Side

    monkeypatch.setattr(engine, "REFRESH_CHUNK", 3)
    pair.load()
    integration = pair.integration
    ReferenceRecord.objects.bulk_create(
        [ReferenceRecord(integration=integration, side=Side.SOURCE, kind="st_purchase_order", code=code, label=code)
         for code in ("PO-000101", "PO-000102", "po-000103", "PO-000999", "PO-000104", "PO-000105", "PO-000106")]
        + [ReferenceRecord(integration=integration, side=Side.TARGET, kind="purchase_order", code=code, label=code)
           for code in ("PO-000101", "PO-000102", "PO-000103", "PO-000998", "PO-000104", "PO-000105", "PO-000106",
                        *(f"PO-9{n:05d}" for n in range(50)))])

    with CaptureQueriesContext(connection) as queries:
        engine.refresh_suggestions(integration, "st_purchase_order")

    found = {m.source_code: m for m in Mapping.objects.filter(integration=integration, kind="purchase_order")}
    assert {code: m.target_code for code, m in found.items() if m.status == MappingStatus.SUGGESTED} == {
        "PO-000101": "PO-000101", "PO-000102": "PO-000102", "po-000103": "PO-000103", "PO-000104": "PO-000104",
        "PO-000105": "PO-000105", "PO-000106": "PO-000106"}
    assert found["PO-000999"].status == MappingStatus.UNMAPPED and found["PO-000999"].candidates == []
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")
             and 'FROM "integrations_referencerecord"' in q["sql"] and "'purchase_order'" in q["sql"]]
    assert len(reads) == 3, "one read of X3 orders per chunk of three codes"
    assert all(" IN (" in sql for sql in reads), "no read of every X3 order"


def test_purchase_order_mappings_are_read_for_each_page_in_one_query_not_held_whole(synced: Pair) -> None:
    """A ledger's purchase orders are as many as its bills: the run holds the mappings of its master
    data whole (suppliers, accounts, cost centers) and reads the order mappings of each page's bills
    in one query; the next page forgets them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations.engine.context import Cycle, approved_mappings, stream_context
    from integrations.engine.pages import plan_page
    from integrations.flows.servicetitan_x3_postings import InventoryBills
    from integrations.models import SyncRun

    orders = dict(Mapping.objects.filter(integration=synced.integration, kind="purchase_order",
                                         status=MappingStatus.APPROVED).values_list("source_code", "target_code"))
    assert len(orders) >= 2, "the premise: the bills' orders are mapped"
    lookup = approved_mappings(synced.integration)
    assert not [key for key in lookup.approved if key[0] == "purchase_order"]
    assert [key for key in lookup.approved if key[0] == "supplier"]

    bills = sorted(synced.st.rows("accounting", "inventory-bills"), key=lambda bill: bill["id"])
    stream = InventoryBills()
    cycle = Cycle(synced.integration)
    run = SyncRun.objects.create(integration=synced.integration, stream=stream.name)
    try:
        with stream_context(synced.integration, cycle) as ctx:
            for page in (bills[:2], bills[2:4]):
                with CaptureQueriesContext(connection) as queries:
                    plan = plan_page(run, stream, ctx, [InventoryBills._record(bill, True) for bill in page],
                                     replay=True)  # already posted: planned again, as a replay is
                reads = [q["sql"] for q in queries.captured_queries if 'FROM "integrations_mapping"' in q["sql"]]
                assert len(reads) == 1 and "'purchase_order'" in reads[0]
                assert len(plan.items) == len(page), "each bill is planned for X3"
                held = {key: value for key, value in ctx.mappings._page.items() if value}
                page_orders = {str(synced.st.record("inventory", "purchase-orders", bill["purchaseOrderId"])["number"])
                               for bill in page}
                assert {code for _, code in held} == page_orders and all(
                    orders[code] == target for (_, code), (target, _) in held.items())
    finally:
        cycle.close()


def test_a_look_ahead_reads_order_mappings_without_keeping_them(synced: Pair) -> None:
    """``MappingLookup.read`` (for a stream's look-ahead, on another thread than the page's plan):
    a paged kind's approved targets in one query, a held kind's from what the run holds, and nothing
    kept for the page being planned."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations.engine.context import approved_mappings

    orders = dict(Mapping.objects.filter(integration=synced.integration, kind="purchase_order",
                                         status=MappingStatus.APPROVED).values_list("source_code", "target_code"))
    supplier = Mapping.objects.filter(integration=synced.integration, kind="supplier",
                                      status=MappingStatus.APPROVED).first()
    lookup = approved_mappings(synced.integration)
    with CaptureQueriesContext(connection) as queries:
        found = lookup.read("purchase_order", [*orders, "no-such-order", ""])
        held = lookup.read("supplier", [supplier.source_code, "no-such-vendor"])
    assert {code: target for code, (target, _) in found.items()} == orders
    assert len(queries.captured_queries) == 1
    assert held == {supplier.source_code: (supplier.target_code, supplier.target_external_id)}
    assert lookup._page == {}
