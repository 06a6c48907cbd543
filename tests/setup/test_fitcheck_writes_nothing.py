"""The fit check reads both systems of every pair and writes nothing to either."""

from __future__ import annotations

import pytest

from integrations.models import AuditEvent, Integration
from integrations.setup.fitcheck import ACTION, BLOCKED, MAPPINGS, READY, fit_check, latest_report
from integrations.setup.preview import preview
from integrations.setup.report import report_csv, report_text
from tests.conformance.harnesses import (
    Sage300Harness,
    SageIntacctHarness,
    SageX3Harness,
    ServiceTitanJobsHarness,
    SysproHarness,
)

from .writes import writes_to


class ServiceTitanDemoHarness(ServiceTitanJobsHarness):
    """ServiceTitan with its demo jobs kept (the conformance harness empties them)."""

    def build_simulators(self):
        from integrations.sandbox.sage_x3 import SageX3Simulator
        from integrations.sandbox.servicetitan import ServiceTitanSimulator
        from integrations.sandbox.servicetitan_seed import APP_KEY, CLIENT_ID, CLIENT_SECRET, demo_data

        st = ServiceTitanSimulator(rate_limit_per_second=0)
        st.add_client(CLIENT_ID, CLIENT_SECRET)
        st.add_app_key(APP_KEY)
        st.load(demo_data())
        x3 = SageX3Simulator(folders=())
        x3.seed_field_service()
        return st, x3


PAIRS = {
    "sage_x3__servicenow": SageX3Harness,
    "sage_intacct__servicenow": SageIntacctHarness,
    "sage_300__servicenow": Sage300Harness,
    "syspro__servicenow": SysproHarness,
    "servicetitan__sage_x3": ServiceTitanDemoHarness,
}


@pytest.fixture(params=sorted(PAIRS))
def pair(request, db, monkeypatch):
    with PAIRS[request.param](monkeypatch).running() as running:
        yield running


def _systems(integration: Integration) -> tuple[str, str]:
    return integration.source.system, integration.target.system


def test_every_registered_pair_is_checked():
    from integrations.flows import flow_kinds

    assert {kind for kind, _ in flow_kinds()} == set(PAIRS)


def test_the_fit_check_writes_nothing_to_either_system(pair):
    integration = pair.integration
    source, target = _systems(integration)
    report = fit_check(integration)
    assert pair.source_sim.requests and pair.target_sim.requests, "both systems were read"
    assert writes_to(source, pair.source_sim) == []
    assert writes_to(target, pair.target_sim) == []
    assert report["verdict"]["status"] in (READY, MAPPINGS, BLOCKED)
    assert report["verdict"]["status"] != BLOCKED, report["blockers"]
    records = [s for s in report["streams"] if not s["reference"] and not s.get("off")]
    assert records and sum(s["would_move"] for s in records) > 0, report["streams"]


def test_the_preview_writes_nothing_either(pair):
    integration = pair.integration
    source, target = _systems(integration)
    shown = preview(integration)
    assert shown and any(part["records"] for part in shown)
    assert writes_to(source, pair.source_sim) == [] and writes_to(target, pair.target_sim) == []


def test_the_report_is_audited_printable_as_text_and_csv(pair):
    report = fit_check(pair.integration)
    event = AuditEvent.objects.filter(integration=pair.integration, action=ACTION).latest("pk")
    assert event.message.endswith(report["verdict"]["text"][:50]) or report["verdict"]["text"][:50] in event.message
    assert latest_report(pair.integration)["verdict"] == report["verdict"]
    csv_text = report_csv(report)
    assert csv_text.splitlines()[0] == "section,item,value,note" and "verdict" in csv_text
    assert report["verdict"]["text"] in report_text(report)


@pytest.fixture
def x3_pair(db, monkeypatch):
    with SageX3Harness(monkeypatch).running() as running:
        yield running


def test_a_period_counts_only_the_records_changed_in_it(x3_pair):
    from datetime import date

    report = fit_check(x3_pair.integration, since=date(2100, 1, 1))
    records = [s for s in report["streams"] if not s["reference"] and not s.get("off")]
    assert all(s["read"] > 0 and s["in_period"] == 0 and s["would_move"] == 0 for s in records), records
    assert report["period"]["since"] == "2100-01-01"


def test_a_small_call_budget_takes_several_cycles_and_the_check_honours_it(x3_pair):
    from integrations.models import Connection

    source = x3_pair.integration.source
    Connection.objects.filter(pk=source.pk).update(settings={**source.settings, "call_budget": 5})
    source.refresh_from_db()
    report = fit_check(x3_pair.integration)
    assert report["budget"], report["blockers"]
    x3 = next(b for b in report["budget"] if b["side"] == "source")
    assert report["blockers"] == [] and x3["budget"] == 5 and x3["at_least"] and x3["cycles"] >= 2
    assert any("call budget" in (s.get("note") or "") for s in report["streams"])
    assert writes_to("sage_x3", x3_pair.source_sim) == [] and writes_to("servicenow", x3_pair.target_sim) == []


def test_a_missing_table_blocks_and_names_who_can_fix_it(x3_pair):
    x3_pair.target_sim.uninstall_table("sn_apo_invoice")  # the AP plugin not installed
    report = fit_check(x3_pair.integration)
    assert report["verdict"]["status"] == BLOCKED and report["budget"] == [], "nothing read, nothing estimated"
    assert "sn_apo_invoice" in report["verdict"]["text"] and "ServiceNow admin" in report["verdict"]["text"]
    assert writes_to("servicenow", x3_pair.target_sim) == []
