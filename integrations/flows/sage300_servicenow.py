"""Sage 300 → ServiceNow (seed: sage-300--servicenow.txt). One way: Sage 300 is never written to.

Order: ServiceNow cost centers and the Sage 300 chart (reference data: each GL account is
suggested the cost center whose code is its department segment, ``6000-100`` → ``100``, else
the one named like that segment); GL accounts pushed to the profile's GL table (each pushed
account is its own approved GL mapping); vendors → suppliers; then AP invoice batches: one
staging invoice per invoice of a batch, keyed (batch, entry), with its lines. A line carries the
GL account row pushed above and the cost center of its account's approved mapping, or the
invoice is held naming what is missing.

Incremental reads filter on a date without time (``DateLastMaintained``, the batch's
``DateLastEdited``), so the streams' cursors are coarse: a run that read to the end starts the
next one at the beginning of that day (``ge``), so a change later the same day is read again
and unchanged records are skipped by hash; a run stopped by the call budget resumes after its
checkpoint's key on that day instead of re-reading a day that may hold more pages than the
budget allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from integrations.flows import register
from integrations.flows.base import (
    FIELD_NAMES,
    Checkpoint,
    Flow,
    InvalidRecord,
    MappingKind,
    Money,
    RecordStream,
    ReferenceStream,
    RefItem,
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
    StagedInvoices,
    adopt,
    invoice_with_lines,
    renamed,
    synced_id,
    upsert_with_lines,
)
from integrations.flows.values import amount, text
from integrations.systems.sage300 import plain_account, wire_day


# --- reads ------------------------------------------------------------------------------------
def unformatted(row: dict[str, Any]) -> str:
    """The account's position in the server's order (its ``UnformattedAccount``)."""
    return text(row.get("UnformattedAccount"))


def _pages(ctx: StreamContext, resource: str, date_field: str, key_field: str, checkpoint: Checkpoint, *,
           numeric: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Pages in (date, key) order from the checkpoint: strictly after its (day, key) while a run is
    unfinished, else the whole checkpoint day again (a date cannot tell two changes of a day apart;
    unchanged records are recognised by their hash)."""
    for page, _last in ctx.source.iter_changed(resource, date_field, key_field, checkpoint.cursor,
                                               checkpoint.after_key or None, numeric_key=numeric):
        yield page


# --- reference data ---------------------------------------------------------------------------
class Sage300Accounts(ReferenceStream):
    """The chart of accounts as the source side of the GL account → cost center mapping."""

    name = "s300_gl_accounts"
    coarse_cursor = True
    label = "GL accounts → cost centers (Sage 300)"
    kind = "gl_account"
    reads = "source"

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[RefItem]]:
        departments = ctx.source.segment_names("2")
        for page in _pages(ctx, "GLAccounts", "DateLastMaintained", "UnformattedAccount", checkpoint):
            items = []
            for row in page:
                code = plain_account(row.get("UnformattedAccount") or row.get("AccountNumber"))
                dept = department_of(row)
                items.append(RefItem(
                    code=code, label=f"{text(row.get('AccountNumber'))} {text(row.get('Description'))}".strip(),
                    cursor=wire_day(row.get("DateLastMaintained")), order_key=unformatted(row),
                    data={"account": text(row.get("AccountNumber")), "department": dept,
                          "department_label": departments.get(dept, "")},
                ))
            yield items


def department_of(row: dict[str, Any]) -> str:
    """The department segment: ``AccountSegmentCode2``, else what follows the separator."""
    segment = text(row.get("AccountSegmentCode2")).strip()
    if segment:
        return segment
    formatted = text(row.get("AccountNumber"))
    for separator in ("-", "/", ".", "_"):
        if separator in formatted:
            return formatted.split(separator, 1)[1]
    return ""


# --- records ----------------------------------------------------------------------------------
class GlAccounts(RecordStream):
    name = "gl_accounts"
    coarse_cursor = True
    label = "GL accounts (Sage 300 → ServiceNow)"
    mapping_kind = "gl_account"

    def _record(self, row: dict[str, Any]) -> SourceRecord:
        key = plain_account(row.get("UnformattedAccount") or row.get("AccountNumber"))
        return SourceRecord(key=key, cursor=wire_day(row.get("DateLastMaintained")), data=row,
                            business_key=text(row.get("AccountNumber")) or key, order_key=unformatted(row))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in _pages(ctx, "GLAccounts", "DateLastMaintained", "UnformattedAccount", checkpoint):
            yield [self._record(row) for row in page]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        row = ctx.source.read("GLAccounts", key)
        return self._record(row) if row else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        d = record.data
        sn = ctx.target
        return renamed(ctx, "gl_account", {
            sn.code_fields["gl_account"]: text(d.get("AccountNumber")) or record.key,
            sn.label_fields["gl_account"]: text(d.get("Description")),
            "description": text(d.get("Description")),
            "active": "true" if text(d.get("Status")).lower() == "active" else "false",
        })

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        sn = ctx.target
        code_field = sn.code_fields["gl_account"]
        adopt(ctx, "gl_account", code_field, items, lambda i: text(i.record.data.get("AccountNumber")), "GL account")
        results = upsert_with_lines(ctx, "gl_account", items)
        for item in items:
            results[item.key].target_refs.update({"code": text(item.record.data.get("AccountNumber")) or item.key,
                                                  "label": text(item.record.data.get("Description"))})
        return results


class Vendors(RecordStream):
    name = "vendors"
    coarse_cursor = True
    label = "Vendors (Sage 300 → ServiceNow suppliers)"

    def _record(self, row: dict[str, Any]) -> SourceRecord:
        key = text(row.get("VendorNumber"))
        return SourceRecord(key=key, cursor=wire_day(row.get("DateLastMaintained")), data=row,
                            business_key=text(row.get("VendorName")) or key)

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in _pages(ctx, "APVendors", "DateLastMaintained", "VendorNumber", checkpoint):
            yield [self._record(row) for row in page if row.get("VendorNumber")]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        row = ctx.source.read("APVendors", key)
        return self._record(row) if row else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        d = record.data
        return renamed(ctx, "supplier", {
            ctx.target.code_fields["supplier"]: record.key,
            "name": text(d.get("VendorName")),
            "short_name": text(d.get("ShortName")).strip(),
            "street": text(d.get("AddressLine1")),
            "city": text(d.get("City")),
            "zip": text(d.get("ZipPostalCode")),
            "country": text(d.get("Country")),
            "currency": text(d.get("CurrencyCode")),
            "payment_terms": text(d.get("TermsCode")),
            "phone": text(d.get("PhoneNumber")),
            "active": "true" if text(d.get("Status")).lower() == "active" else "false",
        })

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        adopt(ctx, "supplier", "name", items, lambda i: text(i.record.data.get("VendorName")), "Vendor")
        return upsert_with_lines(ctx, "supplier", items)


class Invoices(StagedInvoices, RecordStream):
    """AP invoice batches: one staging invoice per invoice of a batch, keyed ``batch-entry``."""

    name = "invoices"
    read_ahead = True  # its page work calls ServiceNow only
    pipelined = True  # the next page is transformed while this one is written
    coarse_cursor = True
    label = "AP invoices (Sage 300 batches → ServiceNow AP)"
    depends_on = ("vendors", "gl_accounts", "s300_gl_accounts", "sn_cost_centers")
    default_schedule = "daily"

    def _records(self, ctx: StreamContext, batch: dict[str, Any]) -> list[SourceRecord]:
        number = int(batch.get("BatchNumber") or 0)
        cursor = wire_day(batch.get(ctx.source.batch_date_field))
        header = {k: v for k, v in batch.items() if k != "Invoices"}
        records = []
        for invoice in batch.get("Invoices") or []:
            key = f"{number}-{int(invoice.get('EntryNumber') or 0)}"
            records.append(SourceRecord(key=key, cursor=cursor, data={**invoice, "Batch": header},
                                        business_key=text(invoice.get("DocumentNumber")) or key,
                                        order_key=str(number)))
        return records

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        date_field = ctx.source.batch_date_field
        for page in _pages(ctx, "APInvoiceBatches", date_field, "BatchNumber", checkpoint, numeric=True):
            records = [r for batch in page for r in self._records(ctx, batch)]
            if records:
                yield records

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        number, _, entry = key.partition("-")
        batch = ctx.source.read("APInvoiceBatches", int(number))
        found = [r for r in self._records(ctx, batch) if r.key == key] if batch else []
        return found[0] if found else None

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        ctx.prefetch("vendors", [text(r.data.get("VendorNumber")) for r in records])

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        d = record.data
        details = d.get("InvoiceDetails") or []
        if not details:
            raise InvalidRecord("The invoice has no details (distribution lines)")
        lines = []
        for i, line in enumerate(details):
            account = plain_account(line.get("GLAccount"))  # 6000100 and 6000-100 are one account
            # The cost center is the account's: its approved GL account → cost center mapping.
            lines.append(InvoiceLine(number=text(line.get("LineNumber")) or str(i + 1),
                                     amount=line.get("DistributedAmount"), gl_account=account, cost_center=account,
                                     description=text(line.get("DistributionDescription"))))
        total, net = amount(d.get("DocumentTotalIncludingTax")), amount(d.get("DocumentTotalBeforeTaxes"))
        tax = str(Decimal(total) - Decimal(net)) if total and net else ""
        return invoice_with_lines(ctx, lines, lambda: {
            "supplier_invoice_number": text(d.get("DocumentNumber")),
            "supplier": synced_id(ctx, "vendors", text(d.get("VendorNumber"))),
            "invoice_date": wire_day(d.get("DocumentDate")),
            "accounting_date": wire_day(d.get("PostingDate")),
            "due_date": wire_day(d.get("DueDate")),
            "currency": text(d.get("CurrencyCode")),
            "subtotal": net,
            "tax_amount": tax,
            "amount_invoiced": total,
            "short_description": text(d.get("InvoiceDescription")),
        }, line_word="detail")

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        return upsert_with_lines(ctx, "invoice", items, line_table="invoice_line")

    def money(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        return Money(as_day(wire_day(snapshot.get("DocumentDate"))), text(snapshot.get("CurrencyCode")),
                     as_decimal(snapshot.get("DocumentTotalIncludingTax")), number=text(snapshot.get("DocumentNumber")),
                     supplier=text(snapshot.get("VendorNumber")))


@register
class Sage300ToServiceNow(Flow):
    kind = "sage_300__servicenow"
    label = "Sage 300 → ServiceNow"
    source_system = "sage_300"
    target_system = "servicenow"
    target_tables = ("cost_center", "gl_account", "supplier", "invoice", "invoice_line")
    # Each line's cost center is its GL account's (no department on a Sage 300 invoice line):
    # a GL account is suggested the cost center whose code is its department segment.
    mapping_kinds = (MappingKind("cost_center", source="gl_account", target="cost_center",
                                 match=lambda row: (row.data.get("department", ""), row.data.get("department_label", ""))),)
    streams = (SnCostCenters, Sage300Accounts, GlAccounts, Vendors, Invoices)
    settings = (FIELD_NAMES,)
