"""SYSPRO's OData read path (``settings.odata_url``): the same rows as COMFND, read only, Basic auth
with the operator's credentials, paged by (date, key) seeks that need no next link and survive a
server that caps its pages below ``$top``."""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
import responses

from integrations.engine.runner import run_integration
from integrations.models import RecordStatus, RunStatus
from integrations.sandbox.inprocess import mount
from integrations.sandbox.syspro import SysproSimulator
from integrations.sandbox.syspro_seed import OPERATOR
from integrations.systems import syspro
from integrations.systems.errors import AuthError, SystemicError
from integrations.systems.schema import ConnectionFields
from integrations.systems.syspro_odata import basic_token

from .conftest import SN_URL, URL, Clock, load, make_client
from .test_flow import add_same_day_invoice, approve_suggested, records, sn_rows

ODATA = f"{URL}/odata/EDU1"
NUMBER = "number"
PREFIX = re.compile(r"syspro\.[0-9a-f]+:")
SN_TABLES = ("itfm_gl_accounts", "proc_vendor", "proc_po", "proc_po_item", "sn_apo_invoice", "sn_apo_invoice_line",
             "u_ml_gl_posting", "cmn_cost_center")


def odata_requests(sim: SysproSimulator) -> list:
    return [r for r in sim.requests if urlsplit(r.url).path.startswith("/odata/")]


def options(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.url).query, keep_blank_values=True).items()}


def everything(client: syspro.SysproClient) -> dict[str, list[dict]]:
    return {logical: [row for page in client.read_changed(logical) for row in page] for logical in syspro.TABLES}


def snapshot(sn_sim) -> dict[str, list[str]]:
    """What ServiceNow holds, references shown as the code of the row they point at (sys_ids differ by run,
    source keys carry the connection's own prefix, and ServiceNow numbers its rows itself)."""
    codes = {}
    for table in SN_TABLES:
        for row in sn_rows(sn_sim, table):
            codes[row["sys_id"]] = f"{table}:{row.get('u_source_key') or row.get('account_number') or row.get('code')}"
    return {table: sorted(PREFIX.sub("", json.dumps({k: codes.get(v, v) for k, v in row.items()
                                                     if not k.startswith("sys_") and k != NUMBER}, sort_keys=True, ensure_ascii=False))
                          for row in sn_rows(sn_sim, table))
            for table in SN_TABLES}


def run_pair(connection_settings: dict, slug: str, **switches) -> tuple[dict[str, list[str]], SysproSimulator]:
    """The whole flow once against fresh simulators, suggestions approved, CC700 mapped by hand."""
    from integrations.demo import syspro_servicenow_document
    from integrations.engine.mappings import map_manually
    from integrations.engine.replay import replay_records
    from integrations.models import Mapping, Trigger
    from integrations.sandbox.clock import ManualClock
    from integrations.sandbox.servicenow import ServiceNowSimulator

    sim = SysproSimulator(clock=Clock(), **switches).seed_demo()
    target = ServiceNowSimulator(clock=ManualClock()).seed_demo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, URL, rsps)
        mount(target, SN_URL, rsps)
        integration = load(syspro_servicenow_document(URL, SN_URL, slug=slug, settings={"page_size": 4},
                                                      connection_settings=connection_settings))
        runs = run_integration(integration)
        assert all(r.status == RunStatus.SUCCEEDED for r in runs), [(r.stream, r.error) for r in runs]
        approve_suggested(integration)
        unmapped = Mapping.objects.get(integration=integration, kind="cost_center", source_code="CC700")
        replay_records(map_manually(unmapped, "CC400").released_ids, actor="test", reason="mapped",
                       trigger=Trigger.MAPPING)
        assert records(integration, "invoices", RecordStatus.SYNCED).count() == 10
    return snapshot(target), sim


# --- the whole flow --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_comfnd_and_odata_reads_leave_the_same_records_in_servicenow():
    comfnd, comfnd_sim = run_pair({"page_size": 3}, "acme-comfnd")
    odata, odata_sim = run_pair({"page_size": 3, "odata_url": ODATA, "odata_page_size": 3}, "acme-odata")

    for table in SN_TABLES:
        assert odata[table] == comfnd[table], "\n".join([table, *sorted(set(odata[table]) ^ set(comfnd[table]))])
    assert all(comfnd[table] for table in SN_TABLES if table != "cmn_cost_center")
    # every read went through OData: no e.net session, no licence seat, no COMFND query
    assert odata_sim.logons == odata_sim.queries == 0 and odata_sim.odata_requests > 0
    assert comfnd_sim.odata_requests == 0
    # never a write: nothing but GET reached SYSPRO on either path
    for sim in (comfnd_sim, odata_sim):
        assert sim.writes == [] and {r.method for r in sim.requests} == {"GET"}


@pytest.mark.django_db
def test_a_server_capping_its_pages_and_sending_no_count_or_next_link_still_gives_the_same_records():
    comfnd, _ = run_pair({}, "acme-comfnd")
    capped, sim = run_pair({"odata_url": ODATA}, "acme-capped", odata_page_cap=2, odata_count=False,
                           odata_next_link=False)
    assert capped == comfnd
    assert all(options(r)["$top"] == "5000" for r in odata_requests(sim))  # asked for 5000, got 2 at a time


@pytest.mark.django_db
def test_a_same_day_posting_is_picked_up_through_odata(db, pair, sim, sn_sim, tenant_doc):
    tenant_doc["connections"][0]["settings"] = {"odata_url": ODATA}
    integration = load(tenant_doc)
    run_integration(integration)
    approve_suggested(integration)
    last_post = max(r["PostDate"] for r in sim.table("ApInvoice").as_dicts())
    add_same_day_invoice(sim, "INV-2001", last_post, 6001)  # posted later on the day already read
    seen = len(sim.requests)

    runs = {r.stream: r for r in run_integration(integration)}

    assert runs["invoices"].created == 1 and runs["gl_postings"].created == 1
    staged = [r for r in sn_rows(sn_sim, "sn_apo_invoice") if r["supplier_invoice_number"] == "INV-2001"]
    assert len(staged) == 1 and staged[0]["amount_invoiced"] == "41.10"
    invoice_reads = [options(r) for r in sim.requests[seen:] if urlsplit(r.url).path.endswith("/ApInvoice")]
    assert invoice_reads[0]["$filter"] == f"PostDate ge {last_post}"  # the day read before, again, with ge
    assert invoice_reads[0]["$orderby"] == "PostDate,Supplier,Invoice"
    assert sim.logons == 0 and sim.writes == []


# --- the reader ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("switches", [
    {},
    {"odata_page_cap": 2},
    {"odata_page_cap": 3, "odata_count": False},
    {"odata_next_link": False},
    {"odata_dates": "datetime"},
])
def test_every_table_reads_the_same_rows_as_comfnd(mounted, switches):
    for name, value in switches.items():
        setattr(mounted, name, value)
    comfnd = everything(make_client(page_size=4))
    odata = everything(make_client(odata_url=ODATA))
    assert odata == comfnd
    invoice = odata["invoice"][0]
    assert isinstance(invoice["OrigInvValue"], Decimal) and len(invoice["PostDate"]) == 10


def test_pages_never_follow_the_next_link_and_stop_on_the_count(mounted):
    mounted.odata_page_cap = 4
    client = make_client(odata_url=ODATA, odata_page_size=4)
    rows = [row for page in client.read_changed("gl_posting") for row in page]
    assert len(rows) == len(mounted.table("GenJournalDetail").rows)
    sent = odata_requests(mounted)
    assert all("$skip" not in options(r) for r in sent)  # each page seeks after the last row instead
    assert len(sent) == -(-len(rows) // 4)  # no empty page asked for: @odata.count said when it ended


def test_a_run_cut_short_resumes_strictly_after_its_date_and_key(mounted):
    comfnd = make_client(page_size=3)
    odata = make_client(odata_url=ODATA, odata_page_size=3)
    after = ["OBR001", "INV-1008"]
    assert [r for p in odata.read_changed("invoice", "2026-01-11", after) for r in p] == \
        [r for p in comfnd.read_changed("invoice", "2026-01-11", after) for r in p]
    first = options(odata_requests(mounted)[0])["$filter"]
    assert first == ("(PostDate eq 2026-01-11 and Supplier gt 'OBR001') or "
                     "(PostDate eq 2026-01-11 and Supplier eq 'OBR001' and Invoice gt 'INV-1008') or "
                     "(PostDate gt 2026-01-11)")


def test_lines_of_many_parents_come_in_one_read_and_quotes_are_doubled(mounted):
    client = make_client(odata_url=ODATA)
    parents = [["MUL001", "INV-1001"], ["OBR001", "INV-1002"], ["O'X", "none"]]
    rows = [r for page in client.read_for("invoice_line", ["Supplier", "Invoice"], parents) for r in page]
    assert {(r["Supplier"], r["Invoice"]) for r in rows} == {("MUL001", "INV-1001"), ("OBR001", "INV-1002")}
    assert len(odata_requests(mounted)) == 1
    assert "Supplier eq 'O''X'" in options(odata_requests(mounted)[0])["$filter"]


def test_wrong_credentials_are_an_auth_error_naming_the_operator_and_no_secret(mounted, caplog):
    caplog.set_level(logging.DEBUG)
    events: list = []
    client = make_client(odata_url=ODATA, password="Wr0ng & pass+word #9", events=events)
    with pytest.raises(AuthError) as caught:
        list(client.read_changed("supplier"))
    message = f"{caught.value} {caught.value.detail}"
    assert "operator ADMIN" in message and "operator password" in message and caught.value.status == 401
    secrets = {"Wr0ng & pass+word #9", basic_token(OPERATOR[0], "Wr0ng & pass+word #9")}
    forms = {form for s in secrets for form in (s, quote(s, safe=""), quote_plus(s))}
    texts = [message, json.dumps(events, default=str), *(r.getMessage() for r in caplog.records)]
    assert not {form for form in forms for text in texts if form in text}
    assert mounted.logons == 0


def test_odata_errors_are_classified(mounted):
    client = make_client(odata_url=ODATA, odata_entity_sets={"supplier": "ApSupplierGone"})
    with pytest.raises(SystemicError, match="odata_entity_sets"):
        list(client.read_changed("supplier"))
    client = make_client(odata_url=ODATA, columns={"supplier": {"Email": "EMailAddress"}})
    with pytest.raises(SystemicError, match="EMailAddress"):
        list(client.read_changed("supplier"))


def test_an_odata_outage_is_transient_and_retried(mounted):
    from integrations.sandbox.base import Faults

    mounted.set_faults(Faults(error_rate=0.5, seed=3))
    client = make_client(odata_url=ODATA)
    assert len([r for p in client.read_changed("supplier") for r in p]) == 6
    assert client.odata is not None and client.odata.http.counter.sleeps  # it backed off at least once


def test_the_connection_test_reads_each_entity_set_without_an_enet_session(mounted):
    client = make_client(odata_url=ODATA, odata_entity_sets={"po_line": "PorLines"})
    lines = client.check()
    assert {line["check"] for line in lines if line["ok"]} == {
        f"odata:{client.table_def(logical).table}" for logical in syspro.TABLES if logical != "po_line"}
    assert [line for line in lines if not line["ok"]][0]["check"] == "odata:PorLines"
    assert mounted.logons == 0


def test_odata_settings_are_checked_by_the_schema():
    def problems(**settings):
        return syspro.SCHEMA.problems(ConnectionFields(
            url=URL, company="EDU1", auth_method=syspro.AUTH_METHOD,
            settings={"operator": "ADMIN", **settings}, secrets={"operator_password": "x"}))

    assert problems(odata_url=ODATA, odata_entity_sets={"invoice": "ApInvoices"}, odata_page_size=1000,
                    odata_dates="datetime", odata_number_columns=["Journal"]) == {}
    assert "odata_url" in str(problems(odata_url="ftp://syspro/odata"))
    assert "odata_entity_sets: bogus not known" in str(problems(odata_entity_sets={"bogus": "X"}))
    assert "odata_page_size" in str(problems(odata_page_size=10_000))


def test_the_odata_feed_refuses_anything_but_get(sim):
    from integrations.sandbox.base import SimRequest

    token = basic_token(*OPERATOR)
    answer = sim.handle(SimRequest("PATCH", f"{ODATA}/ApSupplier('MUL001')", {"Authorization": f"Basic {token}"},
                                   b"{}"))
    assert answer.status == 405 and len(sim.writes) == 1
    answer = sim.handle(SimRequest("GET", f"{ODATA}/ApSupplier?$top=1", {"Authorization": f"Basic {token}"}))
    assert answer.status == 200 and len(json.loads(answer.body)["value"]) == 1

