"""The harness of every pair, keyed "kind:main stream": the conformance suite runs every check on each.

A new pair joins by adding its harness here; ``test_every_registered_pair_has_a_harness`` fails
until it does, and every check runs against every harness (there is no way to opt out).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from integrations.engine.replay import replay_records
from integrations.engine.runner import ensure_streams
from integrations.models import Connection, Integration, Mapping, Trigger
from integrations.sandbox.base import SimRequest, Simulator
from tests.support import skey

from . import fake
from .pairs import EPOCH, WRITE_METHODS, PairHarness, TargetRow


# --- Sage X3 → ServiceNow ------------------------------------------------------------------------
class ServiceNowTarget:
    """Reading back what a flow staged into a ServiceNow table, by the source-id column."""

    target_url = "https://acme.service-now.com"
    table: ClassVar[str]
    value_column: ClassVar[str] = "name"

    target_sim: Any

    def target_rows(self) -> dict[str, list[TargetRow]]:
        rows: dict[str, list[TargetRow]] = {}
        for row in self.target_sim.rows(self.table):
            if row.get("u_source_key"):
                rows.setdefault(skey(row), []).append(
                    TargetRow(row["sys_id"], self.target_value(row), int(row.get("sys_mod_count") or 0)))
        return rows

    def target_value(self, row: dict[str, str]) -> str:
        return row.get(self.value_column, "")

    def is_target_write(self, request: SimRequest) -> bool:
        return request.method in WRITE_METHODS and request.path.rstrip("/") != "/oauth_token.do"

    @staticmethod
    def servicenow() -> Simulator:
        from integrations.sandbox.clock import ManualClock
        from integrations.sandbox.servicenow import ServiceNowSimulator

        return ServiceNowSimulator(clock=ManualClock()).seed_demo()


class SageX3Harness(ServiceNowTarget, PairHarness):
    kind = "sage_x3__servicenow"
    main_stream = "suppliers"
    source_url = "http://x3.acme.test:8124"
    table = "proc_vendor"
    budget_side = "source"  # token + page reads
    budget = 3

    def build_simulators(self) -> tuple[Simulator, Simulator]:
        from integrations.sandbox.sage_x3 import SageX3Simulator

        x3 = SageX3Simulator()
        x3.seed_demo()
        return x3, self.servicenow()

    def load_tenant(self) -> Integration:
        from integrations.demo import x3_servicenow_document
        from integrations.tenants import load_document

        load_document(x3_servicenow_document(self.source_url, self.target_url,
                                             x3_refresh_token=self.source_sim.issue_refresh_token("ml-connector")))
        return Integration.objects.select_related("source", "target", "tenant").get(name="x3-to-sn")

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        x3 = self.source_sim
        template = x3.get("BPSUPPLIER", key) or x3.get("BPSUPPLIER", "SUP001")
        x3.upsert("BPSUPPLIER", {**template, "BPSNUM": key, "BPSNAM": name, "UPDDATTIM": updated})

    def source_values(self) -> dict[str, str]:
        return {s["BPSNUM"]: s["BPSNAM"] for s in self.source_sim.records("BPSUPPLIER")}


class SageX3InvoicesHarness(SageX3Harness):
    """Invoices with lines: reference data, suppliers and purchase orders first, mappings approved.

    A record's value is its supplier invoice number and how many lines it has, so a line
    written twice (or lost) shows as a difference too.
    """

    main_stream = "invoices"
    upstream = ("x3_gl_accounts", "sn_gl_accounts", "x3_cost_centers", "sn_cost_centers", "suppliers",
                "purchase_orders")
    table = "sn_apo_invoice"
    budget = 4  # token, then a page; X3's $query facet carries the lines (no read per invoice)

    def approve_mappings(self) -> None:
        from tests.support import approve_all_mappings

        approve_all_mappings(self.integration)  # the suggestions, and 61200 mapped by hand

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        x3 = self.source_sim
        template = x3.get("PINVOICE", key) or x3.get("PINVOICE", "PI00001")
        x3.upsert("PINVOICE", {**template, "NUM": key, "BPRVCR": name, "UPDDATTIM": updated})

    def source_values(self) -> dict[str, str]:
        return {i["NUM"]: f"{i['BPRVCR']} / {len(i['PINVOICED'])} lines" for i in self.source_sim.records("PINVOICE")}

    def target_value(self, row: dict[str, str]) -> str:
        lines = sum(1 for line in self.target_sim.rows("sn_apo_invoice_line") if line.get("invoice") == row["sys_id"])
        return f"{row.get('supplier_invoice_number', '')} / {lines} lines"


# --- Sage Intacct ↔ ServiceNow -------------------------------------------------------------------
class SageIntacctHarness(ServiceNowTarget, PairHarness):
    kind = "sage_intacct__servicenow"
    main_stream = "vendors"
    source_url = "https://intacct.test"
    table = "proc_vendor"
    # Intacct reads scan every changed record before the first page is yielded (readByQuery
    # cannot sort), so a read budget either stops the scan or nothing; squeeze the writes: the
    # token, the cycle's source-id column check (sys_dictionary), a look-up and a batch.
    budget_side = "target"
    budget = 4

    def build_simulators(self) -> tuple[Simulator, Simulator]:
        from integrations.sandbox.intacct import IntacctSimulator

        return IntacctSimulator().seed_demo(), self.servicenow()

    def load_tenant(self) -> Integration:
        from integrations.demo import intacct_servicenow_document
        from integrations.tenants import load_document

        load_document(intacct_servicenow_document(self.source_url, self.target_url))
        return Integration.objects.select_related("source", "target", "tenant").get(name="intacct-sn")

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        from integrations.sandbox.intacct_seed import COMPANY_ID
        from integrations.sandbox.intacct_store import WHEN_FORMAT

        intacct = self.source_sim
        when = updated.strftime(WHEN_FORMAT)
        with intacct.lock:
            existing = intacct.company(COMPANY_ID).by_key("VENDOR", key)
            if existing is not None:  # an edit in the Intacct UI
                existing.update(NAME=name, WHENMODIFIED=when)
                return
        intacct.insert(COMPANY_ID, "VENDOR", {"VENDORID": key, "NAME": name, "STATUS": "active",
                                              "TERMNAME": "Net 30", "CURRENCY": "USD"}, when=when)

    def source_values(self) -> dict[str, str]:
        from integrations.sandbox.intacct_seed import COMPANY_ID

        return {v["VENDORID"]: v["NAME"] for v in self.source_sim.records(COMPANY_ID, "VENDOR")}


# --- Sage 300 → ServiceNow ------------------------------------------------------------------------
class Sage300Harness(ServiceNowTarget, PairHarness):
    """Vendors: Sage 300 stamps ``DateLastMaintained`` to the day, so a harness "second" is a day here."""

    kind = "sage_300__servicenow"
    main_stream = "vendors"
    source_url = "https://erp.acme.test"
    table = "proc_vendor"
    budget_side = "source"  # an IIS call limit is what the budget exists for
    budget = 3

    def build_simulators(self) -> tuple[Simulator, Simulator]:
        from integrations.sandbox.sage300 import Sage300Simulator

        return Sage300Simulator().seed_demo(), self.servicenow()

    def load_tenant(self) -> Integration:
        from integrations.demo import sage300_servicenow_document
        from integrations.tenants import load_document

        load_document(sage300_servicenow_document(self.source_url, self.target_url))
        return Integration.objects.select_related("source", "target", "tenant").get(name="s300-to-sn")

    def new_key(self, serial: int) -> str:
        return str(9000 + serial)

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        day = (EPOCH + timedelta(days=(updated - EPOCH).total_seconds())).date().isoformat()
        with self.source_sim.lock:
            vendors = self.source_sim.rows("APVendors")
            existing = next((v for v in vendors if v["VendorNumber"] == key), None)
            if existing is not None:  # an edit in Sage 300
                existing.update(VendorName=name, DateLastMaintained=day)
                return
            vendors.append({"VendorNumber": key, "VendorName": name, "ShortName": key, "Status": "Active",
                            "CurrencyCode": "USD", "TermsCode": "NET30", "DateLastMaintained": day})

    def source_values(self) -> dict[str, str]:
        return {v["VendorNumber"]: v["VendorName"] for v in self.source_sim.rows("APVendors")}


# --- SYSPRO → ServiceNow --------------------------------------------------------------------------
class SysproHarness(ServiceNowTarget, PairHarness):
    """Suppliers: SYSPRO keeps ``DateLastModified`` as a date, so a harness "second" is a day here.

    Every run logs on to e.net and off again (one licence seat): the budget check counts the
    log-on against SYSPRO's budget, and the log-off goes out even once the budget is spent.
    """

    kind = "syspro__servicenow"
    main_stream = "suppliers"
    source_url = "http://syspro.acme.test:20000"
    table = "proc_vendor"
    budget_side = "source"
    budget = 3  # a log-on and two pages

    def build_simulators(self) -> tuple[Simulator, Simulator]:
        from integrations.sandbox.syspro import SysproSimulator

        return SysproSimulator().seed_demo(), self.servicenow()

    def load_tenant(self) -> Integration:
        from integrations.demo import syspro_servicenow_document
        from integrations.tenants import load_document

        load_document(syspro_servicenow_document(self.source_url, self.target_url))
        return Integration.objects.select_related("source", "target", "tenant").get(name="syspro-to-sn")

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        day = (EPOCH + timedelta(days=(updated - EPOCH).total_seconds())).date().isoformat()
        suppliers = self.source_sim.table("ApSupplier")
        with self.source_sim.lock:
            if any(row["Supplier"] == key for row in suppliers.as_dicts()):  # an edit in SYSPRO
                suppliers.update([key], {"SupplierName": name, "DateLastModified": day})
                return
            suppliers.insert({"Supplier": key, "SupplierName": name, "SupShortName": key, "Currency": "USD",
                              "TermsCode": "30", "OnHold": "N", "DateLastModified": day})

    def source_values(self) -> dict[str, str]:
        return {row["Supplier"]: row["SupplierName"] for row in self.source_sim.table("ApSupplier").as_dicts()}


class SysproInvoicesHarness(SysproHarness):
    """Invoices with their distribution lines, which a second read of the line table joins to each
    page of invoices: budget cuts, outages and edits that move an invoice to a later date must
    never lose or double a line. Reference data, suppliers and purchase orders first; cost centres
    approved (CC700, which ServiceNow lacks, mapped by hand).

    A record's value is its reference and how many lines it has in the target.
    """

    main_stream = "invoices"
    upstream = ("sn_gl_accounts", "sn_cost_centers", "syspro_gl_accounts", "syspro_cost_centers", "gl_accounts",
                "suppliers", "purchase_orders")
    table = "sn_apo_invoice"
    # a log-on, a page of four invoices and up to four pages of their lines (the demo's have up to three
    # each, and one line more shows where the page's lines end)
    budget = 6

    def approve_mappings(self) -> None:
        from integrations.engine.mappings import map_manually

        super().approve_mappings()
        unmapped = Mapping.objects.get(integration=self.integration, kind="cost_center", source_code="CC700")
        replay_records(map_manually(unmapped, "CC400").released_ids, trigger=Trigger.MAPPING)

    def new_key(self, serial: int) -> str:
        return f"CON001/CF{serial:04d}"

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        from decimal import Decimal

        from integrations.sandbox.syspro_seed import COMPANY, add_invoice

        supplier, _, number = key.partition("/")
        day = (EPOCH + timedelta(days=(updated - EPOCH).total_seconds())).date().isoformat()
        tables = self.source_sim.companies[COMPANY[0]][1]
        with self.source_sim.lock:
            if any((row["Supplier"], row["Invoice"]) == (supplier, number) for row in tables["ApInvoice"].as_dicts()):
                # an edit in SYSPRO: the invoice (and its lines, which repeat its date) moves to that day
                tables["ApInvoice"].update([supplier, number], {"Reference": name, "PostDate": day})
                for line in tables["ApInvoiceDistr"].as_dicts():
                    if (line["Supplier"], line["Invoice"]) == (supplier, number):
                        tables["ApInvoiceDistr"].update([supplier, number, line["DistrLine"]], {"PostDate": day})
                return
            serial = int(number[2:])
            add_invoice(tables, supplier, "USD", number, day,
                        [("60100", "CC100", Decimal("10.25"), "Line 1"), ("60200", "CC700", Decimal("3.10"), "Line 2")]
                        [:1 + serial % 2], journal=90000 + serial)
            tables["ApInvoice"].update([supplier, number], {"Reference": name})

    def source_values(self) -> dict[str, str]:
        tables = self.source_sim.companies["EDU1"][1]
        lines: dict[tuple[str, str], int] = {}
        for line in tables["ApInvoiceDistr"].as_dicts():
            parent = (line["Supplier"], line["Invoice"])
            lines[parent] = lines.get(parent, 0) + 1
        return {f"{row['Supplier']}/{row['Invoice']}": f"{row['Reference']} / {lines.get((row['Supplier'], row['Invoice']), 0)} lines"
                for row in tables["ApInvoice"].as_dicts()}

    def target_value(self, row: dict[str, str]) -> str:
        lines = sum(1 for line in self.target_sim.rows("sn_apo_invoice_line") if line.get("invoice") == row["sys_id"])
        return f"{row.get('short_description', '')} / {lines} lines"


# --- ServiceTitan → Sage X3 ----------------------------------------------------------------------
ST_URL = "https://api-integration.servicetitan.io"


class ServiceTitanJobsHarness(PairHarness):
    """Completed jobs as X3 journal entries. X3 posts are one call each: the budget squeezed is X3's.

    A job's value is its labor cost; the target's, the debits of its live entry (an entry that a
    reversal cancelled no longer counts, so a job changed after posting is still "one row").
    """

    kind = "servicetitan__sage_x3"
    main_stream = "job_costs"
    upstream = ("st_job_types", "st_business_units", "x3_gl_accounts", "x3_cost_centers")
    source_url = ST_URL
    target_url = "http://x3.field.test:8124"
    budget_side = "target"
    budget = 6  # a page of four posts, the look-up of those a cut left uncertain, and one to spare

    def build_simulators(self) -> tuple[Simulator, Simulator]:
        from integrations.sandbox.sage_x3 import SageX3Simulator
        from integrations.sandbox.servicetitan import ServiceTitanSimulator
        from integrations.sandbox.servicetitan_seed import APP_KEY, CLIENT_ID, CLIENT_SECRET, demo_data

        st = ServiceTitanSimulator(rate_limit_per_second=0)
        st.add_client(CLIENT_ID, CLIENT_SECRET)
        st.add_app_key(APP_KEY)
        data = demo_data()
        data[("jpm", "jobs")] = []  # only the harness's jobs
        st.load(data)
        x3 = SageX3Simulator(folders=())
        x3.seed_field_service()
        return st, x3

    def load_tenant(self) -> Integration:
        from integrations.demo import servicetitan_x3_document
        from integrations.tenants import load_document

        load_document(servicetitan_x3_document(self.source_url, self.target_url))
        return Integration.objects.select_related("source", "target", "tenant").get(name="st-to-x3")

    def new_key(self, serial: int) -> str:
        return str(900_000 + serial)

    @staticmethod
    def labor(name: str) -> str:
        return f"{100 + sum(map(ord, name)) % 500}.25"

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        from integrations.sandbox.servicetitan_seed import stamp

        sim = self.source_sim
        table = sim.tables[("jpm", "jobs")]
        job = {"id": int(key), "jobNumber": key, "jobStatus": "Completed", "completedOn": stamp(updated),
               "businessUnitId": 11, "jobTypeId": 21, "summary": name, "modifiedOn": stamp(updated),
               "customFields": [{"typeId": 101, "name": "laborCost", "value": self.labor(name)},
                                {"typeId": 102, "name": "materialCost", "value": "0.00"}]}
        with sim.lock:
            table.put(job, updated, True, next(sim._seq))

    def source_values(self) -> dict[str, str]:
        return {str(job["id"]): job["customFields"][0]["value"] for job in self.source_sim.rows("jpm", "jobs")}

    def target_rows(self) -> dict[str, list[TargetRow]]:
        import re

        entries = self.target_sim.records("GACCENTRY", "FIELD")
        cancelled = {match.groups() for e in entries if (match := re.fullmatch(r"ST-JOB-(\d+)-R(\d+)", e["REF"]))}
        found: dict[str, list[TargetRow]] = {}
        for entry in entries:
            match = re.fullmatch(r"ST-JOB-(\d+)(?:-(\d+))?", entry["REF"])
            if match and (match[1], match[2] or "1") not in cancelled:
                debits = sum(line["AMTCUR"] for line in entry["GACCENTRYD"] if line["SNS"] == 1)
                found.setdefault(match[1], []).append(TargetRow(entry["NUM"], str(debits), 0))
        return found


class ServiceTitanBillsHarness(ServiceTitanJobsHarness):
    """Inventory bills as X3 supplier invoices, read through ServiceTitan's export feed (the checkpoint
    is its continueFrom token). The demo's bills are left out; each bill here is against PO-7001.

    A bill's value is its amount; the target's, the invoice's ``AMTATI``. A bill whose money changes
    after it was posted is held for a person by design (never re-posted; tests/servicetitan checks
    it), so an edit here changes what a warehouse clerk edits on a received bill, its summary: the
    feed delivers it again and nothing is written twice.
    """

    main_stream = "inventory_bills"
    # ServiceTitan decides the export page's size, and a page is checkpointed whole (its token): the
    # budget squeezed is ServiceTitan's, a page or so per run (a token, an export page, its POs)
    budget_side = "source"
    budget = 3
    upstream = ("st_vendors", "st_purchase_orders", "st_gl_accounts", "st_business_units", "x3_suppliers",
                "x3_purchase_orders", "x3_gl_accounts", "x3_cost_centers")

    def build_simulators(self) -> tuple[Simulator, Simulator]:
        st, x3 = super().build_simulators()
        st.tables[("accounting", "inventory-bills")] = type(st.tables[("accounting", "inventory-bills")])(
            st.tables[("accounting", "inventory-bills")].spec)
        st.export_page_size = 4  # the checks' page size
        return st, x3

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        from integrations.sandbox.servicetitan_seed import stamp

        sim = self.source_sim
        table = sim.tables[("accounting", "inventory-bills")]
        if int(key) in table.rows:  # an edit: the summary, seen again through the feed
            with sim.lock:
                table.put({**table.rows[int(key)], "summary": name}, updated, True, next(sim._seq))
            return
        po = sim.record("inventory", "purchase-orders", 7001)
        cost = self.labor(name)
        bill = {"id": int(key), "purchaseOrderId": 7001, "referenceNumber": key, "vendorNumber": f"V-{key}",
                "billDate": stamp(updated), "billAmount": cost, "taxAmount": "0.00", "shippingAmount": "0.00",
                "summary": name, "businessUnit": {"id": 11, "name": "Electrical North"},
                "vendor": {"id": po["vendorId"], "name": "Northwind Electrical Supply"},
                "items": [{"order": 1, "name": po["items"][0]["skuCode"], "description": name, "quantity": "1",
                           "cost": cost, "generalLedgerAccount": {"number": "5100", "name": "Materials Cost"}}]}
        with sim.lock:
            sim.tables[("accounting", "inventory-bills")].put(bill, updated, True, next(sim._seq))

    def source_values(self) -> dict[str, str]:
        return {str(bill["id"]): bill["billAmount"] for bill in self.source_sim.rows("accounting", "inventory-bills")}

    def target_rows(self) -> dict[str, list[TargetRow]]:
        found: dict[str, list[TargetRow]] = {}
        for invoice in self.target_sim.records("PINVOICE", "FIELD"):
            found.setdefault(invoice["BPRVCR"], []).append(TargetRow(invoice["NUM"], str(invoice["AMTATI"]), 0))
        return found


# --- the X3 pairs over GraphQL (Xtrem): the same checks with the connection's transport switched ----
def _x3_over_graphql(document: dict[str, Any]) -> dict[str, Any]:
    for conn in document["connections"]:
        if conn["system"] == "sage_x3":
            conn["settings"] = {**conn.get("settings", {}), "transport": "graphql"}
    return document


class GraphQLTransport:
    """Loads the pair's tenant with its X3 connection on the GraphQL transport; each test introspects afresh."""

    tenant_document: ClassVar[str]
    integration_name: ClassVar[str]

    def load_tenant(self) -> Integration:
        from integrations import demo
        from integrations.systems.sage_x3_graphql import forget_schemas
        from integrations.tenants import load_document

        forget_schemas()
        harness: Any = self
        if self.tenant_document == "x3_servicenow_document":
            document = demo.x3_servicenow_document(
                harness.source_url, harness.target_url,
                x3_refresh_token=harness.source_sim.issue_refresh_token("ml-connector"))
        else:
            document = demo.servicetitan_x3_document(harness.source_url, harness.target_url)
        load_document(_x3_over_graphql(document))
        return Integration.objects.select_related("source", "target", "tenant").get(name=self.integration_name)


class SageX3GraphQLHarness(GraphQLTransport, SageX3Harness):
    tenant_document, integration_name = "x3_servicenow_document", "x3-to-sn"
    budget = 4  # a token, the introspection, then pages


class SageX3InvoicesGraphQLHarness(GraphQLTransport, SageX3InvoicesHarness):
    tenant_document, integration_name = "x3_servicenow_document", "x3-to-sn"
    budget = 5  # a token, the introspection, then a page; the lines come with their invoices


class ServiceTitanJobsGraphQLHarness(GraphQLTransport, ServiceTitanJobsHarness):
    tenant_document, integration_name = "servicetitan_x3_document", "st-to-x3"
    budget = 7  # the introspection, a page of four mutations, the look-up of those a cut left uncertain


# --- the vendor-free pair ----------------------------------------------------------------------
class FakeHarness(PairHarness):
    """The conformance ledger → store pair of :mod:`tests.conformance.fake`, registered by the test."""

    kind = fake.KIND
    main_stream = "entries"
    source_url = "https://ledger.conformance.test"
    target_url = "https://store.conformance.test"
    budget_side = "source"
    budget = 3
    flow: type = fake.LedgerToStore

    def build_simulators(self) -> tuple[Simulator, Simulator]:
        fake.install(self.monkeypatch, self.flow)
        ledger = fake.LedgerSimulator()
        for n in range(1, 6):  # a few entries from before the integration existed
            ledger.put(f"SEED{n}", f"SEED{n} v1", fake.stamp(-100 + n))
        return ledger, fake.StoreSimulator()

    def load_tenant(self) -> Integration:
        # Not through a tenant document: load_document (like the admin form) only accepts the
        # systems listed in the Connection model's ``System`` choices, which a test cannot extend.
        # The connection and integration settings are still checked by the registered schemas.
        from accounts.models import Tenant
        from integrations.flows import get_flow
        from integrations.systems.registry import schema_for
        from integrations.systems.schema import ConnectionFields

        tenant = Tenant.objects.create(slug="conformance", name="Conformance")
        connections = {}
        for name, system, url in (("ledger", fake.SOURCE_SYSTEM, self.source_url),
                                  ("store", fake.TARGET_SYSTEM, self.target_url)):
            fields = ConnectionFields(url=url, auth_method="basic", settings={"username": fake.USERNAME},
                                      secrets={"password": fake.PASSWORD})
            problems = schema_for(system).problems(fields)
            assert not problems, problems
            connection = Connection(tenant=tenant, name=name, system=system, url=url, auth_method="basic",
                                    settings=fields.settings, secrets=fields.secrets)
            connection.clean()  # the model's own check, through the registered schema
            connection.save()
            connections[name] = connection
        settings = {"page_size": 50}
        assert not get_flow(self.kind).settings_errors(settings)
        integration = Integration.objects.create(tenant=tenant, name="ledger-to-store", kind=self.kind,
                                                 source=connections["ledger"], target=connections["store"],
                                                 settings=settings)
        ensure_streams(integration)
        return Integration.objects.select_related("source", "target", "tenant").get(pk=integration.pk)

    def put_record(self, key: str, name: str, updated: datetime) -> None:
        self.source_sim.put(key, name, f"{updated:%Y-%m-%dT%H:%M:%SZ}")

    def source_values(self) -> dict[str, str]:
        return {key: entry["name"] for key, entry in self.source_sim.entries.items()}

    def target_rows(self) -> dict[str, list[TargetRow]]:
        rows: dict[str, list[TargetRow]] = {}
        for row in self.target_sim.rows.values():
            rows.setdefault(row["source_key"], []).append(TargetRow(row["id"], row["name"], row["version"]))
        return rows

    def is_target_write(self, request: SimRequest) -> bool:
        return request.method in WRITE_METHODS


def fake_harness(flow: type) -> type[FakeHarness]:
    """The fake pair's harness with another (e.g. deliberately broken) flow registered under its kind."""
    return type(f"FakeHarness_{flow.__name__}", (FakeHarness,), {"flow": flow})


# Every registered flow kind must have at least one harness here (the fake pair's too, though it is
# registered only while its test runs), by "kind:main stream".
HARNESSES: dict[str, type[PairHarness]] = {
    f"{harness.kind}:{harness.main_stream}": harness
    for harness in (SageX3Harness, SageX3InvoicesHarness, SageIntacctHarness, Sage300Harness, SysproHarness,
                    SysproInvoicesHarness, ServiceTitanJobsHarness, ServiceTitanBillsHarness, FakeHarness)
}
# The X3 pairs once more over GraphQL.
for _harness in (SageX3GraphQLHarness, SageX3InvoicesGraphQLHarness, ServiceTitanJobsGraphQLHarness):
    HARNESSES[f"{_harness.kind}:{_harness.main_stream} (graphql)"] = _harness
# The fake pair once more, reading through an export API whose checkpoint is the vendor's token.
HARNESSES[f"{fake.KIND}:entries (export token)"] = fake_harness(fake.ExportLedgerToStore)
