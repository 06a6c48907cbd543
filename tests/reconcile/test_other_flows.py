"""The same reconciliation over the other invoice streams: Intacct bills and Sage 300 AP invoices.

Each flow declares only how to read the money of its source snapshots (``money``); where the
invoices land and how they are read back is shared (``StagedInvoices``). A month synced through
each pair agrees but for its held and failed records, and an amount edited in ServiceNow shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import responses

from integrations.demo import intacct_servicenow_document, sage300_servicenow_document
from integrations.engine.mappings import approve
from integrations.engine.reconcile import money_streams, reconcile
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration
from integrations.models import Integration, Mapping, MappingStatus, Period, RecordStatus, SyncRecord, Trigger
from integrations.sandbox.inprocess import mount
from integrations.sandbox.intacct import IntacctSimulator
from integrations.sandbox.sage300 import Sage300Simulator
from integrations.tenants import load_document
from tests.support import INVOICE, skey

SN_URL = "https://acme.service-now.com"
PAIRS = {
    "intacct": (IntacctSimulator, "https://intacct.test", intacct_servicenow_document, "bills"),
    "sage300": (Sage300Simulator, "https://erp.acme.test", sage300_servicenow_document, "invoices"),
}


@pytest.fixture(params=sorted(PAIRS))
def pair(request, db, sn_sim) -> Iterator[tuple[Integration, str]]:
    simulator, url, document, stream = PAIRS[request.param]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(simulator().seed_demo(), url, rsps)
        mount(sn_sim, SN_URL, rsps)
        doc = document(url, SN_URL)
        load_document(doc)
        integration = Integration.objects.select_related("source", "target", "tenant").get(
            tenant__slug=doc["tenant"]["slug"])
        run_integration(integration)
        decision = approve(list(Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED)))
        replay_records(decision.released_ids, trigger=Trigger.MAPPING)
        yield integration, stream


def busiest_month(integration: Integration, stream: str) -> Period:
    declared = next(s for s in money_streams(integration) if s.name == stream)
    days = [declared.money(r.source_snapshot, integration.source.settings) for r in
            SyncRecord.objects.filter(integration=integration, stream=stream)]
    months = sorted(f"{m.day:%Y-%m}" for m in days if m and m.day)
    assert months, "no document dates read from the snapshots"
    return Period.month(max(set(months), key=months.count))


def test_a_synced_month_differs_only_by_its_held_and_failed_records(pair):
    integration, stream = pair
    assert [s.name for s in money_streams(integration)] == [stream]
    period = busiest_month(integration, stream)
    run = reconcile(integration, period)
    assert run.status != "error", run.error
    assert sum(row["source_count"] for row in run.totals) > 0 and sum(row["target_count"] for row in run.totals) > 0
    waiting = set(SyncRecord.objects.filter(integration=integration, stream=stream,
                                            status__in=[RecordStatus.HELD, RecordStatus.FAILED])
                  .values_list("source_key", flat=True))
    assert {(line.reason, line.source_key) for line in run.lines.all()} <= {
        (reason, key) for key in waiting for reason in ("held", "failed")}
    assert all(line.source_key in waiting for line in run.lines.all())


def test_an_amount_edited_in_servicenow_shows_with_both_values(pair, sn_sim):
    integration, stream = pair
    period = busiest_month(integration, stream)
    synced = SyncRecord.objects.filter(integration=integration, stream=stream, status=RecordStatus.SYNCED)
    declared = next(s for s in money_streams(integration) if s.name == stream)
    record = next(r for r in synced.order_by("pk")
                  if declared.money(r.source_snapshot, integration.source.settings).day in period)
    row = next(r for r in sn_sim.rows(INVOICE) if skey(r) == record.source_key)
    sn_sim.update(INVOICE, row["sys_id"], {"amount_invoiced": str(Decimal(row["amount_invoiced"]) + 1)})
    run = reconcile(integration, period)
    line = run.lines.get(reason="amount")
    assert line.source_key == record.source_key and line.target_amount - line.source_amount == 1
