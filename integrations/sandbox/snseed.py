"""The demo ServiceNow instance: both table profiles, an integration user, reference data.

Deterministic on purpose (fixed sys_ids and timestamps) so demos, screenshots and tests see
the same instance on every start. GL account codes mirror the Sage X3 demo chart
(60100 ... 61200) except the last one, 61200, which stays unmapped so the demo shows an
invoice line held for a missing GL mapping.

Both profiles use the same column names per concept (AP Invoice API naming, API_FACTS 1.7),
so a flow only swaps table names between profiles. Tables are not strict unless the simulator
is (``strict_columns=True``): a client may write other columns. Reference columns hold sys_ids.
The ``u_source_system``/``u_source_key`` columns are the ones a customer creates for the portal
(README, "ServiceNow columns to create").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .snstore import stable_sys_id

if TYPE_CHECKING:
    from .servicenow import ServiceNowSimulator

SEED_TIME = "2025-12-01 09:00:00"
INTEGRATION_USER = "integration.user"
INTEGRATION_PASSWORD = "integration-pass"
OAUTH_CLIENT_ID = "ml-connector"
OAUTH_CLIENT_SECRET = "sn-demo-secret"
INTEGRATION_ROLES = [
    "sn_apay.apo_user",
    "procurement_user",
    "sn_ap_apm.accounts_payable_specialist",
    "sn_fin.procurement_user",
]

SOURCE = ["u_source_system", "u_source_key"]  # where a connector records the ERP identity
INVOICE = [
    "number",
    "supplier_invoice_number",
    "supplier",
    "purchase_order",
    "invoice_date",
    "accounting_date",
    "due_date",
    "currency",
    "subtotal",
    "tax_amount",
    "amount_invoiced",
    "approval",
    "state",
    "short_description",
    *SOURCE,
]
INVOICE_LINE = [
    "invoice",
    "line_number",
    "purchase_order",
    "purchase_order_line",
    "item",
    "line_description",
    "line_quantity",
    "uom",
    "line_unit_price",
    "line_amount_invoiced",
    "gl_account",
    "cost_center",
    *SOURCE,
]
PURCHASE_ORDER = [
    "number",
    "erp_number",
    "supplier",
    "order_date",
    "currency",
    "total_amount",
    "status",
    "short_description",
    *SOURCE,
]
PO_LINE = [
    "purchase_order",
    "line_number",
    "item",
    "description",
    "quantity",
    "uom",
    "unit_price",
    "total_amount",
    *SOURCE,
]
SUPPLIER = [
    "name",
    "supplier_number",
    "short_name",
    "street",
    "city",
    "zip",
    "country",
    "currency",
    "payment_terms",
    "phone",
    "website",
    "contact",
    "active",
    *SOURCE,
]
# The Sage 300 pair pushes GL accounts, so the GL tables carry the source columns too.
GL_ACCOUNT = ["account_number", "name", "description", "active", *SOURCE]
COST_CENTER = ["code", "name", "active"]
# A custom table (``u_`` prefix) the customer creates to stage ERP GL postings for reconciliation.
GL_POSTING_TABLE = "u_ml_gl_posting"
GL_POSTING = [
    "u_journal",
    "u_entry_number",
    "u_posting_date",
    "u_gl_account",
    "u_cost_center",
    "u_entry_type",
    "u_debit",
    "u_credit",
    "u_supplier",
    "u_invoice",
    "u_comment",
    *SOURCE,
]

# Payments of invoices, read back to the ERP (the Intacct pair). [U] ServiceNow documents the table
# sn_shop_invoice_payment_detail and its fields' labels (payment amount, payment date, payment
# method, payment reference ID, currency), not their column names; these follow the labels.
PAYMENT = ["invoice", "payment_amount", "payment_date", "payment_method", "payment_reference_id", "currency"]
PAYMENT_TABLES = {"seed": "sn_apo_invoice_payment", "apo": "sn_shop_invoice_payment_detail"}

# (invoice, line, po, po line, supplier, gl account, invoice roles, procurement roles)
PROFILES = {
    "seed": (
        "sn_apo_invoice",
        "sn_apo_invoice_line",
        "proc_po",
        "proc_po_item",
        "proc_vendor",
        "itfm_gl_accounts",
        ["sn_apay.apo_user"],
        ["procurement_user"],
    ),
    "apo": (
        "sn_shop_invoice",
        "sn_shop_invoice_line",
        "sn_shop_purchase_order",
        "sn_shop_purchase_order_line",
        "sn_fin_supplier",
        "sn_fin_gl_account",
        ["sn_ap_apm.accounts_payable_specialist"],
        ["sn_fin.procurement_user", "sn_ap_apm.accounts_payable_specialist"],
    ),
}

GL_ACCOUNTS = [  # names as in the X3 demo chart, so name-based mapping suggestions agree
    ("60100", "Raw materials"),
    ("60200", "Freight in"),
    ("60300", "Packaging materials"),
    ("60400", "Subcontracting"),
    ("60500", "Office supplies"),
    ("60600", "IT equipment"),
    ("60700", "Software subscriptions"),
    ("60800", "Maintenance and repairs"),
    ("60900", "Utilities"),
    ("61000", "Professional fees"),
    ("61100", "Travel and accommodation"),
    # 61200 is deliberately absent; 69900 exists only in ServiceNow.
    ("69900", "Suspense - unallocated spend"),
]
COST_CENTERS = [
    ("CC100", "Production"),
    ("CC200", "Logistics"),
    ("CC300", "Sales and marketing"),
    ("CC400", "Administration"),
    ("CC500", "Research and development"),
    ("CC600", "Information technology"),
]


LABELS = {
    "sn_apo_invoice": "APO Invoice",
    "sn_apo_invoice_line": "APO Invoice Line",
    "proc_po": "Purchase order",
    "proc_po_item": "Purchase order line items",
    "proc_vendor": "Vendor",
    "itfm_gl_accounts": "General Ledger Account",
    "sn_shop_invoice": "Invoice",
    "sn_shop_invoice_line": "Invoice Line",
    "sn_shop_purchase_order": "Purchase Order",
    "sn_shop_purchase_order_line": "Purchase Order Line",
    "sn_fin_supplier": "Supplier",
    "sn_fin_gl_account": "Ledger Account",
    "sn_apo_invoice_payment": "APO Invoice Payment",
    "sn_shop_invoice_payment_detail": "Invoice Payment Detail",
}


def seed_demo(sim: ServiceNowSimulator) -> None:
    """Install both table profiles plus reference data, the integration user and client."""
    for profile, (invoice, line, po, po_line, supplier, gl, invoice_roles, proc_roles) in PROFILES.items():
        prefix = "APINV" if profile == "seed" else "INV"
        sim.install_table(supplier, LABELS[supplier], fields=SUPPLIER, roles=proc_roles)
        sim.install_table(
            po,
            LABELS[po],
            fields=PURCHASE_ORDER,
            references={"supplier": supplier},
            roles=proc_roles,
            number_prefix="PO",
        )
        sim.install_table(po_line, LABELS[po_line], fields=PO_LINE, references={"purchase_order": po}, roles=proc_roles)
        sim.install_table(gl, LABELS[gl], fields=GL_ACCOUNT)
        sim.install_table(
            invoice,
            LABELS[invoice],
            fields=INVOICE,
            references={"supplier": supplier, "purchase_order": po},
            defaults={"approval": "not requested", "state": "draft"},
            roles=invoice_roles,
            number_prefix=prefix,
        )
        sim.install_table(
            line,
            LABELS[line],
            fields=INVOICE_LINE,
            references={
                "invoice": invoice,
                "purchase_order": po,
                "purchase_order_line": po_line,
                "gl_account": gl,
                "cost_center": "cmn_cost_center",
            },
            roles=invoice_roles,
        )
        payment = PAYMENT_TABLES[profile]
        sim.install_table(payment, LABELS[payment], fields=PAYMENT, references={"invoice": invoice},
                          roles=invoice_roles)
        for code, name in GL_ACCOUNTS:
            _seed_row(sim, gl, code, {"account_number": code, "name": name, "description": name, "active": "true"})
    sim.install_table("cmn_cost_center", "Cost Center", fields=COST_CENTER)
    sim.install_table(GL_POSTING_TABLE, "ML GL Posting", fields=GL_POSTING)
    for code, name in COST_CENTERS:
        _seed_row(sim, "cmn_cost_center", code, {"code": code, "name": name, "active": "true"})
    sim.install_table(
        "core_company",
        "Company",
        fields=["name", "vendor", "street", "city", "zip", "country", "phone", "website", *SOURCE],
    )

    sim.add_user(INTEGRATION_USER, INTEGRATION_PASSWORD, INTEGRATION_ROLES)
    sim.add_oauth_client(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, INTEGRATION_USER)


def _seed_row(sim: ServiceNowSimulator, table: str, key: str, values: dict[str, str]) -> None:
    sys_id = stable_sys_id(table, key)
    if sys_id in sim.store.require(table).rows:
        return
    sim.insert(
        table,
        {
            **values,
            "sys_id": sys_id,
            "sys_created_on": SEED_TIME,
            "sys_updated_on": SEED_TIME,
            "sys_created_by": "admin",
            "sys_updated_by": "admin",
        },
    )
