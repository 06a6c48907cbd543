"""Sage X3 → ServiceNow (seed: sage-x3--servicenow.txt).

Order: GL accounts and cost centers from both sides (reference data and mapping suggestions),
suppliers X3 → ServiceNow (and back when ``supplier_writeback`` is on), purchase orders with
lines, then supplier invoices with lines into the AP staging tables. Invoice lines need an
approved GL account and cost center mapping or the invoice is held. Invoices are never
written to X3.

ServiceNow column names follow the AP Invoice API's field names (API_FACTS 1.7) and can be
renamed per integration with ``settings["field_names"] = {"invoice": {"subtotal": "u_net"}}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from integrations.flows import register
from integrations.flows.base import (
    FIELD_NAMES,
    WRITEBACK,
    Checkpoint,
    Conflict,
    Flow,
    Money,
    RecordStream,
    ReferenceStream,
    RefItem,
    SkipRecord,
    SourceRecord,
    StreamContext,
    WriteItem,
    WriteResult,
    as_day,
    as_decimal,
)
from integrations.flows.servicenow_common import (
    InvoiceLine,
    SnCostCenters,
    SnGlAccounts,
    StagedInvoices,
    invoice_with_lines,
    renamed,
    synced_id,
    upsert_with_lines,
)
from integrations.flows.values import amount, text
from integrations.systems.errors import TransientError
from integrations.systems.sage_x3 import DEFAULT_FIELDS


# --- reference data ---------------------------------------------------------------------------
class X3Reference(ReferenceStream):
    """One X3 class as reference data (code, label, update time), from whichever side X3 is:
    the source here, the target of ServiceTitan → Sage X3 (``reads = "target"``)."""

    reads = "source"
    klass: str
    label_field = "label"  # the logical field of the class shape the label is read from

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[RefItem]]:
        x3 = ctx.source if self.reads == "source" else ctx.target
        shape = x3.shape(self.klass)
        for page in x3.iter_pages(self.klass, since=checkpoint.cursor, after_key=checkpoint.after_key):
            yield [
                RefItem(code=text(shape.get(row, "key")), label=text(shape.get(row, self.label_field, "")).strip(),
                        cursor=text(shape.get(row, "updated", "")))
                for row in page if text(shape.get(row, "key"))
            ]


class X3GlAccounts(X3Reference):
    name = "x3_gl_accounts"
    label = "GL accounts (Sage X3)"
    kind = "gl_account"
    klass = "GACCOUNT"


class X3CostCenters(X3Reference):
    name = "x3_cost_centers"
    label = "Cost centers (Sage X3)"
    kind = "cost_center"
    klass = "CACCE"




# --- records ----------------------------------------------------------------------------------
def x3_names(klass: str, source_settings: dict[str, Any]) -> dict[str, str]:
    """A class's logical → X3 field names with the connection's ``x3_fields``, as the client's
    shape has them, without a client (to read a stored snapshot)."""
    return {**DEFAULT_FIELDS[klass], **(((source_settings or {}).get("x3_fields") or {}).get(klass) or {})}


class X3RecordStream(RecordStream):
    """Reads one X3 class; records are keyed by the class key, cursored by its update time."""

    klass: str

    def _record(self, ctx: StreamContext, row: dict[str, Any]) -> SourceRecord:
        shape = ctx.source.shape(self.klass)
        key = text(shape.get(row, "key"))
        clean = {k: v for k, v in row.items() if not k.startswith("$")}
        return SourceRecord(key=key, cursor=text(shape.get(row, "updated", "")), data=clean, business_key=key)

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        shape = ctx.source.shape(self.klass)
        lines_field = shape.fields.get("lines")
        for page in ctx.source.iter_pages(self.klass, since=checkpoint.cursor, after_key=checkpoint.after_key):
            records = []
            for row in page:
                if lines_field and lines_field not in row:
                    # Some installs only give lines through the $details facet.
                    row = ctx.source.read(self.klass, text(shape.get(row, "key"))) or row
                records.append(self._record(ctx, row))
            yield records

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        row = ctx.source.read(self.klass, key)
        return self._record(ctx, row) if row else None


class Suppliers(X3RecordStream):
    name = "suppliers"
    label = "Suppliers (X3 → ServiceNow)"
    klass = "BPSUPPLIER"
    depends_on = ()

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        s = ctx.source.shape(self.klass)
        d = record.data
        echo = ctx.lineage_of("suppliers_to_x3", record.key)
        if echo and echo[1].get("x3_updated") == record.cursor:
            raise SkipRecord("This change is our own write from ServiceNow; not sent back")
        code_field = ctx.target.code_fields["supplier"]
        return renamed(ctx, "supplier", {
            code_field: record.key,
            "name": text(s.get(d, "name")),
            "short_name": text(s.get(d, "short_name")),
            "country": text(s.get(d, "country")),
            "currency": text(s.get(d, "currency")),
            "payment_terms": text(s.get(d, "payment_terms")),
            "street": text(s.get(d, "address")),
            "city": text(s.get(d, "city")),
            "zip": text(s.get(d, "postal_code")),
            "phone": text(s.get(d, "phone")),
            "website": text(s.get(d, "web")),
            "contact": text(s.get(d, "contact")),
        })

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        ctx.prefetch("suppliers_to_x3", [r.key for r in records])

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        results = upsert_with_lines(ctx, "supplier", items)
        for item in items:  # what we last read from X3, to tell a two-sided edit from an echo
            results[item.key].target_refs["x3_read"] = item.record.cursor
        return results


class SuppliersToX3(RecordStream):
    """ServiceNow supplier edits back to X3, only when the integration enables it."""

    name = "suppliers_to_x3"
    label = "Supplier updates (ServiceNow → X3)"
    reads = "target"
    depends_on = ("suppliers",)

    @classmethod
    def enabled_by_default(cls, integration_settings: dict[str, Any]) -> bool:
        return bool(integration_settings.get("supplier_writeback"))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        sn = ctx.target
        code_field = sn.code_fields["supplier"]
        for page in sn.iter_updated_since(sn.table("supplier"), checkpoint.cursor, after_id=checkpoint.after_key):
            yield [
                SourceRecord(key=text(row.get(code_field)) or f"sn:{row['sys_id']}",
                             cursor=text(row.get("sys_updated_on")), data=row,
                             business_key=text(row.get("name")), order_key=text(row.get("sys_id")))
                for row in page
            ]

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        if record.key.startswith("sn:"):
            raise SkipRecord("Supplier not linked to an X3 supplier")
        forward = ctx.lineage_of("suppliers", record.key)
        if forward is None:
            raise SkipRecord("Supplier not synced from X3 yet")
        if forward[1].get("sys_mod_count") == text(record.data.get("sys_mod_count")):
            raise SkipRecord("This change is our own write from X3; not sent back")
        shape = ctx.source.shape("BPSUPPLIER")
        current = ctx.source.read("BPSUPPLIER", record.key) or {}
        last_read = forward[1].get("x3_read", "")
        if not ctx.force and last_read and text(shape.get(current, "updated")) > last_read:
            raise Conflict("Changed in both X3 and ServiceNow since the last sync; review and replay to send "
                           "the ServiceNow version")
        d = record.data
        return {shape["name"]: text(d.get("name")), shape["phone"]: text(d.get("phone")),
                shape["web"]: text(d.get("website")), shape["city"]: text(d.get("city")),
                shape["postal_code"]: text(d.get("zip")), shape["contact"]: text(d.get("contact"))}

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        shape = ctx.source.shape("BPSUPPLIER")
        results = {}
        for item in items:  # X3 api1 has no batch endpoint: one PUT per supplier ($edit)
            try:
                state = ctx.source.update("BPSUPPLIER", item.key, item.payload)
            except TransientError as exc:
                results[item.key] = WriteResult("", error=exc)
                continue
            results[item.key] = WriteResult("updated", target_id=item.key,
                                            target_refs={"x3_updated": text(shape.get(state, "updated"))})
        return results


class PurchaseOrders(X3RecordStream):
    name = "purchase_orders"
    read_ahead = True  # its page work calls ServiceNow only
    pipelined = True  # the next page is transformed while this one is written
    label = "Purchase orders (X3 → ServiceNow)"
    klass = "PORDER"
    depends_on = ("suppliers",)

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        s = ctx.source.shape(self.klass)
        ctx.prefetch("suppliers", [text(s.get(r.data, "supplier")) for r in records])

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        s = ctx.source.shape(self.klass)
        d = record.data
        supplier = text(s.get(d, "supplier"))
        supplier_id = synced_id(ctx, "suppliers", supplier)
        lines = {}
        for line in s.get(d, "lines") or []:
            number = text(line.get(s["line_no"]))
            lines[number] = renamed(ctx, "purchase_order_line", {
                "line_number": number,
                "item": text(line.get(s["item"])),
                "description": text(line.get(s["description"])),
                "quantity": amount(line.get(s["quantity"])),
                "uom": text(line.get(s["uom"])),
                "unit_price": amount(line.get(s["unit_price"])),
                "total_amount": amount(line.get(s["amount"])),
            })
        header = renamed(ctx, "purchase_order", {
            "erp_number": record.key,
            "supplier": supplier_id,
            "order_date": text(s.get(d, "order_date")),
            "currency": text(s.get(d, "currency")),
            "total_amount": amount(s.get(d, "total")),
        })
        return {"header": header, "lines": lines, "parent_field": "purchase_order"}

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        return upsert_with_lines(ctx, "purchase_order", items, line_table="purchase_order_line")

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The order for the console (not counted by reconciliation: POs declare no ledger): its
        number, supplier code, order date and total excluding tax, else the sum of its lines."""
        names = x3_names(self.klass, source_settings)
        number = text(snapshot.get(names["key"])).strip()
        if not number:
            return None
        total = as_decimal(snapshot.get(names["total"]))
        if total is None:
            lines = snapshot.get(names["lines"])
            amounts = [as_decimal(line.get(names["amount"])) if isinstance(line, dict) else None
                       for line in lines] if isinstance(lines, list) and lines else [None]
            total = None if None in amounts else sum(amounts, Decimal("0"))
        return Money(as_day(snapshot.get(names["order_date"])), text(snapshot.get(names["currency"])).strip(), total,
                     number=number, supplier=text(snapshot.get(names["supplier"])).strip())


class Invoices(StagedInvoices, X3RecordStream):
    name = "invoices"
    read_ahead = True  # its page work calls ServiceNow only
    pipelined = True  # the next page is transformed while this one is written
    label = "Supplier invoices (X3 → ServiceNow AP)"
    klass = "PINVOICE"
    depends_on = ("purchase_orders", "suppliers", "x3_gl_accounts", "sn_gl_accounts", "x3_cost_centers",
                  "sn_cost_centers")

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        s = ctx.source.shape(self.klass)
        ctx.prefetch("suppliers", [text(s.get(r.data, "supplier")) for r in records])
        ctx.prefetch("purchase_orders", [text(line.get(s["po"])) for r in records
                                         for line in (s.get(r.data, "lines") or []) if line.get(s["po"])])

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        s = ctx.source.shape(self.klass)
        d = record.data
        rows = s.get(d, "lines") or []
        lines = []
        for line in rows:
            po_number, po_line, item = text(line.get(s["po"])), text(line.get(s["po_line"])), text(line.get(s["item"]))
            lines.append(InvoiceLine(
                number=text(line.get(s["line_no"])), amount=line.get(s["amount"]),
                gl_account=text(line.get(s["gl_account"])), cost_center=text(line.get(s["cost_center"])),
                description=f"{po_number}/{po_line} {item}".strip(),
                columns={"item": item, "line_quantity": amount(line.get(s["quantity"])),  # AP Invoice API names
                         "line_unit_price": amount(line.get(s["unit_price"])),
                         "purchase_order": po_number, "purchase_order_line": po_line}))

        def po_links(line: InvoiceLine) -> dict[str, str]:
            # A line on a PO waits (transient, retried) until that PO is in ServiceNow: posted
            # now, it would keep an empty PO link for good, its hash unchanged ever after.
            po_number = line.columns["purchase_order"]
            po_id = synced_id(ctx, "purchase_orders", po_number)
            po_refs = (ctx.lineage_of("purchase_orders", po_number) or ("", {}))[1]
            return {"purchase_order": po_id, "purchase_order_line": po_refs.get(line.columns["purchase_order_line"], "")}

        return invoice_with_lines(ctx, lines, lambda: {
            "supplier_invoice_number": text(s.get(d, "supplier_invoice")),
            "supplier": synced_id(ctx, "suppliers", text(s.get(d, "supplier"))),
            "purchase_order": _first_po(ctx, rows, s),
            "invoice_date": text(s.get(d, "invoice_date")),
            "accounting_date": text(s.get(d, "accounting_date")),
            "currency": text(s.get(d, "currency")),
            "subtotal": amount(s.get(d, "total_excl")),
            "amount_invoiced": amount(s.get(d, "total_incl")),
        }, line_columns=po_links)

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        return upsert_with_lines(ctx, "invoice", items, line_table="invoice_line")

    def money(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        names = x3_names(self.klass, source_settings)
        return Money(as_day(snapshot.get(names["invoice_date"])), text(snapshot.get(names["currency"])),
                     as_decimal(snapshot.get(names["total_incl"])), number=text(snapshot.get(names["supplier_invoice"])),
                     supplier=text(snapshot.get(names["supplier"])))


def _first_po(ctx: StreamContext, lines: list[dict[str, Any]], shape: Any) -> str:
    """The header's PO reference: the PO of its first line that has one."""
    for line in lines:
        found = ctx.lineage_of("purchase_orders", text(line.get(shape["po"])))
        if found:
            return found[0]
    return ""



@register
class SageX3ToServiceNow(Flow):
    kind = "sage_x3__servicenow"
    label = "Sage X3 → ServiceNow"
    source_system = "sage_x3"
    target_system = "servicenow"
    streams = (X3GlAccounts, SnGlAccounts, X3CostCenters, SnCostCenters, Suppliers, SuppliersToX3,
               PurchaseOrders, Invoices)
    settings = (FIELD_NAMES, WRITEBACK)
    target_tables = ("gl_account", "cost_center", "supplier", "purchase_order", "purchase_order_line", "invoice",
                     "invoice_line")
