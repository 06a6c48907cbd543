"""ServiceNow table profiles ("seed" names from the seeds, "apo" names from the docs) and the connection test."""

from __future__ import annotations

import pytest

from integrations.engine.checks import test_connection as check_connection
from integrations.models import AuditEvent, Connection
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import SystemicError
from integrations.systems.servicenow import UpsertRow, build_client
from integrations.systems.spec import ConnectionSpec
from tests.conftest import SN_URL
from tests.support import assert_invoices_match_x3, sync_everything

SN_USER = "integration.user"


def sn_client(**settings):
    spec = ConnectionSpec("servicenow", SN_URL, "basic",
                          settings={"username": SN_USER, **settings}, secrets={"password": "integration-pass"})
    return build_client(spec, MemoryTokenStore())


def test_the_seed_profile_uses_the_table_and_role_names_of_the_seeds():
    client = sn_client()

    assert client.tables == {
        "invoice": "sn_apo_invoice", "invoice_line": "sn_apo_invoice_line", "purchase_order": "proc_po",
        "purchase_order_line": "proc_po_item", "supplier": "proc_vendor", "gl_account": "itfm_gl_accounts",
        "cost_center": "cmn_cost_center",
        "gl_posting": "u_ml_gl_posting",  # no ServiceNow table exists for GL postings: the customer's own
        "payment": "sn_apo_invoice_payment",  # [U] named as the seed names its AP tables
    }
    assert client.required_roles == ["sn_apay.apo_user", "procurement_user"]


def test_the_apo_profile_uses_the_documented_source_to_pay_names():
    client = sn_client(table_profile="apo")

    assert client.tables == {
        "invoice": "sn_shop_invoice", "invoice_line": "sn_shop_invoice_line",
        "purchase_order": "sn_shop_purchase_order", "purchase_order_line": "sn_shop_purchase_order_line",
        "supplier": "sn_fin_supplier", "gl_account": "sn_fin_gl_account", "cost_center": "cmn_cost_center",
        "gl_posting": "u_ml_gl_posting", "payment": "sn_shop_invoice_payment_detail",
    }
    assert client.required_roles == ["sn_ap_apm.accounts_payable_specialist", "sn_fin.procurement_user"]


def test_one_table_of_a_profile_can_be_overridden_per_connection():
    client = sn_client(table_profile="apo", tables={"supplier": "core_company"})

    assert client.table("supplier") == "core_company"
    assert client.table("invoice") == "sn_shop_invoice"


def test_an_unknown_profile_is_refused_by_name():
    with pytest.raises(SystemicError, match="'custom'"):
        sn_client(table_profile="custom")


@pytest.mark.django_db
def test_an_apo_profile_integration_writes_every_invoice_to_the_apo_tables(integration, x3_sim, sn_sim):
    Connection.objects.filter(pk=integration.target_id).update(settings={
        **integration.target.settings, "table_profile": "apo"})
    integration.target.refresh_from_db()

    sync_everything(integration)

    assert_invoices_match_x3(x3_sim, sn_sim, "sn_shop_invoice", "sn_shop_invoice_line")
    assert sn_sim.rows("sn_apo_invoice") == [] and sn_sim.rows("proc_vendor") == []
    assert len(sn_sim.rows("sn_fin_supplier")) == 25 and len(sn_sim.rows("sn_shop_purchase_order")) == 40


@pytest.mark.django_db
def test_the_connection_check_passes_on_a_complete_instance(integration):
    report = check_connection(integration.target)

    assert report["ok"], report["failed"]
    checked = {line["check"] for line in report["checks"]}
    assert {"credentials", "table:sn_apo_invoice", "table:cmn_cost_center", "role:sn_apay.apo_user",
            "role:procurement_user"} <= checked
    event = AuditEvent.objects.get(action="connection.tested", connection_id=integration.target_id)
    assert event.detail["ok"] is True


@pytest.mark.django_db
def test_the_connection_check_names_a_missing_table(integration, sn_sim):
    sn_sim.uninstall_table("sn_apo_invoice_line")

    report = check_connection(integration.target)

    assert not report["ok"]
    assert report["failed"] == ["Table sn_apo_invoice_line (invoice_line) is missing: is its plugin licensed and installed?"]
    conn = Connection.objects.get(pk=integration.target_id)
    assert conn.last_test_ok is False and conn.last_test_report["failed"] == report["failed"]
    assert "sn_apo_invoice_line" in AuditEvent.objects.get(action="connection.tested").message


@pytest.mark.django_db
def test_the_connection_check_names_a_missing_role(integration, sn_sim):
    sn_sim.revoke_role(SN_USER, "sn_apay.apo_user")

    report = check_connection(integration.target)

    assert not report["ok"]
    assert report["failed"] == [f"{SN_USER} lacks the role sn_apay.apo_user"]


@pytest.mark.django_db
def test_the_apo_connection_check_names_the_apo_table_and_role_it_misses(integration, sn_sim):
    Connection.objects.filter(pk=integration.target_id).update(settings={
        **integration.target.settings, "table_profile": "apo"})
    integration.target.refresh_from_db()
    sn_sim.uninstall_table("sn_fin_gl_account")
    sn_sim.revoke_role(SN_USER, "sn_fin.procurement_user")

    report = check_connection(integration.target)

    assert sorted(report["failed"]) == sorted([
        "Table sn_fin_gl_account (gl_account) is missing: is its plugin licensed and installed?",
        f"{SN_USER} lacks the role sn_fin.procurement_user",
    ])


def test_a_lookup_on_a_column_the_table_lacks_is_refused_instead_of_matching_every_row(sandbox):
    # ServiceNow ignores a condition on an unknown column (API_FACTS 1.1): every row would match.
    client = sn_client(source_id_field="u_no_such_column")

    with pytest.raises(SystemicError, match="u_no_such_column"):
        client.upsert("cmn_cost_center", [UpsertRow("CC100", {"name": "x"}, uncertain=True)])
