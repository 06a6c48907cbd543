"""ServiceNow as a real instance behaves (issue 9): the token's own user and its roles, columns that
exist (``sys_dictionary``, inherited through ``super_class``), a strict instance that drops unknown
columns, a hibernating instance's HTML page, and a row deleted by hand.

Every test here runs against a *strict* simulated instance: a written column the table does not
define is dropped, and a query condition on it is ignored, as on a real instance.
"""

from __future__ import annotations

import pytest
import requests
import responses
from django.core.management import CommandError, call_command

from integrations.demo import intacct_servicenow_document
from integrations.engine.checks import test_connection as check_connection
from integrations.engine.runner import run_integration
from integrations.models import AuditEvent, Connection, ErrorClass, RecordStatus, RunStatus, SyncRecord
from integrations.sandbox.clock import ManualClock
from integrations.sandbox.inprocess import mount
from integrations.sandbox.servicenow import ServiceNowSimulator
from integrations.sandbox.snseed import SUPPLIER as SUPPLIER_COLUMNS
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import TransientError
from integrations.systems.servicenow import BatchItem, build_client
from integrations.systems.spec import ConnectionSpec
from tests.conftest import SN_URL
from tests.support import (
    PO_LINE,
    SUPPLIER,
    assert_invoices_match_x3,
    assert_purchase_orders_match_x3,
    assert_suppliers_match_x3,
    make_failed_records_due,
    skey,
    source_key_counts,
    sync_everything,
)

SN_USER = "integration.user"
DICTIONARY = "/api/now/table/sys_dictionary"


@pytest.fixture
def sn_sim(sn_clock: ManualClock) -> ServiceNowSimulator:
    return ServiceNowSimulator(clock=sn_clock, strict_columns=True).seed_demo()


def update_settings(connection: Connection, drop: tuple[str, ...] = (), **values) -> None:
    settings = {k: v for k, v in (connection.settings or {}).items() if k not in drop}
    Connection.objects.filter(pk=connection.pk).update(settings={**settings, **values})
    connection.refresh_from_db()


def basic_client(**settings):
    spec = ConnectionSpec("servicenow", SN_URL, "basic", settings={"username": SN_USER, **settings},
                          secrets={"password": "integration-pass"})
    return build_client(spec, MemoryTokenStore())


def get(table: str, **params) -> requests.Response:
    return requests.get(f"{SN_URL}/api/now/table/{table}", params=params, auth=(SN_USER, "integration-pass"))


# --- 1. the connection test finds the token's own user -----------------------------------------
@pytest.mark.django_db
def test_the_connection_test_checks_the_roles_of_the_tokens_user_without_a_service_account(integration):
    update_settings(integration.target, drop=("service_account", "username"))

    report = check_connection(integration.target)

    assert report["ok"], report["failed"]
    messages = [line["message"] for line in report["checks"]]
    assert f"The connection acts as the ServiceNow user {SN_USER}" in messages
    assert f"{SN_USER} holds sn_apay.apo_user" in messages and f"{SN_USER} holds procurement_user" in messages


@pytest.mark.django_db
def test_a_role_the_tokens_user_lacks_is_named_and_the_command_exits_non_zero(integration, sn_sim):
    update_settings(integration.target, drop=("service_account", "username"))
    sn_sim.revoke_role(SN_USER, "sn_apay.apo_user")

    with pytest.raises(CommandError) as failed:
        call_command("test_connection", "--tenant", "acme", "--connection", "sn")

    assert f"{SN_USER} lacks the role sn_apay.apo_user" in str(failed.value)
    assert "service account" not in str(failed.value)


def test_the_instance_answers_get_user_id_with_the_callers_own_record(sandbox, sn_sim):
    sn_sim.add_user("someone.else", "pw", ["admin"])

    rows = get("sys_user", sysparm_query="sys_id=javascript:gs.getUserID()", sysparm_fields="user_name").json()

    assert rows["result"] == [{"user_name": SN_USER}]


def test_an_instance_that_ignores_the_user_script_is_not_believed(sn_sim):
    # An instance that does not evaluate the script ignores the condition and lists every user.
    spec = ConnectionSpec("servicenow", SN_URL, "oauth2_client_credentials", settings={"client_id": "ml-connector"},
                          secrets={"client_secret": "sn-demo-secret"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.GET, f"{SN_URL}/api/now/table/sys_user", json={"result": [
            {"sys_id": "6816f79cc0a8016401c5a33be04be441", "user_name": "admin"},
            {"sys_id": "5137153cc611227c000bbd1bd8cd2005", "user_name": SN_USER}]})
        mount(sn_sim, SN_URL, rsps)

        lines = build_client(spec, MemoryTokenStore()).check()

    assert [line["message"] for line in lines if not line["ok"]] == [
        "Cannot tell which ServiceNow user the connection acts as (the instance did not answer "
        "sys_user?sysparm_query=sys_id=javascript:gs.getUserID() with one user): set the service account user name"]


# --- 2. columns that exist ---------------------------------------------------------------------
@pytest.mark.django_db
def test_the_connection_test_names_the_source_id_column_the_customer_must_create(integration, sn_sim):
    sn_sim.drop_column("sn_apo_invoice", "u_source_key")

    report = check_connection(integration.target)

    assert not report["ok"]
    assert len(report["failed"]) == 1
    assert report["failed"][0].startswith("Create the column u_source_key (String, 100) on sn_apo_invoice: ")


@pytest.mark.django_db
def test_the_connection_test_checks_only_the_tables_of_the_integrations_using_it(db, sandbox, sn_sim):
    from integrations.tenants import load_document

    load_document(intacct_servicenow_document("https://intacct.test", SN_URL))
    connection = Connection.objects.get(tenant__slug="acme-intacct", name="sn")
    sn_sim.uninstall_table("proc_po")  # the Intacct pair stages no purchase orders
    sn_sim.uninstall_table("proc_po_item")

    report = check_connection(connection)

    assert report["ok"], report["failed"]
    checked = {line["check"] for line in report["checks"]}
    assert {"table:sn_apo_invoice", "table:sn_apo_invoice_line", "table:proc_vendor", "table:itfm_gl_accounts",
            "table:cmn_cost_center", "columns:sn_apo_invoice"} <= checked
    assert not {check for check in checked if "proc_po" in check}


@pytest.mark.django_db
def test_the_intacct_pairs_source_system_column_is_checked(db, sandbox, sn_sim):
    from integrations.tenants import load_document

    load_document(intacct_servicenow_document("https://intacct.test", SN_URL))
    sn_sim.drop_column("sn_apo_invoice", "u_source_system")

    report = check_connection(Connection.objects.get(tenant__slug="acme-intacct", name="sn"))

    assert report["failed"] == [
        "Create the column u_source_system on sn_apo_invoice: the integration setting source_system_field names it "
        "(intacct-sn)"]


@pytest.mark.django_db
def test_a_configured_code_column_that_does_not_exist_is_named(integration):
    update_settings(integration.target, code_fields={"gl_account": "u_gl_code"})

    report = check_connection(integration.target)

    assert report["failed"] == [
        "Column u_gl_code is missing on itfm_gl_accounts: it should hold the gl account's code; create it, or set "
        "the connection's code_fields for gl_account to the column that does"]


@pytest.mark.django_db
def test_a_column_the_table_inherits_is_found_under_its_parent(integration, sn_sim, x3_sim):
    own = [column for column in SUPPLIER_COLUMNS if column != "u_source_key"]
    sn_sim.install_table("x_base_party", "Party", fields=["u_source_key"])
    sn_sim.install_table("x_vendor", "Vendor", fields=own, super_class="x_base_party",
                         roles=["procurement_user"])
    update_settings(integration.target, tables={"supplier": "x_vendor"})

    entries = get(DICTIONARY.rsplit("/", 1)[1], sysparm_query="element=u_source_key^nameINx_vendor,x_base_party",
                  sysparm_fields="name,element").json()["result"]
    report = check_connection(integration.target)
    run_integration(integration, streams=["suppliers"])

    assert entries == [{"name": "x_base_party", "element": "u_source_key"}]
    assert report["ok"], report["failed"]
    assert "x_vendor has the columns name, supplier_number, u_source_key (inherited: u_source_key from " \
           "x_base_party)" in [line["message"] for line in report["checks"]]
    assert sorted(skey(row) for row in sn_sim.rows("x_vendor")) == sorted(
        s["BPSNUM"] for s in x3_sim.records("BPSUPPLIER"))


@pytest.mark.django_db
def test_a_run_refuses_to_write_to_a_table_without_the_source_id_column(integration, sn_sim):
    sn_sim.drop_column(SUPPLIER, "u_source_key")

    [run] = run_integration(integration, streams=["suppliers"])

    assert run.status == RunStatus.FAILED
    assert "Create the column u_source_key (String, 100) on proc_vendor" in run.error
    assert sn_sim.rows(SUPPLIER) == [], "nothing written: every row would be created again on the next run"


@pytest.mark.django_db
def test_the_column_guard_costs_one_call_per_cycle(integration, sn_sim):
    before = len(sn_sim.requests)

    run_integration(integration)

    asked = [r for r in sn_sim.requests[before:] if r.path == DICTIONARY]
    assert len(asked) == 1, "one sys_dictionary read covers every table the cycle writes"
    assert "u_source_key" in asked[0].param("sysparm_query")


@pytest.mark.django_db
def test_without_read_access_to_the_dictionary_a_run_writes_and_the_test_says_what_to_grant(integration, sn_sim,
                                                                                            x3_sim):
    sn_sim.install_table("sys_dictionary", roles=["admin"])  # the integration user gets 403

    run_integration(integration, streams=["suppliers"])
    report = check_connection(integration.target)

    assert_suppliers_match_x3(x3_sim, sn_sim)
    assert AuditEvent.objects.filter(action="connection.columns_unverified").count() == 1
    # columns are then checked on a row of each table; a table without rows cannot tell
    assert any(line["check"] == "columns:proc_vendor" and line["ok"] for line in report["checks"])
    assert [m for m in report["failed"] if "sys_dictionary" in m] == [
        "Cannot check the columns u_source_key of proc_po: the user cannot read sys_dictionary and the table has no "
        "rows yet; grant read access to sys_dictionary and sys_db_object, or check by hand that they exist",
        "Cannot check the columns u_source_key of proc_po_item: the user cannot read sys_dictionary and the table "
        "has no rows yet; grant read access to sys_dictionary and sys_db_object, or check by hand that they exist",
        "Cannot check the columns u_source_key of sn_apo_invoice: the user cannot read sys_dictionary and the table "
        "has no rows yet; grant read access to sys_dictionary and sys_db_object, or check by hand that they exist",
        "Cannot check the columns u_source_key of sn_apo_invoice_line: the user cannot read sys_dictionary and the "
        "table has no rows yet; grant read access to sys_dictionary and sys_db_object, or check by hand that they "
        "exist",
    ]


# --- 3. a strict instance ----------------------------------------------------------------------
def test_a_strict_instance_drops_an_unknown_column_and_ignores_a_condition_on_it(sandbox, sn_sim):
    created = requests.post(f"{SN_URL}/api/now/table/proc_vendor", json={"name": "Acme", "u_nope": "x"},
                            auth=(SN_USER, "integration-pass")).json()["result"]
    requests.post(f"{SN_URL}/api/now/table/proc_vendor", json={"name": "Globex"}, auth=(SN_USER, "integration-pass"))

    matched = get("proc_vendor", sysparm_query="u_nope=x").json()["result"]

    assert "u_nope" not in created and "u_nope" not in sn_sim.rows("proc_vendor")[0]
    assert sorted(row["name"] for row in matched) == ["Acme", "Globex"], "the condition was ignored"


def test_a_strict_table_knows_the_columns_it_inherits_and_the_registries_say_where_they_live(sandbox, sn_sim):
    sn_sim.install_table("x_base", "Base", fields=["u_source_key"])
    sn_sim.install_table("x_child", "Child", fields=["name"], super_class="x_base")

    created = requests.post(f"{SN_URL}/api/now/table/x_child", json={"name": "A", "u_source_key": "k1"},
                            auth=(SN_USER, "integration-pass")).json()["result"]
    found = get("x_child", sysparm_query="u_source_key=k2").json()["result"]
    registry = get("sys_db_object", sysparm_query="name=x_child", sysparm_fields="name,super_class.name")
    child = get("sys_dictionary", sysparm_query="name=x_child", sysparm_fields="element").json()["result"]

    assert created["u_source_key"] == "k1" and found == [], "an inherited column is a real column"
    assert registry.json()["result"] == [{"name": "x_child", "super_class.name": "x_base"}]
    assert [row["element"] for row in child] == ["name"], "inherited and system columns live under the parent"


@pytest.mark.django_db
def test_the_x3_flow_stages_every_invoice_on_a_strict_instance(integration, x3_sim, sn_sim):
    sync_everything(integration)

    assert_suppliers_match_x3(x3_sim, sn_sim)
    assert_purchase_orders_match_x3(x3_sim, sn_sim)
    assert_invoices_match_x3(x3_sim, sn_sim)
    line = sn_sim.rows("sn_apo_invoice_line")[0]
    assert line["gl_account"] and line["cost_center"] and line["purchase_order"], "no column was dropped"


# --- 4. a hibernating instance -------------------------------------------------------------------
def test_a_hibernating_instance_is_transient_for_a_read_and_uncertain_for_a_write(sandbox, sn_sim):
    client = basic_client()
    sn_sim.hibernating = True

    with pytest.raises(TransientError) as read:
        client.list("cmn_cost_center")
    written = client.batch([BatchItem("1", "POST", "/api/now/table/proc_vendor", {"name": "Acme"})])

    assert not read.value.ambiguous and "not JSON (text/html)" in str(read.value)
    assert isinstance(written["1"].error, TransientError) and written["1"].error.ambiguous


@pytest.mark.django_db
def test_a_run_against_a_hibernating_instance_fails_transient_and_the_next_completes(integration, x3_sim, sn_sim):
    sn_sim.hibernating = True
    [asleep] = run_integration(integration, streams=["suppliers"])
    failed = SyncRecord.objects.filter(stream="suppliers", status=RecordStatus.FAILED)

    assert asleep.status != RunStatus.RUNNING and "JSONDecodeError" not in asleep.error
    assert failed.count() == 25 and {r.error_class for r in failed} == {ErrorClass.TRANSIENT}

    sn_sim.hibernating = False
    make_failed_records_due(integration)
    run_integration(integration, streams=["suppliers"])

    assert_suppliers_match_x3(x3_sim, sn_sim)


# --- 6. a row deleted by hand --------------------------------------------------------------------
def change_in_x3(x3_sim, klass: str, key: str, **values) -> None:
    record = x3_sim.get(klass, key)
    x3_sim.upsert(klass, {**record, **values, "UPDDATTIM": None})


@pytest.mark.django_db
def test_a_supplier_row_deleted_by_hand_is_created_again_and_audited(integration, x3_sim, sn_sim):
    run_integration(integration, streams=["suppliers"])
    record = SyncRecord.objects.get(stream="suppliers", source_key="SUP001")
    sn_sim.store.delete(SUPPLIER, record.target_id)
    change_in_x3(x3_sim, "BPSUPPLIER", "SUP001", BPSNAM="Renamed supplier")

    run_integration(integration, streams=["suppliers"])

    record.refresh_from_db()
    [row] = [row for row in sn_sim.rows(SUPPLIER) if skey(row) == "SUP001"]
    assert record.status == RecordStatus.SYNCED and record.target_id == row["sys_id"]
    assert row["name"] == "Renamed supplier"
    assert set(source_key_counts(sn_sim, SUPPLIER).values()) == {1}
    event = AuditEvent.objects.get(action="record.recreated")
    assert event.detail["sys_id"] == row["sys_id"] and event.detail["key"] == "SUP001"


@pytest.mark.django_db
def test_a_purchase_order_line_deleted_by_hand_is_created_again(integration, x3_sim, sn_sim):
    run_integration(integration, streams=["suppliers", "purchase_orders"])
    order = x3_sim.records("PORDER")[0]
    key = f"{order['POHNUM']}/{order['PORDERP'][0]['POPLIN']}"
    [line] = [row for row in sn_sim.rows(PO_LINE) if skey(row) == key]
    sn_sim.store.delete(PO_LINE, line["sys_id"])
    change_in_x3(x3_sim, "PORDER", order["POHNUM"], CUR="USD" if order["CUR"] != "USD" else "EUR")

    run_integration(integration, streams=["purchase_orders"])

    assert_purchase_orders_match_x3(x3_sim, sn_sim)
    assert AuditEvent.objects.filter(action="record.recreated", detail__key=key).count() == 1
