"""SYSPRO → ServiceNow (seed: syspro--servicenow.txt). One way: SYSPRO is never written to.

Order: reference data first, read from both sides (the seed's "both ways": aligned, nothing is
written to SYSPRO): ServiceNow's GL accounts and cost centers, SYSPRO's GL accounts
(``GenMaster``) and cost centres, each suggested the ServiceNow row with the same code, else the
same name. GL accounts are then pushed to the profile's GL table (an existing row with the same
code and no source key is adopted, not duplicated) and each pushed account is its own approved
mapping. Cost centres are only *mapped*: ``cmn_cost_center`` is shared with the rest of the
customer's ServiceNow, so creating the missing ones there is opt-in (``create_cost_centers``).
Then suppliers, purchase orders with their lines, invoices with their distribution lines (each
line on an approved GL account and cost center, or the invoice is held naming what is missing)
and the GL postings of each invoice, staged for reconciliation in the ``gl_posting`` table.

SYSPRO keeps dates without a time (``PostDate``, ``DateLastModified``), so every stream's cursor
is coarse: after a complete read the next one starts at the beginning of that day again and
unchanged records are skipped by their hash (an invoice posted later the same day is not
missed); a run cut short (call budget, crash) resumes strictly after its checkpoint's key on
that day. The engine keeps one client per connection for a whole cycle: one e.net session,
logged off at its end, failure included.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from integrations.flows import register
from integrations.flows.base import (
    FIELD_NAMES,
    Checkpoint,
    Flow,
    InvalidRecord,
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
    adopt,
    invoice_with_lines,
    renamed,
    synced_id,
    upsert_with_lines,
)
from integrations.flows.values import amount, text
from integrations.systems.errors import SystemicError
from integrations.systems.schema import BOOL, Setting
from integrations.systems.servicenow import UpsertRow

CREATE_COST_CENTERS = Setting(
    "create_cost_centers", BOOL, default=False,
    help="Also create in ServiceNow's cost center table the SYSPRO cost centres no existing one matches. "
         "Off by default: that table is shared with the rest of ServiceNow, so cost centres are only mapped.")


# --- reads ------------------------------------------------------------------------------------
def _after(checkpoint: Checkpoint) -> list[str] | None:
    """The key (or key prefix) to resume strictly after, as the client takes it."""
    key = checkpoint.after_key
    if not key:
        return None
    return [str(v) for v in json.loads(key)] if key.startswith("[") else [key]


def _position(*values: str) -> str:
    """A compound position for a checkpoint (the order among records sharing a date)."""
    return json.dumps(list(values), ensure_ascii=False)


def _pages(ctx: StreamContext, logical: str, checkpoint: Checkpoint) -> Iterator[list[dict[str, Any]]]:
    """Pages of a logical table in (date, key) order from the checkpoint (see the module docstring)."""
    yield from ctx.source.read_changed(logical, checkpoint.cursor, _after(checkpoint))


def _one(ctx: StreamContext, logical: str, **equal: str) -> dict[str, Any] | None:
    """One row of a logical table by its key columns (default names), for a replay."""
    rows = [row for page in ctx.source.read_for(logical, list(equal), [list(equal.values())]) for row in page]
    return rows[0] if rows else None


def _active(value: Any) -> str:
    return "false" if text(value).strip().upper() == "Y" else "true"


# --- reference data ---------------------------------------------------------------------------
class SysproReference(ReferenceStream):
    """A SYSPRO code table as the source side of a mapping (code and description)."""

    reads = "source"
    coarse_cursor = True
    default_schedule = "daily"
    logical: str
    code_column: str

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[RefItem]]:
        for page in _pages(ctx, self.logical, checkpoint):
            yield [RefItem(code=text(row.get(self.code_column)).strip(), label=text(row.get("Description")).strip(),
                           cursor=text(row.get("DateLastModified")), order_key=text(row.get(self.code_column)),
                           data=self.data(row))
                   for row in page if text(row.get(self.code_column)).strip()]

    def data(self, row: dict[str, Any]) -> dict[str, Any]:
        return {}


class SysproGlAccounts(SysproReference):
    name = "syspro_gl_accounts"
    label = "GL accounts (SYSPRO)"
    kind = "gl_account"
    logical = "gl_account"
    code_column = "GlCode"

    def data(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"account_type": text(row.get("AccountType"))}


class SysproCostCentres(SysproReference):
    name = "syspro_cost_centers"
    label = "Cost centres (SYSPRO)"
    kind = "cost_center"
    logical = "cost_center"
    code_column = "CostCentre"


class SnDailyGlAccounts(SnGlAccounts):
    default_schedule = "daily"


class SnDailyCostCenters(SnCostCenters):
    default_schedule = "daily"


# --- GL accounts and cost centres pushed ------------------------------------------------------
class GlAccounts(RecordStream):
    """SYSPRO's chart pushed to the profile's GL account table; each row its own approved mapping."""

    name = "gl_accounts"
    label = "GL accounts (SYSPRO → ServiceNow)"
    coarse_cursor = True
    default_schedule = "daily"
    mapping_kind = "gl_account"
    depends_on = ("syspro_gl_accounts", "sn_gl_accounts")

    def _record(self, row: dict[str, Any]) -> SourceRecord:
        code = text(row.get("GlCode")).strip()
        return SourceRecord(key=code, cursor=text(row.get("DateLastModified")), data=row,
                            business_key=code, order_key=text(row.get("GlCode")))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in _pages(ctx, "gl_account", checkpoint):
            yield [self._record(row) for row in page if text(row.get("GlCode")).strip()]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        row = _one(ctx, "gl_account", GlCode=key)
        return self._record(row) if row else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        d, sn = record.data, ctx.target
        description = text(d.get("Description")).strip()
        return renamed(ctx, "gl_account", {
            sn.code_fields["gl_account"]: record.key,
            sn.label_fields["gl_account"]: description,
            "description": description,
            "active": "true",
        })

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        adopt(ctx, "gl_account", ctx.target.code_fields["gl_account"], items, lambda i: i.key, "GL account")
        results = upsert_with_lines(ctx, "gl_account", items)
        for item in items:
            results[item.key].target_refs.update({"code": item.key,
                                                  "label": text(item.record.data.get("Description")).strip()})
        return results


class CostCentres(RecordStream):
    """Opt-in (``create_cost_centers``): SYSPRO cost centres ServiceNow lacks, created there.

    ServiceNow's cost center table is shared, so a cost centre already mapped to a row someone
    else keeps, or whose code ServiceNow already has, is skipped: it is mapped (and approved by a
    person), never written.
    """

    name = "cost_centers"
    label = "Cost centres created in ServiceNow (opt-in)"
    coarse_cursor = True
    default_schedule = "daily"
    mapping_kind = "cost_center"
    depends_on = ("syspro_cost_centers", "sn_cost_centers")

    def __init__(self) -> None:
        self._existing: dict[str, str] = {}

    @classmethod
    def enabled_by_default(cls, integration_settings: dict[str, Any]) -> bool:
        return bool(integration_settings.get("create_cost_centers"))

    def _record(self, row: dict[str, Any]) -> SourceRecord:
        code = text(row.get("CostCentre")).strip()
        return SourceRecord(key=code, cursor=text(row.get("DateLastModified")), data=row, business_key=code,
                            order_key=text(row.get("CostCentre")))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        if not ctx.setting("create_cost_centers", False):
            return  # mapping alone writes nothing to the cost center table
        for page in _pages(ctx, "cost_center", checkpoint):
            yield [self._record(row) for row in page if text(row.get("CostCentre")).strip()]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        row = _one(ctx, "cost_center", CostCentre=key)
        return self._record(row) if row else None

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        """ServiceNow cost centers with the code or the name of a cost centre never created by us."""
        ctx.prefetch(self.name, [r.key for r in records])
        fresh = [r for r in records if ctx.lineage_of(self.name, r.key) is None]
        sn = ctx.target
        table, self._existing = sn.table("cost_center"), {}
        if not fresh:
            return
        for column, value_of in ((sn.code_fields["cost_center"], lambda r: r.key),
                                 (sn.label_fields["cost_center"], lambda r: text(r.data.get("Description")).strip())):
            values = {value_of(r): r.key for r in fresh if value_of(r) and not set(value_of(r)) & set(",^")}
            for value in sn.lookup(table, column, list(values), fields=[]):
                self._existing.setdefault(values[value], f"{column} {value!r}")

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        ours = ctx.lineage_of(self.name, record.key)
        mapped = ctx.mappings.get("cost_center", record.key)
        if mapped and (ours is None or mapped[1] != ours[0]):
            raise SkipRecord(f"Mapped to the ServiceNow cost center {mapped[0]}; nothing to create")
        if ours is None and record.key in self._existing:
            raise SkipRecord(f"ServiceNow already has a cost center with this {self._existing[record.key]}: map it "
                             "(see the suggestions) rather than create a second one")
        sn = ctx.target
        return renamed(ctx, "cost_center", {
            sn.code_fields["cost_center"]: record.key,
            sn.label_fields["cost_center"]: text(record.data.get("Description")).strip(),
            "active": "true",
        })

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        results = upsert_with_lines(ctx, "cost_center", items)
        for item in items:
            results[item.key].target_refs.update({"code": item.key,
                                                  "label": text(item.record.data.get("Description")).strip()})
        return results


# --- suppliers and purchase orders ------------------------------------------------------------
class Suppliers(RecordStream):
    name = "suppliers"
    label = "Suppliers (SYSPRO → ServiceNow)"
    coarse_cursor = True
    default_schedule = "hourly"  # an invoice waits for its supplier

    def _record(self, row: dict[str, Any]) -> SourceRecord:
        key = text(row.get("Supplier")).strip()
        return SourceRecord(key=key, cursor=text(row.get("DateLastModified")), data=row,
                            business_key=text(row.get("SupplierName")).strip() or key,
                            order_key=text(row.get("Supplier")))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in _pages(ctx, "supplier", checkpoint):
            yield [self._record(row) for row in page if text(row.get("Supplier")).strip()]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        row = _one(ctx, "supplier", Supplier=key)
        return self._record(row) if row else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        d = record.data
        return renamed(ctx, "supplier", {
            ctx.target.code_fields["supplier"]: record.key,
            "name": text(d.get("SupplierName")).strip(),
            "short_name": text(d.get("SupShortName")).strip(),
            "street": text(d.get("SupAddr1")).strip(),
            "city": text(d.get("SupAddr2")).strip(),  # [U] SYSPRO's second address line, usually the town
            "zip": text(d.get("SupPostalCode")).strip(),
            "currency": text(d.get("Currency")).strip(),
            "payment_terms": text(d.get("TermsCode")).strip(),
            "phone": text(d.get("Telephone")).strip(),
            "email": text(d.get("Email")).strip(),
            "active": _active(d.get("OnHold")),
        })

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        adopt(ctx, "supplier", "name", items, lambda i: text(i.record.data.get("SupplierName")).strip(), "Supplier")
        return upsert_with_lines(ctx, "supplier", items)


class PurchaseOrders(RecordStream):
    """``PorMasterHdr`` with its ``PorMasterDetail`` lines (which carry no date: read by order)."""

    name = "purchase_orders"
    pipelined = True  # the next page is read and transformed while this one is written
    label = "Purchase orders (SYSPRO → ServiceNow)"
    coarse_cursor = True
    default_schedule = "hourly"
    depends_on = ("suppliers",)

    def _records(self, ctx: StreamContext, headers: list[dict[str, Any]]) -> list[SourceRecord]:
        numbers = [text(h.get("PurchaseOrder")) for h in headers]
        lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for page in ctx.source.read_for("po_line", ["PurchaseOrder"], [[n] for n in numbers]):
            for line in page:
                lines[text(line.get("PurchaseOrder"))].append(line)
        return [SourceRecord(key=text(h.get("PurchaseOrder")).strip(), cursor=text(h.get("DateLastModified")),
                             data={**h, "lines": lines.get(text(h.get("PurchaseOrder")), [])},
                             business_key=text(h.get("PurchaseOrder")).strip(), order_key=text(h.get("PurchaseOrder")))
                for h in headers]

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in _pages(ctx, "po", checkpoint):
            headers = [h for h in page if text(h.get("PurchaseOrder")).strip()]
            if headers:
                yield self._records(ctx, headers)

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        header = _one(ctx, "po", PurchaseOrder=key)
        return self._records(ctx, [header])[0] if header else None

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        ctx.prefetch("suppliers", [text(r.data.get("Supplier")).strip() for r in records])

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        d = record.data
        lines, total = {}, Decimal("0")
        for line in d.get("lines") or []:
            number = text(line.get("Line")).strip()
            quantity, price = line.get("MOrderQty"), line.get("MPrice")
            value = Decimal(amount(quantity) or "0") * Decimal(amount(price) or "0")
            total += value
            lines[number] = renamed(ctx, "purchase_order_line", {
                "line_number": number,
                "item": text(line.get("MStockCode")).strip(),
                "description": text(line.get("MStockDes")).strip(),
                "quantity": amount(quantity),
                "unit_price": amount(price),
                "total_amount": str(value),
            })
        header = renamed(ctx, "purchase_order", {
            "erp_number": record.key,
            "supplier": synced_id(ctx, "suppliers", text(d.get("Supplier")).strip()),
            "order_date": text(d.get("OrderEntryDate")),
            "currency": text(d.get("Currency")).strip(),
            "status": text(d.get("OrderStatus")).strip(),
            "total_amount": str(total),
        })
        return {"header": header, "lines": lines, "parent_field": "purchase_order"}

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        return upsert_with_lines(ctx, "purchase_order", items, line_table="purchase_order_line")

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The order for the console (not counted by reconciliation): number, supplier, entry date,
        currency and, as staged, the sum of its lines' quantity × price. ``None`` for a snapshot
        without its lines or with a line that is not an amount."""
        number, lines = text(snapshot.get("PurchaseOrder")).strip(), snapshot.get("lines")
        if not number or not isinstance(lines, list):
            return None
        total = Decimal("0")
        for line in lines:
            quantity, price = (as_decimal(line.get(name)) if isinstance(line, dict) else None
                               for name in ("MOrderQty", "MPrice"))
            if quantity is None or price is None:
                return None
            total += quantity * price
        return Money(as_day(text(snapshot.get("OrderEntryDate")).strip()), text(snapshot.get("Currency")).strip(),
                     total, number=number, supplier=text(snapshot.get("Supplier")).strip())


# --- invoices ---------------------------------------------------------------------------------
Parent = tuple[str, str]


def _parent(row: dict[str, Any]) -> Parent:
    """The invoice a row belongs to (char columns may be padded differently in the two tables)."""
    return text(row.get("Supplier")).strip(), text(row.get("Invoice")).strip()


class LineJoin:
    """The distribution lines of each page of invoices, read once, in the invoices' own order.

    The lines repeat their invoice's ``PostDate`` [U], so one read of the line table from the
    same checkpoint, in (PostDate, Supplier, Invoice, line) order, walks alongside the invoices:
    each page of invoices takes the lines up to its last invoice's, and a line read past that is
    kept for the next page. A line whose invoice never shows up (a different date, a deleted
    invoice) is dropped once the invoices have moved past its date.
    """

    def __init__(self, lines: Iterable[list[dict[str, Any]]]) -> None:
        self._lines = (line for page in lines for line in page)
        self._held: list[dict[str, Any]] = []

    def lines_for(self, invoices: list[dict[str, Any]]) -> dict[Parent, list[dict[str, Any]]]:
        parents = {_parent(row) for row in invoices}
        last, last_day = _parent(invoices[-1]), text(invoices[-1].get("PostDate"))
        found: dict[Parent, list[dict[str, Any]]] = defaultdict(list)
        held, self._held = self._held, []
        for line in held:
            self._take(line, parents, found)
        while True:
            line = next(self._lines, None)
            if line is None:
                break
            parent = _parent(line)
            past_last = text(line.get("PostDate")) > last_day or (bool(found.get(last)) and parent != last)
            if past_last:
                self._held.append(line)
                break
            self._take(line, parents, found)
        # what no later invoice can claim: lines dated before the last invoice's date
        self._held = [line for line in self._held if text(line.get("PostDate")) >= last_day]
        return found

    def _take(self, line: dict[str, Any], parents: set[Parent], found: dict[Parent, list[dict[str, Any]]]) -> None:
        parent = _parent(line)
        if parent in parents:
            found[parent].append(line)
        else:
            self._held.append(line)


class Invoices(StagedInvoices, RecordStream):
    """AP invoices (``ApInvoice``) with their distribution lines, into AP staging with lines; a
    money stream of the month-end reconciliation (its staged invoices read back by source identity)."""

    name = "invoices"
    pipelined = True  # the next page is read and transformed while this one is written
    label = "AP invoices (SYSPRO → ServiceNow AP)"
    coarse_cursor = True
    default_schedule = "hourly"
    depends_on = ("suppliers", "purchase_orders", "gl_accounts", "syspro_cost_centers", "sn_cost_centers")

    def _record(self, row: dict[str, Any], lines: list[dict[str, Any]]) -> SourceRecord:
        supplier, invoice = text(row.get("Supplier")), text(row.get("Invoice"))
        # the outstanding balance changes with every payment; it is not staged, so not kept
        header = {k: v for k, v in row.items() if k != "MthInvBal1"}
        return SourceRecord(key=f"{supplier.strip()}/{invoice.strip()}", cursor=text(row.get("PostDate")),
                            data={**header, "lines": lines}, business_key=invoice.strip(),
                            order_key=_position(supplier, invoice))

    def _lines_by_invoice(self, ctx: StreamContext, invoices: list[dict[str, Any]]
                          ) -> dict[Parent, list[dict[str, Any]]]:
        found: dict[Parent, list[dict[str, Any]]] = defaultdict(list)
        parents = [list(_parent(row)) for row in invoices]
        for page in ctx.source.read_for("invoice_line", ["Supplier", "Invoice"], parents):
            for line in page:
                found[_parent(line)].append(line)
        return found

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        source = ctx.source
        joined = bool(source.table_def("invoice_line").date)
        join = LineJoin(source.read_changed("invoice_line", checkpoint.cursor, _after(checkpoint))) if joined else None
        for page in _pages(ctx, "invoice", checkpoint):
            lines = join.lines_for(page) if join else self._lines_by_invoice(ctx, page)
            # an invoice whose lines the date walk did not meet: asked for by invoice before it is
            # called empty (none in the usual case, so no call)
            lonely = [row for row in page if not lines.get(_parent(row))]
            if join and lonely:
                lines.update(self._lines_by_invoice(ctx, lonely))
            yield [self._record(row, lines.get(_parent(row), [])) for row in page]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        supplier, _, invoice = key.partition("/")
        row = _one(ctx, "invoice", Supplier=supplier, Invoice=invoice)
        return self._record(row, self._lines_by_invoice(ctx, [row]).get(_parent(row), [])) if row else None

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        ctx.prefetch("suppliers", [text(r.data.get("Supplier")).strip() for r in records])
        ctx.prefetch("purchase_orders", [text(r.data.get("PurchaseOrder")).strip() for r in records
                                         if text(r.data.get("PurchaseOrder")).strip()])

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        d = record.data
        rows = d.get("lines") or []
        if not rows:
            raise InvalidRecord("The invoice has no distribution lines")
        lines = [InvoiceLine(number=text(line.get("DistrLine")).strip() or str(i + 1), amount=line.get("DistrValue"),
                             gl_account=text(line.get("GlCode")).strip(),
                             cost_center=text(line.get("CostCentre")).strip(),
                             description=text(line.get("Description")).strip())
                 for i, line in enumerate(rows)]
        distributed = sum((Decimal(amount(line.amount) or "0") for line in lines), Decimal("0"))
        po = text(d.get("PurchaseOrder")).strip()
        return invoice_with_lines(ctx, lines, lambda: {
            "supplier_invoice_number": text(d.get("Invoice")).strip(),
            "supplier": synced_id(ctx, "suppliers", text(d.get("Supplier")).strip()),
            # an invoice on a PO waits (retried) until that PO is in ServiceNow
            "purchase_order": synced_id(ctx, "purchase_orders", po) if po else "",
            "invoice_date": text(d.get("InvoiceDate")),
            "accounting_date": text(d.get("PostDate")),
            "due_date": text(d.get("DueDate")),
            "currency": text(d.get("Currency")).strip(),
            "subtotal": str(distributed),
            "amount_invoiced": amount(d.get("OrigInvValue")),
            "short_description": text(d.get("Reference")).strip(),
        }, line_word="distribution line")

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        return upsert_with_lines(ctx, "invoice", items, line_table="invoice_line")

    def money(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """As staged: the invoice date, currency and original value (the balance is not kept)."""
        return Money(as_day(text(snapshot.get("InvoiceDate")).strip()), text(snapshot.get("Currency")).strip(),
                     as_decimal(snapshot.get("OrigInvValue")), number=text(snapshot.get("Invoice")).strip(),
                     supplier=text(snapshot.get("Supplier")).strip())


# --- GL postings ------------------------------------------------------------------------------
class GlPostings(RecordStream):
    """The journal of each invoice (``GenJournalDetail``), one staging row per entry, for
    reconciliation. A record is a whole journal, so it is staged only when it balances."""

    name = "gl_postings"
    pipelined = True  # the next page is read and transformed while this one is written
    label = "GL postings (SYSPRO → ServiceNow staging)"
    coarse_cursor = True
    default_schedule = "hourly"
    depends_on = ("invoices",)

    @staticmethod
    def _journals(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Consecutive rows of one journal, together ([U]: a journal's entries share its date)."""
        groups: list[list[dict[str, Any]]] = []
        for row in rows:
            if groups and text(groups[-1][0].get("Journal")) == text(row.get("Journal")):
                groups[-1].append(row)
            else:
                groups.append([row])
        return groups

    def _record(self, entries: list[dict[str, Any]]) -> SourceRecord:
        journal = text(entries[0].get("Journal"))
        return SourceRecord(key=journal.strip(), cursor=text(entries[0].get("EntryDate")),
                            data={"Journal": journal, "entries": entries}, business_key=f"journal {journal.strip()}",
                            order_key=_position(journal))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        """Whole journals, a page holding at most as many entries as whole batch calls take.

        A journal may go on in the next SYSPRO page, so each page's last journal waits for it; and
        a page of journals would rarely hold exactly a batch of entries (the rows they become), so
        journals are regrouped: each page written is whole batch calls, not one and a sliver."""
        batch = max(1, int(getattr(ctx.target, "batch_size", 0) or 1))
        limit = batch * max(1, int(getattr(ctx.source, "page_size", 0) or 1) // batch)
        waiting: list[list[dict[str, Any]]] = []  # whole journals not yet yielded
        pending: list[dict[str, Any]] = []  # the last journal read, perhaps not whole yet
        for page in _pages(ctx, "gl_posting", checkpoint):
            groups = self._journals(pending + page)
            pending = groups.pop()
            waiting += groups
            while sum(len(g) for g in waiting) >= limit:
                chunk, size = [], 0
                while waiting and (not chunk or size + len(waiting[0]) <= limit):
                    size += len(waiting[0])
                    chunk.append(waiting.pop(0))
                yield [self._record(entries) for entries in chunk]
        if pending:
            waiting.append(pending)
        if waiting:
            yield [self._record(entries) for entries in waiting]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        entries = [row for page in ctx.source.read_for("gl_posting", ["Journal"], [[key]]) for row in page]
        return self._record(entries) if entries else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, dict[str, str]]:
        debits, credits, rows = Decimal("0"), Decimal("0"), {}
        for entry in record.data.get("entries") or []:
            value = Decimal(amount(entry.get("EntryValue")) or "0")
            kind = text(entry.get("EntryType")).strip().upper()
            debit = kind == "D" or (kind not in ("D", "C") and value >= 0)  # [U] signed values, no type
            value = abs(value)
            debits, credits = (debits + value, credits) if debit else (debits, credits + value)
            number = text(entry.get("EntryNumber")).strip()
            rows[number] = renamed(ctx, "gl_posting", {
                "u_journal": record.key,
                "u_entry_number": number,
                "u_posting_date": text(entry.get("EntryDate")),
                "u_gl_account": text(entry.get("GlCode")).strip(),
                "u_cost_center": text(entry.get("CostCentre")).strip(),
                "u_entry_type": "D" if debit else "C",
                "u_debit": str(value) if debit else "",
                "u_credit": "" if debit else str(value),
                "u_supplier": text(entry.get("Supplier")).strip(),
                "u_invoice": text(entry.get("Invoice")).strip(),
                "u_comment": text(entry.get("Comment")).strip(),
            })
        if debits != credits:
            raise InvalidRecord(f"Journal {record.key} does not balance: debits {debits}, credits {credits}")
        return rows

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The journal for the console (not counted by reconciliation): known by its business key
        (``journal <n>``), dated by its first entry, its amount the sum of its debits as staged; no
        supplier, no currency (SYSPRO's journal lines carry none)."""
        journal, entries = text(snapshot.get("Journal")).strip(), snapshot.get("entries")
        if not journal or not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
            return None
        debits = Decimal("0")
        for entry in entries:
            value = as_decimal(entry.get("EntryValue") or "0") if isinstance(entry, dict) else None
            if value is None:
                return None
            kind = text(entry.get("EntryType")).strip().upper()
            if kind == "D" or (kind not in ("D", "C") and value >= 0):  # as transform() tells a debit
                debits += abs(value)
        return Money(as_day(text(entries[0].get("EntryDate")).strip()), "", debits, number=f"journal {journal}")

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        """Each entry is a row keyed ``<journal>/<entry>``; an entry gone from the journal is deleted."""
        sn = ctx.target
        table = sn.table("gl_posting")
        rows, owner = [], {}
        for item in items:
            for number, payload in item.payload.items():
                key, known = f"{item.key}/{number}", item.target_refs.get(number, "")
                # an entry new to a journal written before may have been created by a failed attempt
                rows.append(UpsertRow(key, payload, known, not known and (item.uncertain or bool(item.target_id)),
                                      identity=ctx.identity(key)))
                owner[key] = (item.key, number)
        try:
            written = sn.upsert(table, rows)
        except SystemicError as exc:
            raise _missing_table(exc, table) from None
        results: dict[str, WriteResult] = {}
        for item in items:
            refs: dict[str, str] = {}
            result = WriteResult("created" if not item.target_id else "updated")
            for number in item.payload:
                outcome = written[f"{item.key}/{number}"]
                if outcome.error:
                    result.error = result.error or _missing_table(outcome.error, table)
                else:
                    refs[number] = outcome.sys_id
            if result.error is None:
                first = refs[min(refs, key=lambda n: (len(n), n))] if refs else ""
                result.target_id = item.target_id or first
                result.target_url = sn.record_url(table, result.target_id) if result.target_id else ""
                result.target_refs = refs
                for number, sys_id in item.target_refs.items():
                    if number not in item.payload:
                        sn.delete(table, sys_id)
            results[item.key] = result
        return results


def _missing_table(error: Any, table: str) -> Any:
    """ServiceNow's "Invalid table" for the GL posting table, said so an operator can act on it."""
    if isinstance(error, SystemicError) and str(error).startswith("Invalid table"):
        return SystemicError(f"ServiceNow has no table {table} for GL postings: create it (see the README) or "
                             "name another in the connection's tables setting (gl_posting)", status=error.status)
    return error


@register
class SysproToServiceNow(Flow):
    kind = "syspro__servicenow"
    label = "SYSPRO → ServiceNow"
    source_system = "syspro"
    target_system = "servicenow"
    streams = (SnDailyGlAccounts, SnDailyCostCenters, SysproGlAccounts, SysproCostCentres, GlAccounts, CostCentres,
               Suppliers, PurchaseOrders, Invoices, GlPostings)
    settings = (FIELD_NAMES, CREATE_COST_CENTERS)
    target_tables = ("gl_account", "cost_center", "supplier", "purchase_order", "purchase_order_line", "invoice",
                     "invoice_line", "gl_posting")

    def target_writes(self) -> tuple[str, ...]:
        """Every target table but the cost centers, which are written only when asked
        (``create_cost_centers``); the GL accounts are pushed although a reference stream reads them."""
        return tuple(table for table in self.target_tables if table != "cost_center")
