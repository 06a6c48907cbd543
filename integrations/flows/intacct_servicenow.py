"""Sage Intacct ↔ ServiceNow (seed: sage-intacct--servicenow.txt).

Order: GL accounts and departments (Intacct) and GL accounts and cost centers (ServiceNow),
read hourly from both sides for mapping suggestions; vendors Intacct → ServiceNow suppliers;
AP bills with lines Intacct → ServiceNow invoice staging (lines need an approved GL account
and cost-center mapping, or the bill is held); then invoices approved in ServiceNow back to
Intacct (:mod:`integrations.flows.intacct_approvals`), and invoices paid in ServiceNow as Intacct
AP payments once ``payment_bank_account`` is set (:mod:`integrations.flows.intacct_payments`).

Intacct is the integration's source connection, ServiceNow its target. ServiceNow column names
follow the AP Invoice API naming (API_FACTS 1.7), renamable per integration with
``settings["field_names"] = {"invoice": {"subtotal": "u_net"}}`` as in the X3 flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from integrations.flows import register
from integrations.flows.base import (
    FIELD_NAMES,
    Checkpoint,
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
from integrations.flows.intacct_approvals import SOURCE_SYSTEM, ApprovedInvoices, source_system_field
from integrations.flows.intacct_payments import COLUMNS as PAYMENT_COLUMNS
from integrations.flows.intacct_payments import SETTINGS as PAYMENT_SETTINGS
from integrations.flows.intacct_payments import PaymentsToIntacct
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
from integrations.systems.intacct import iso_date, to_cursor
from integrations.systems.schema import BOOL, TEXT, Setting


# --- reference data ---------------------------------------------------------------------------
class IntacctReference(ReferenceStream):
    """GL accounts / departments read from Intacct in (WHENMODIFIED, RECORDNO) order."""

    reads = "source"
    obj: str
    code_field: str

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[RefItem]]:
        fields = ["RECORDNO", self.code_field, "TITLE", "STATUS", "WHENMODIFIED"]
        for page in ctx.source.iter_changed(self.obj, checkpoint.cursor, after_key=checkpoint.after_key, fields=fields):
            yield [
                RefItem(code=text(row.get(self.code_field)), label=text(row.get("TITLE")),
                        external_id=text(row.get("RECORDNO")), cursor=to_cursor(text(row.get("WHENMODIFIED"))),
                        data={"status": text(row.get("STATUS"))}, order_key=text(row.get("RECORDNO")))
                for row in page
                if row.get(self.code_field)
            ]


class IntacctGlAccounts(IntacctReference):
    name = "intacct_gl_accounts"
    label = "GL accounts (Sage Intacct)"
    kind = "gl_account"
    obj = "GLACCOUNT"
    code_field = "ACCOUNTNO"


class IntacctDepartments(IntacctReference):
    name = "intacct_departments"
    label = "Departments (Sage Intacct)"
    kind = "cost_center"
    obj = "DEPARTMENT"
    code_field = "DEPARTMENTID"




# --- records ----------------------------------------------------------------------------------
def _dig(data: Any, *path: str) -> str:
    for step in path:
        data = data.get(step) if isinstance(data, dict) else None
    return text(data)


def _lookup_first(items: list[WriteItem]) -> list[WriteItem]:
    """Never-synced rows are looked up by source identity before a create: ServiceNow may hold
    them already (a lost response, or an invoice that started in ServiceNow and was linked)."""
    for item in items:
        if not item.target_id:
            item.uncertain = True
    return items


class Vendors(RecordStream):
    name = "vendors"
    label = "Vendors (Intacct → ServiceNow suppliers)"

    def _record(self, row: dict[str, Any]) -> SourceRecord:
        key = text(row.get("VENDORID"))
        return SourceRecord(key=key, cursor=to_cursor(text(row.get("WHENMODIFIED"))), data=row,
                            business_key=text(row.get("NAME")) or key)

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in ctx.source.iter_changed("VENDOR", checkpoint.cursor, after_key=checkpoint.after_key,
                                            key_field="VENDORID"):
            yield [self._record(row) for row in page if row.get("VENDORID")]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        found = ctx.source.find("VENDOR", [{"VENDORID": key}], fields=["*"])
        return self._record(found[0]) if 0 in found else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        d = record.data
        contact = d.get("DISPLAYCONTACT") or {}
        return renamed(ctx, "supplier", {
            ctx.target.code_fields["supplier"]: record.key,
            "name": text(d.get("NAME")),
            "short_name": _dig(contact, "PRINTAS"),
            "street": _dig(contact, "MAILADDRESS", "ADDRESS1"),
            "city": _dig(contact, "MAILADDRESS", "CITY"),
            "zip": _dig(contact, "MAILADDRESS", "ZIP"),
            "country": _dig(contact, "MAILADDRESS", "COUNTRY"),
            "currency": text(d.get("CURRENCY")),
            "payment_terms": text(d.get("TERMNAME")),
            "phone": _dig(contact, "PHONE1"),
            "website": _dig(contact, "URL1"),
            "contact": _dig(contact, "CONTACTNAME"),
            "active": "true" if text(d.get("STATUS")) == "active" else "false",
        })

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        return upsert_with_lines(ctx, "supplier", _lookup_first(items))


# SourceRecord.notes: the bill may have been created by the approvals stream from a ServiceNow invoice
_FROM_SERVICENOW = "may_come_from_servicenow"


def _note_from_servicenow(ctx: StreamContext, bills: list[SourceRecord]) -> None:
    """Note on each new bill not noted yet whether the approvals stream may have created it: it
    did, or one of its posts is unaccounted for (one query for them all, none when all are noted)."""
    unnoted = [bill for bill in bills if _FROM_SERVICENOW not in bill.notes]
    if not unnoted:
        return
    ours, unaccounted = ctx.written(ApprovedInvoices.name, [bill.key for bill in unnoted])
    for bill in unnoted:
        bill.notes[_FROM_SERVICENOW] = unaccounted or bill.key in ours


class Bills(StagedInvoices, RecordStream):
    name = "bills"
    read_ahead = True  # its page work calls ServiceNow only
    pipelined = True  # the next page is transformed while this one is written
    label = "AP bills (Intacct → ServiceNow AP invoices)"
    depends_on = ("vendors", "intacct_gl_accounts", "sn_gl_accounts", "intacct_departments", "sn_cost_centers")

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        # The scan only needs keys and times; whole bills (with lines) come from one `read` per page.
        for page in ctx.source.iter_changed("APBILL", checkpoint.cursor, after_key=checkpoint.after_key,
                                            fields=["RECORDNO", "WHENMODIFIED"]):
            full = {text(r.get("RECORDNO")): r for r in ctx.source.read("APBILL", [text(r["RECORDNO"]) for r in page])}
            records = [
                SourceRecord(key=key, cursor=to_cursor(text(row.get("WHENMODIFIED"))), data=full[key],
                             business_key=text(full[key].get("RECORDID")) or key)
                for row in page
                if (key := text(row.get("RECORDNO"))) in full  # a bill deleted since the scan is gone
            ]
            if records:
                yield records

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        rows = ctx.source.read("APBILL", [key])
        if not rows:
            return None
        row = rows[0]
        return SourceRecord(key=key, cursor=to_cursor(text(row.get("WHENMODIFIED"))), data=row,
                            business_key=text(row.get("RECORDID")) or key)

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        ctx.prefetch("vendors", [text(r.data.get("VENDORID")) for r in records])
        ctx.prefetch(self.name, [r.key for r in records])
        ctx.prefetch(ApprovedInvoices.name, [found[0] for r in records if (found := ctx.lineage_of(self.name, r.key))])
        # for the write (:meth:`_adopt_invoices_started_in_servicenow`), asked here on the page's thread
        _note_from_servicenow(ctx, [r for r in records
                                    if r.data.get("RECORDID") and ctx.lineage_of(self.name, r.key) is None])

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        synced = ctx.lineage_of(self.name, record.key)
        posted = ctx.lineage_of(ApprovedInvoices.name, synced[0]) if synced else None
        if posted and posted[1].get("intacct_modified") == record.cursor:
            raise SkipRecord("This change is our own post of the approved invoice; not sent back")
        d = record.data
        lines = [InvoiceLine(number=text(line.get("LINE_NO")) or text(line.get("RECORDNO")),
                             amount=line.get("TRX_AMOUNT") or line.get("AMOUNT"),
                             gl_account=text(line.get("ACCOUNTNO")), cost_center=text(line.get("DEPARTMENTID")),
                             description=text(line.get("ENTRYDESCRIPTION")))
                 for line in d.get("APBILLITEMS") or []]
        total = amount(d.get("TRX_TOTALENTERED") or d.get("TOTALENTERED"))
        return invoice_with_lines(ctx, lines, lambda: {
            "supplier_invoice_number": text(d.get("DOCNUMBER")) or text(d.get("RECORDID")),
            "supplier": synced_id(ctx, "vendors", text(d.get("VENDORID"))),
            "invoice_date": iso_date(text(d.get("WHENCREATED"))),
            "accounting_date": iso_date(text(d.get("WHENPOSTED"))),
            "due_date": iso_date(text(d.get("WHENDUE"))),
            "currency": text(d.get("CURRENCY")),
            "subtotal": total,
            "amount_invoiced": total,
            "short_description": text(d.get("DESCRIPTION")),
            source_system_field(ctx): SOURCE_SYSTEM,
        })

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        # No blanket look-up of never-synced bills (as vendors have): the engine already marks a
        # row uncertain once a write of it was attempted (a lost response, a crash, a retried
        # page), and the only bills ServiceNow can hold without our lineage are those created
        # from a ServiceNow invoice, which carry its number and are found by the adoption below,
        # linked or not. A second look-up by source id would cost one more call per 100 bills.
        self._adopt_invoices_started_in_servicenow(ctx, items)
        results = upsert_with_lines(ctx, "invoice", items, line_table="invoice_line")
        for item in items:  # what we last read from Intacct, to tell a two-sided edit from an echo
            results[item.key].target_refs["intacct_read"] = item.record.cursor
        return results

    def money(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        try:
            day = as_day(iso_date(text(snapshot.get("WHENCREATED"))))
        except ValueError:
            day = None
        return Money(day, text(snapshot.get("CURRENCY")),
                     as_decimal(snapshot.get("TRX_TOTALENTERED") or snapshot.get("TOTALENTERED")),
                     number=text(snapshot.get("DOCNUMBER")) or text(snapshot.get("RECORDID")),
                     supplier=text(snapshot.get("VENDORID")),
                     # [U] a reversed bill keeps its row with this state; its staged invoice is extra
                     void=text(snapshot.get("STATE")).lower() == "reversed")


    @staticmethod
    def _adopt_invoices_started_in_servicenow(ctx: StreamContext, items: list[WriteItem]) -> None:
        """A bill we created from a ServiceNow invoice carries that invoice's number as its RECORDID.

        Normally the invoice is linked to the bill right after the post; should that link have
        failed, the bill is matched here by number to the unlinked invoice (and its lines by line
        number), so it is updated in place and never staged a second time.
        """
        sn = ctx.target
        unlinked = [i for i in items if not i.target_id and i.record.data.get("RECORDID")]
        if not unlinked:
            return
        # Only bills the approvals stream posted can have an invoice already: ask our own records
        # first (the page's plan did, see prepare_page), and ServiceNow only for those (or for all
        # when a post is unaccounted for).
        _note_from_servicenow(ctx, [i.record for i in unlinked])
        fresh = {text(i.record.data.get("RECORDID")): i for i in unlinked if i.record.notes[_FROM_SERVICENOW]}
        if not fresh:
            return
        rows = sn.lookup(sn.table("invoice"), "number", list(fresh), fields=[sn.source_id_field])
        adopted: dict[str, WriteItem] = {}
        for number, row in rows.items():
            item = fresh[number]
            if text(row.get(sn.source_id_field)) in ("", item.key, ctx.identity(item.key)):
                item.target_id = text(row.get("sys_id"))
                adopted[item.target_id] = item
        ids = list(adopted)
        for start in range(0, len(ids), 100):
            query = f"invoiceIN{','.join(ids[start:start + 100])}"
            for page in sn.iter_pages(sn.table("invoice_line"), query, fields=["sys_id", "invoice", "line_number"]):
                for line in page:
                    owner = adopted.get(text(line.get("invoice")))
                    if owner is not None and text(line.get("line_number")):
                        owner.target_refs.setdefault(text(line.get("line_number")), text(line.get("sys_id")))


@register
class SageIntacctServiceNow(Flow):
    kind = "sage_intacct__servicenow"
    label = "Sage Intacct ↔ ServiceNow"
    source_system = "sage_intacct"
    target_system = "servicenow"
    streams = (IntacctGlAccounts, SnGlAccounts, IntacctDepartments, SnCostCenters, Vendors, Bills,
               ApprovedInvoices, PaymentsToIntacct)
    target_tables = ("gl_account", "cost_center", "supplier", "invoice", "invoice_line")
    target_column_settings = {"invoice": ("source_system_field", "approval_field")}
    target_read_columns = {"payment": PAYMENT_COLUMNS}

    def tables_in_use(self, integration_settings: dict[str, Any]) -> tuple[str, ...]:
        """The payment table too once payments are written back (``payment_bank_account`` set)."""
        paying = bool(str((integration_settings or {}).get("payment_bank_account") or "").strip())
        return (*self.target_tables, "payment") if paying else self.target_tables
    settings = (
        FIELD_NAMES,
        Setting("source_system_field", TEXT, default="u_source_system", max_length=80,
                help="ServiceNow invoice column naming the system an invoice came from."),
        Setting("approval_field", TEXT, default="approval", max_length=80,
                help="ServiceNow invoice column that says it is approved."),
        Setting("approved_value", TEXT, default="approved", max_length=80,
                help="The value of that column on an approved invoice."),
        Setting("create_bills_from_servicenow", BOOL, default=True,
                help="Create an Intacct bill for an invoice approved in ServiceNow that did not come from Intacct."),
        *PAYMENT_SETTINGS,
    )
