"""ServiceTitan → Sage X3 (seed: servicetitan--sage-x3.txt): the first pair that posts into an ERP.

Order: reference data from both sides (ServiceTitan job types, business units, GL accounts,
vendors and purchase orders; X3 GL accounts, cost centers, suppliers and purchase orders), each
ServiceTitan code suggested its X3 row, approved by a person (:data:`MAPPING_KINDS`); vendors
both ways; then the documents:

- **Job costs → journal entries** (``GACCENTRY``): one balanced entry per completed job, labor
  and material debited to the accounts mapped from the job's type, on the cost center mapped
  from its business unit, credited in total to ``journal_offset_account``. ServiceTitan's job
  schema has no cost fields: the connection's ``job_cost_fields`` names them (custom fields
  ``laborCost``/``materialCost`` by default, which a contractor fills from its payroll and
  inventory costing). The entry's ``REF`` is ``ST-JOB-<job id>``. Entries are never edited: a
  job whose costs change after posting gets a reversing entry (``ST-JOB-<id>-R<n>``, the posted
  lines with their sense flipped, dated the day of the change) and a new one
  (``ST-JOB-<id>-<n+1>``); a job no longer completed gets the reversal alone.
- **Inventory bills → supplier invoices** (``PINVOICE``), read through ServiceTitan's export
  feed (bills have no ``modifiedOn``; the feed's ``continueFrom`` is the checkpoint): unmatched
  lines against the mapped X3 supplier and purchase order, tax and freight as lines of their
  own, ``BPRVCR`` = the bill's reference number, ``AMTATI`` = ``billAmount``. A bill voided or
  corrected after it was posted is never re-posted: it is held for a person with the
  difference, and audited; X3 is not written.

Never posted twice: every document's reference is derived from the ServiceTitan id, and after
an uncertain outcome (a lost answer) the documents are looked up by that reference before
anything is posted again; a re-posting (reversal and new entry) always looks first.

ServiceTitan is only read, but for vendors (master data): its invoices and bills never are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from integrations.flows import register, x3_servicenow
from integrations.flows.base import (
    Checkpoint,
    Flow,
    MappingKind,
    NeedsMapping,
    RecordStream,
    ReferenceStream,
    RefItem,
    SkipRecord,
    SourceRecord,
    StreamContext,
    WriteItem,
    WriteResult,
)
from integrations.flows.servicetitan_x3_postings import InventoryBills, JobCosts, changed, cursor_of, order_of
from integrations.flows.values import text
from integrations.systems.errors import BudgetExhausted, SyncError
from integrations.systems.schema import BOOL, TEXT, Setting

SETTINGS = (
    Setting("journal_offset_account", TEXT, default="", max_length=30,
            help="The X3 GL account each job's costs are credited to (e.g. an accrued job costs account)."),
    Setting("offset_cost_center", TEXT, default="", max_length=30,
            help="The X3 cost center of the offset line; empty: none."),
    Setting("journal_type", TEXT, default="ODT", max_length=10, help="The X3 journal type of job cost entries."),
    Setting("currency", TEXT, default="USD", max_length=3,
            help="The currency of the ServiceTitan tenant (its documents carry none)."),
    Setting("bill_tax_account", TEXT, default="", max_length=30,
            help="The X3 GL account of a bill's tax line (needed when bills carry tax)."),
    Setting("create_suppliers", BOOL, default=False,
            help="Create in X3 the ServiceTitan vendors no X3 supplier matches (off: they wait for a mapping)."),
    Setting("bill_freight_account", TEXT, default="", max_length=30,
            help="The X3 GL account of a bill's freight line (needed when bills carry shipping)."),
)


# --- reference data ------------------------------------------------------------------------------
class StReference(ReferenceStream):
    """One ServiceTitan list as the source side of a mapping."""

    reads = "source"
    module: str
    resource: str

    def item(self, row: dict[str, Any]) -> tuple[str, str]:
        return text(row.get("id")), text(row.get("name")).strip()

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[RefItem]]:
        for page in changed(ctx, self.module, self.resource, checkpoint, keep=self._kept):
            yield [RefItem(code=code, label=label, external_id=external_id, cursor=cursor, order_key=position)
                   for cursor, position, (code, label, external_id) in page if code]

    def _kept(self, row: dict[str, Any]) -> tuple[str, str, str]:
        """What the list is sorted with: the row's code, label and id, not the whole row."""
        return (*self.item(row), text(row.get("id")))


class StJobTypes(StReference):
    name = "st_job_types"
    label = "Job types (ServiceTitan)"
    kind = "job_type"
    module, resource = "jpm", "job-types"


class StBusinessUnits(StReference):
    name = "st_business_units"
    label = "Business units (ServiceTitan)"
    kind = "business_unit"
    module, resource = "settings", "business-units"


class StGlAccounts(StReference):
    name = "st_gl_accounts"
    label = "GL accounts (ServiceTitan)"
    kind = "st_gl_account"
    module, resource = "accounting", "gl-accounts"

    def item(self, row: dict[str, Any]) -> tuple[str, str]:
        return text(row.get("number")).strip(), text(row.get("name")).strip()


class StVendors(StReference):
    name = "st_vendors"
    label = "Vendors (ServiceTitan)"
    kind = "vendor"
    module, resource = "inventory", "vendors"


class StPurchaseOrders(StReference):
    name = "st_purchase_orders"
    label = "Purchase orders (ServiceTitan)"
    kind = "st_purchase_order"
    module, resource = "inventory", "purchase-orders"

    def item(self, row: dict[str, Any]) -> tuple[str, str]:
        number = text(row.get("number")).strip()
        return number, number


class X3GlAccounts(x3_servicenow.X3GlAccounts):
    reads = "target"


class X3CostCenters(x3_servicenow.X3CostCenters):
    reads = "target"


class X3Suppliers(x3_servicenow.X3Reference):
    reads = "target"
    name = "x3_suppliers"
    label = "Suppliers (Sage X3)"
    kind = "supplier"
    klass = "BPSUPPLIER"
    label_field = "name"


class X3PurchaseOrders(x3_servicenow.X3Reference):
    reads = "target"
    name = "x3_purchase_orders"
    label = "Purchase orders (Sage X3)"
    kind = "purchase_order"
    klass = "PORDER"
    label_field = "key"


# --- vendors both ways ----------------------------------------------------------------------------
def _clean(value: Any) -> str:
    return text(value).strip()


class Vendors(RecordStream):
    """ServiceTitan vendors into X3 suppliers, so their bills have a supplier to post to.

    A vendor mapped to an X3 supplier by a person is left as X3 has it. An unmapped one waits for
    its mapping (the same-named X3 supplier is suggested; approving it is the decision), unless
    ``create_suppliers`` is on and X3 has no supplier of that name: it is then created in X3
    (``BPSNUM`` ``ST<vendor id>``) and becomes its own approved mapping. Off by default: suppliers
    are master data finance owns, and a vendor named a little differently in X3 would otherwise be
    created twice. A vendor created here is kept up to date, but for the echo of the portal's own
    write-back from X3.
    """

    name = "vendors"
    label = "Vendors (ServiceTitan → X3 suppliers)"
    default_schedule = "hourly"
    mapping_kind = "supplier"
    depends_on = ("st_vendors", "x3_suppliers")

    def __init__(self) -> None:
        self._named: set[str] = set()

    @staticmethod
    def _record(cursor: str, position: str, vendor: dict[str, Any]) -> SourceRecord:
        return SourceRecord(key=text(vendor.get("id")), cursor=cursor, data=vendor,
                            business_key=_clean(vendor.get("name")) or text(vendor.get("id")), order_key=position)

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in changed(ctx, "inventory", "vendors", checkpoint):
            yield [self._record(*entry) for entry in page]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        vendor = ctx.source.get("inventory", "vendors", key)
        return self._record(cursor_of(vendor.get("modifiedOn")), order_of(key), vendor) if vendor else None

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        """X3 suppliers named like the page's unlinked vendors (one query)."""
        ctx.prefetch(self.name, [r.key for r in records])
        names = [_clean(r.data.get("name")) for r in records
                 if ctx.lineage_of(self.name, r.key) is None and ctx.mappings.get("supplier", r.key) is None]
        shape = ctx.target.shape("BPSUPPLIER")
        found = ctx.target.find("BPSUPPLIER", "name", [n for n in names if n]) if any(names) else []
        self._named = {_clean(shape.get(row, "name")).lower() for row in found}

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        vendor = record.data
        ours = ctx.lineage_of(self.name, record.key)
        mapped = ctx.mappings.get("supplier", record.key)
        if ours is None:
            if mapped:
                raise SkipRecord(f"Mapped to the X3 supplier {mapped[0]}; kept as X3 has it")
            if vendor.get("active") is False:
                raise SkipRecord("Inactive in ServiceTitan: no X3 supplier is created for it")
            if not ctx.setting("create_suppliers", False) or _clean(vendor.get("name")).lower() in self._named:
                raise NeedsMapping([f"supplier:{record.key}"])
        else:
            back = ctx.lineage_of("suppliers_to_st", ours[0])
            if back and back[1].get("st_modified") == record.cursor:
                raise SkipRecord("This change is the portal's own write from X3; not sent back")
        shape = ctx.target.shape("BPSUPPLIER")
        contact = vendor.get("contactInfo") or {}
        address = vendor.get("address") or {}
        payload = {shape["name"]: _clean(vendor.get("name"))[:35], shape["phone"]: _clean(contact.get("phone")),
                   shape["address"]: _clean(address.get("street")), shape["city"]: _clean(address.get("city")),
                   shape["postal_code"]: _clean(address.get("zip"))}
        if ours is None:
            payload = {shape["key"]: f"ST{record.key}"[:15], shape["short_name"]: _clean(vendor.get("name"))[:10],
                       shape["currency"]: text(ctx.setting("currency", "USD")), **payload}
        return payload

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        x3 = ctx.target
        shape = x3.shape("BPSUPPLIER")
        results = {}
        for item in items:  # api1 has no batch: one call per supplier
            try:
                if item.target_id:
                    state = x3.update("BPSUPPLIER", item.target_id, item.payload)
                    action, code = "updated", item.target_id
                else:
                    code = item.payload[shape["key"]]
                    state = (x3.read("BPSUPPLIER", code) if item.uncertain else None) or x3.create(
                        "BPSUPPLIER", item.payload)
                    action = "created"
            except BudgetExhausted:
                raise
            except SyncError as exc:
                results[item.key] = WriteResult("", error=exc)
                continue
            results[item.key] = WriteResult(action, target_id=code, target_refs={
                "code": code, "label": text(item.payload.get(shape["name"])),
                "x3_updated": text(shape.get(state, "updated", ""))})
        return results


class SuppliersToServiceTitan(RecordStream):
    """X3 changes of a supplier linked to a ServiceTitan vendor (created by the portal or mapped):
    its phone and address, never its name (each system keeps its own), and only what differs.
    The echo of the portal's own write from ServiceTitan is not sent back."""

    name = "suppliers_to_st"
    label = "Supplier updates (X3 → ServiceTitan vendors)"
    reads = "target"
    default_schedule = "hourly"
    depends_on = ("vendors",)

    def __init__(self) -> None:
        self._vendors: dict[str, dict[str, Any]] = {}
        self._linked: dict[str, str] = {}

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        x3 = ctx.target
        shape = x3.shape("BPSUPPLIER")
        for page in x3.iter_pages("BPSUPPLIER", since=checkpoint.cursor, after_key=checkpoint.after_key):
            yield [SourceRecord(key=text(shape.get(row, "key")), cursor=text(shape.get(row, "updated", "")),
                                data={k: v for k, v in row.items() if not k.startswith("$")},
                                business_key=_clean(shape.get(row, "name")))
                   for row in page if text(shape.get(row, "key"))]

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        """The linked vendors of the page, as ServiceTitan has them now (one call)."""
        self._linked = {target: source for (kind, source), (target, _) in ctx.mappings.approved.items()
                        if kind == "supplier"}
        ids = sorted({self._linked[r.key] for r in records if r.key in self._linked})
        self._vendors = {}
        if ids:
            for page in ctx.source.iter_list("inventory", "vendors", params={"ids": ",".join(ids), "active": "Any"}):
                self._vendors.update({text(v.get("id")): v for v in page})

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        vendor_id = self._linked.get(record.key)
        if not vendor_id:
            raise SkipRecord("Not linked to a ServiceTitan vendor")
        forward = ctx.lineage_of("vendors", vendor_id)
        if forward and forward[1].get("x3_updated") == record.cursor:
            raise SkipRecord("This change is the portal's own write from ServiceTitan; not sent back")
        vendor = self._vendors.get(vendor_id)
        if vendor is None:
            raise SkipRecord(f"ServiceTitan has no vendor {vendor_id} any more")
        shape = ctx.target.shape("BPSUPPLIER")
        d = record.data
        wanted = {"phone": _clean(shape.get(d, "phone")), "street": _clean(shape.get(d, "address")),
                  "city": _clean(shape.get(d, "city")), "zip": _clean(shape.get(d, "postal_code"))}
        contact, address = vendor.get("contactInfo") or {}, vendor.get("address") or {}
        have = {"phone": _clean(contact.get("phone")), "street": _clean(address.get("street")),
                "city": _clean(address.get("city")), "zip": _clean(address.get("zip"))}
        patch: dict[str, Any] = {}
        if wanted["phone"] and wanted["phone"] != have["phone"]:
            patch["contactInfo"] = {**contact, "phone": wanted["phone"]}
        moved = {k: v for k, v in wanted.items() if k != "phone" and v and v != have[k]}
        if moved:
            patch["address"] = {**address, **moved}
        return {"vendor": vendor_id, "patch": patch}

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        results = {}
        for item in items:
            vendor_id, patch = item.payload["vendor"], item.payload["patch"]
            if not patch:
                results[item.key] = WriteResult("unchanged", target_id=vendor_id,
                                                target_refs=item.target_refs or {"st_modified": ""})
                continue
            try:
                ctx.source.update_vendor(vendor_id, patch)  # the same PATCH twice leaves the same vendor
                now = ctx.source.get("inventory", "vendors", vendor_id) or {}
            except BudgetExhausted:
                raise
            except SyncError as exc:
                results[item.key] = WriteResult("", error=exc)
                continue
            results[item.key] = WriteResult("updated", target_id=vendor_id,
                                            target_refs={"st_modified": cursor_of(now.get("modifiedOn"))})
        return results


def _named(suffix: str):
    """Match a job type by the X3 account described ``<job type name> <suffix>``."""
    return lambda row: ("", f"{row.label} {suffix}")


MAPPING_KINDS = (
    MappingKind("labor_account", source="job_type", target="gl_account", match=_named("labor")),
    MappingKind("material_account", source="job_type", target="gl_account", match=_named("materials")),
    MappingKind("cost_center", source="business_unit", target="cost_center", match=lambda row: ("", row.label)),
    MappingKind("gl_account", source="st_gl_account", target="gl_account"),
    MappingKind("supplier", source="vendor", target="supplier", match=lambda row: ("", row.label)),
    MappingKind("purchase_order", source="st_purchase_order", target="purchase_order", by_number=True),
)


@register
class ServiceTitanToSageX3(Flow):
    kind = "servicetitan__sage_x3"
    label = "ServiceTitan → Sage X3"
    source_system = "servicetitan"
    target_system = "sage_x3"
    # X3's reference data first: a ServiceTitan code read afterwards is suggested its target once,
    # as its mapping is created, instead of every mapping being revisited when X3's side arrives
    streams = (X3GlAccounts, X3CostCenters, X3Suppliers, X3PurchaseOrders, StJobTypes, StBusinessUnits, StGlAccounts,
               StVendors, StPurchaseOrders, Vendors, SuppliersToServiceTitan, JobCosts, InventoryBills)
    settings = SETTINGS
    mapping_kinds = MAPPING_KINDS

    def webhook_records(self, event_type: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
        """Job and appointment events name a job; inventory bill events a bill [U: event names]."""
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        kind = event_type.lower().replace("_", "").replace("-", "")
        if kind.startswith(("job.", "appointment.")):
            job = data.get("jobId") or (data.get("id") if kind.startswith("job.") else None)
            return [("job_costs", text(job))] if text(job) else []
        if kind.startswith(("inventorybill.", "bill.")):
            bill = data.get("id") or data.get("billId")
            return [("inventory_bills", text(bill))] if text(bill) else []
        return []
