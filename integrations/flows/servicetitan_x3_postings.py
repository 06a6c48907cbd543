"""ServiceTitan → Sage X3, the documents: job costs as GL journal entries, inventory bills as
supplier invoices (see :mod:`integrations.flows.servicetitan_x3` for the pair), and how
ServiceTitan lists are read in (time, id) order.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from integrations.flows.base import (
    Checkpoint,
    Conflict,
    InvalidRecord,
    Money,
    NeedsMapping,
    Page,
    RecordStream,
    SkipRecord,
    SourceRecord,
    StreamContext,
    WriteItem,
    WriteResult,
    as_day,
)
from integrations.flows.values import text
from integrations.systems.concurrency import concurrently, write_limit
from integrations.systems.errors import BudgetExhausted, SyncError
from integrations.systems.external_sort import sorted_pages
from integrations.systems.servicetitan import amount as st_amount
from integrations.systems.servicetitan import job_cost_fields

CENT = Decimal("0.01")
ZERO = Decimal("0")

# --- time and order ------------------------------------------------------------------------------
def cursor_of(value: Any) -> str:
    """ServiceTitan's ``modifiedOn`` as a cursor that sorts as time does: UTC, microseconds,
    fixed width (``2026-01-02T09:00:00.000000Z``); "" when it is not a time."""
    raw = text(value).strip()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return ""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def since_of(cursor: str) -> datetime | None:
    return datetime.strptime(cursor, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) if cursor else None


def order_of(record_id: Any) -> str:
    """Where a record sorts among those changed at the same moment: its id, numerically."""
    raw = text(record_id)
    return raw.zfill(20) if raw.isdigit() else raw


# changed rows sorted in memory at a time; beyond it they are sorted on disk (a ledger's jobs or
# purchase orders read whole on a first sync)
SORT_WINDOW = 5000


def changed(ctx: StreamContext, module: str, resource: str, checkpoint: Checkpoint, *, window: int = SORT_WINDOW,
            keep: Callable[[dict[str, Any]], Any] | None = None) -> Iterator[list[tuple[str, str, Any]]]:
    """Pages of ``(cursor, position, record)`` changed since the checkpoint, in (time, id) order;
    with ``keep``, ``keep(record)`` instead of the record (what a reference list needs of a purchase
    order is its number, not its lines).

    ServiceTitan lists in its own order (by id) and filters by ``modifiedOnOrAfter``: what changed
    since the checkpoint is read whole, then ordered here (up to ``window`` rows in memory, the
    rest in sorted runs on disk: :func:`~integrations.systems.external_sort.sorted_spilling`), so
    the checkpoint is a true position and memory does not grow with the list. A run cut short
    resumes strictly after its last record.
    """
    def scanned() -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
        for page in ctx.source.iter_list(module, resource, modified_since=since_of(checkpoint.cursor)):
            for row in page:
                if isinstance(row, dict) and row.get("id") is not None:
                    position = (cursor_of(row.get("modifiedOn")), order_of(row["id"]))
                    if checkpoint.seek and position <= (checkpoint.cursor, checkpoint.key):
                        continue
                    yield position, keep(row) if keep else row

    size = max(1, int(getattr(ctx.source, "page_size", 500) or 500))
    yield from sorted_pages(scanned(), window, size, lambda entry: (*entry[0], entry[1]))


def day_of(value: Any) -> str:
    return text(value).strip()[:10]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# --- shared by the two document streams ------------------------------------------------------------
# A ServiceTitan list page holds up to 5,000 jobs (the bills' export feed 500), and X3 takes each
# document in a call of its own: a page is worked in parts of this many, each part's calls going
# out while the next part is transformed, so the first calls leave after 500 transforms, not 5,000
# (the checkpoint still moves once per page).
DOCUMENTS_PER_PART = 500

def _lookup(ctx: StreamContext, klass: str, logical: str, refs: list[str]) -> dict[str, dict[str, Any]]:
    """Documents already in X3 by their reference field (one query for a page)."""
    if not refs:
        return {}
    shape = ctx.target.shape(klass)
    return {text(shape.get(row, logical)): row for row in ctx.target.find(klass, logical, refs)}


def _post(ctx: StreamContext, klass: str, body: dict[str, Any], ref_field: str, ref: str) -> str:
    """Create one document and return its X3 number (looked up by reference if X3 answered none)."""
    x3 = ctx.target
    shape = x3.shape(klass)
    created = x3.create(klass, body)
    number = text(shape.get(created, "key"))
    if not number:
        row = _lookup(ctx, klass, ref_field, [ref]).get(ref)
        number = text(shape.get(row, "key")) if row else ""
    return number


def _each(ctx: StreamContext, items: list[WriteItem],
          post: Callable[[WriteItem], WriteResult]) -> dict[str, WriteResult]:
    """``post(item)`` for each item, a few at a time (the X3 connection's write concurrency): each
    document is a call of its own, and behind a WAN the time is the wait for X3's answers.

    A refused or failed document fails alone. A spent call budget stops the page once every call
    in flight has ended: its rows stay pending and are looked up before they are written again.
    """
    results: dict[str, WriteResult] = {}
    spent: BudgetExhausted | None = None
    for item, (result, error) in zip(items, concurrently(post, items, write_limit(ctx.target.spec)), strict=True):
        if isinstance(error, BudgetExhausted):
            spent = spent or error
        elif isinstance(error, SyncError):
            results[item.key] = WriteResult("", error=error)
        elif error is not None:
            raise error
        else:
            results[item.key] = result
    if spent is not None:
        raise spent
    return results


def _money(value: Any, what: str) -> Decimal:
    found = st_amount(value)
    if found is None:
        if value in (None, ""):
            return ZERO
        raise InvalidRecord(f"The {what} {value!r} is not an amount")
    return found


# --- job costs → journal entries -----------------------------------------------------------------
def job_cost_values(job: dict[str, Any], fields: dict[str, str]) -> dict[str, tuple[str, Any]]:
    """kind ("labor", "material") → (the field named for it, its raw value in the job): a top-level
    field, else the custom field of that name."""
    custom = {text(f.get("name")).strip().lower(): f.get("value") for f in job.get("customFields") or []
              if isinstance(f, dict)}
    values = {}
    for kind in ("labor", "material"):
        name = text(fields.get(kind)).strip()
        values[kind] = (name, job.get(name) if name in job else custom.get(name.lower()))
    return values


def job_costs_of(ctx: StreamContext, job: dict[str, Any]) -> dict[str, Decimal]:
    """The job's labor and material cost, from the fields the connection names (top-level, or
    custom fields by name)."""
    costs = {}
    for kind, (name, value) in job_cost_values(job, job_cost_fields(ctx.source.spec.settings)).items():
        costs[kind] = _money(value, f"{kind} cost ({name})")
        if costs[kind] < 0:
            raise InvalidRecord(f"The job's {kind} cost ({name}) is negative: {costs[kind]}")
    return costs


Line = dict[str, str]  # gl_account, cost_center, side ("debit" | "credit"), amount, text


def _line(account: str, center: str, side: str, value: Decimal, words: str) -> Line:
    return {"gl_account": account, "cost_center": center, "side": side, "amount": str(value), "text": words}


def _reversed(lines: list[Line]) -> list[Line]:
    """The posted lines on the other side: what cancels them."""
    return [{**line, "side": "credit" if line["side"] == "debit" else "debit",
             "text": f"Reversal: {line['text']}"[:60]} for line in lines]


class _X3Documents(RecordStream):
    """A stream posting one X3 document per record: pipelined, its pages worked in parts."""

    pipelined = True  # the next part is read and transformed while this one is written

    def write_chunk(self, ctx: StreamContext) -> int:
        return DOCUMENTS_PER_PART


class JobCosts(_X3Documents):
    """Completed ServiceTitan jobs as balanced X3 journal entries (see the module docstring)."""

    name = "job_costs"
    label = "Job costs (ServiceTitan → X3 journal entries)"
    default_schedule = "hourly"
    depends_on = ("st_job_types", "st_business_units", "x3_gl_accounts", "x3_cost_centers")

    def _record(self, cursor: str, position: str, job: dict[str, Any]) -> SourceRecord:
        number = text(job.get("jobNumber") or job.get("id"))
        return SourceRecord(key=text(job.get("id")), cursor=cursor, data=job, business_key=f"Job {number}",
                            order_key=position)

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in changed(ctx, "jpm", "jobs", checkpoint):
            yield [self._record(*entry) for entry in page]

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        ctx.prefetch(self.name, [r.key for r in records])  # what each job posted before, one query

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        job = ctx.source.get("jpm", "jobs", key)
        return self._record(cursor_of(job.get("modifiedOn")), order_of(job.get("id")), job) if job else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        job = record.data
        posted = ctx.lineage_of(self.name, record.key)
        entry = {"reference": f"ST-JOB-{record.key}", "date": day_of(job.get("completedOn")),
                 "description": f"ServiceTitan job {text(job.get('jobNumber') or record.key)}"[:60], "lines": []}
        if text(job.get("jobStatus")) != "Completed":
            if posted and json.loads(posted[1].get("posted") or "[]"):
                return entry  # posted, then reopened or cancelled: reversed
            raise SkipRecord(f"The job is {text(job.get('jobStatus')) or 'not completed'}: its costs are posted "
                             "once it is completed")
        costs = job_costs_of(ctx, job)
        if not any(costs.values()):
            if posted and json.loads(posted[1].get("posted") or "[]"):
                return entry
            raise SkipRecord("The completed job has no labor or material cost to post")
        missing: list[str] = []
        center, _ = ctx.mappings.resolve("cost_center", text(job.get("businessUnitId")), missing)
        if not text(job.get("businessUnitId")):
            raise InvalidRecord("The job has no business unit, so no cost center to post its costs on")
        accounts = {}
        for kind, mapping in (("labor", "labor_account"), ("material", "material_account")):
            if costs[kind]:
                accounts[kind], _ = ctx.mappings.resolve(mapping, text(job.get("jobTypeId")), missing)
        if missing:
            raise NeedsMapping(missing)
        offset = text(ctx.setting("journal_offset_account", "")).strip()
        if not offset:
            raise InvalidRecord("No offset account: set the integration's journal_offset_account (the X3 account "
                                "job costs are credited to), then replay")
        total = sum(costs.values(), ZERO)
        debits = [_line(accounts[kind], center, "debit", costs[kind], word)
                  for kind, word in (("labor", "Labor"), ("material", "Materials")) if costs[kind]]
        entry["lines"] = [*debits, _line(offset, text(ctx.setting("offset_cost_center", "")).strip(), "credit", total,
                                         "Job costs")]
        return entry

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The job for the console (not counted by reconciliation): known by its business key
        (``Job <number>``), dated by its completion, its amount labor + material cost as
        :func:`job_costs_of` reads them. No supplier (the job's customer is not one) and no currency
        (ServiceTitan's documents carry none). ``None`` for a job with no cost or one not an amount."""
        costs = []
        for _name, value in job_cost_values(snapshot, job_cost_fields(source_settings)).values():
            if value in (None, ""):
                continue
            cost = st_amount(value)
            if cost is None:
                return None
            costs.append(cost)
        if not costs:
            return None
        return Money(as_day(snapshot.get("completedOn")), "", sum(costs, ZERO),
                     number=f"Job {text(snapshot.get('jobNumber') or snapshot.get('id'))}")

    def _body(self, ctx: StreamContext, reference: str, date: str, description: str,
              lines: list[Line]) -> dict[str, Any]:
        shape = ctx.target.shape("GACCENTRY")
        return {
            shape["journal_type"]: text(ctx.setting("journal_type", "ODT")),
            shape["accounting_date"]: date,
            shape["reference"]: reference,
            shape["description"]: description,
            shape["currency"]: text(ctx.setting("currency", "USD")),
            shape["lines"]: [{shape["line_no"]: n, shape["gl_account"]: line["gl_account"],
                              shape["cost_center"]: line["cost_center"],
                              shape["sense"]: 1 if line["side"] == "debit" else -1,  # SNS: +1 debit, -1 credit
                              shape["amount"]: Decimal(line["amount"]), shape["line_description"]: line["text"]}
                             for n, line in enumerate(lines, start=1)],
        }

    def _plan(self, item: WriteItem) -> list[tuple[str, str, str, list[Line], bool]]:
        """The entries still to post for the item: (reference, date, description, lines, reversal)."""
        refs, entry = item.target_refs, item.payload
        version = int(refs.get("version") or 0)
        posted = json.loads(refs.get("posted") or "[]")
        if version and posted == entry["lines"]:
            return []
        steps = []
        if version and posted:
            steps.append((f"{entry['reference']}-R{version}", today(),
                          f"Reversal of {refs.get('entry') or entry['reference']}", _reversed(posted), True))
        if entry["lines"]:
            reference = entry["reference"] if version == 0 else f"{entry['reference']}-{version + 1}"
            steps.append((reference, entry["date"], entry["description"], entry["lines"], False))
        return steps

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        plans = {item.key: self._plan(item) for item in items}
        # re-postings always look first; a first posting only after an uncertain outcome
        wanted = [step[0] for item in items for step in plans[item.key]
                  if item.uncertain or int(item.target_refs.get("version") or 0)]
        try:
            found = _lookup(ctx, "GACCENTRY", "reference", wanted)
        except BudgetExhausted:
            raise
        except SyncError as exc:
            return {item.key: WriteResult("", error=exc) for item in items}
        shape = ctx.target.shape("GACCENTRY")

        def post(item: WriteItem) -> WriteResult:
            steps = plans[item.key]
            if not steps:
                return WriteResult("unchanged", target_id=item.target_id)
            version = int(item.target_refs.get("version") or 0)
            refs: dict[str, str] = {}
            number = item.target_id
            for reference, date, description, lines, reversal in steps:  # in order: the reversal first
                existing = found.get(reference)
                posted_as = (text(shape.get(existing, "key")) if existing else
                             _post(ctx, "GACCENTRY", self._body(ctx, reference, date, description, lines),
                                   "reference", reference))
                if reversal:
                    refs["reversal"] = posted_as
                else:
                    number, version = posted_as, version + 1
                    refs["entry"] = posted_as
            refs.update({"version": str(version), "posted": json.dumps(item.payload["lines"])})
            return WriteResult("created" if not item.target_id else "updated", target_id=number, target_refs=refs)

        return _each(ctx, items, post)


# --- inventory bills → supplier invoices ---------------------------------------------------------
def _signature(payload: dict[str, Any]) -> dict[str, Any]:
    """What a posted supplier invoice is compared by when its bill is seen again."""
    return {"supplier": payload["supplier"], "total": payload["total"],
            "lines": [[line.get("po", ""), line.get("gl_account", ""), line["amount"]] for line in payload["lines"]]}


def _difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    changes = []
    if before.get("total") != after["total"]:
        changes.append(f"amount {before.get('total')} → {after['total']}")
    if before.get("supplier") != after["supplier"]:
        changes.append(f"supplier {before.get('supplier')} → {after['supplier']}")
    if before.get("lines") != after["lines"]:
        changes.append(f"lines ({len(before.get('lines') or [])} → {len(after['lines'])}, or their amounts)")
    return "; ".join(changes) or "its content"


class InventoryBills(_X3Documents):
    """ServiceTitan inventory bills as X3 supplier invoices (see the module docstring)."""

    name = "inventory_bills"
    label = "Inventory bills (ServiceTitan → X3 supplier invoices)"
    default_schedule = "hourly"
    depends_on = ("vendors", "st_vendors", "st_purchase_orders", "st_gl_accounts", "st_business_units", "x3_suppliers",
                  "x3_purchase_orders", "x3_gl_accounts", "x3_cost_centers")
    # the next page of the export feed is read (and looked ahead for) while this one is planned:
    # its page work calls ServiceTitan only for an order the reference list has not stored, and
    # the ServiceTitan client may be called from two threads (its calls are paced under a lock);
    # X3, the look-ahead's other client, is already called from two as the pipelined target
    read_ahead = True

    def __init__(self) -> None:
        self._po_numbers: dict[str, str] = {}  # ServiceTitan purchase order id → its number
        self._x3_orders: dict[str, dict[str, Any] | None] = {}
        # what look_ahead found for the last two pages read: (order id → number, X3 order → row)
        self._ahead: deque[tuple[dict[str, str], dict[str, dict[str, Any] | None]]] = deque(maxlen=2)
        self._ahead_lock = threading.Lock()

    @staticmethod
    def _record(bill: dict[str, Any], active: bool) -> SourceRecord:
        data = {**bill, "active": active}
        return SourceRecord(key=text(bill.get("id")), cursor="", data=data,
                            business_key=f"Bill {text(bill.get('referenceNumber') or bill.get('id'))}",
                            order_key=order_of(bill.get("id")))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for rows, token in ctx.source.iter_export("accounting", "inventory-bills", checkpoint.token):
            yield Page([self._record(row, row.get("active") is not False) for row in rows
                        if isinstance(row, dict) and row.get("id") is not None], token=token)

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        bill = ctx.source.get("accounting", "inventory-bills", key)
        if bill is None:
            return None
        if "active" in bill:
            return self._record(bill, bill.get("active") is not False)
        inactive = [row for page in ctx.source.iter_list("accounting", "inventory-bills",
                                                         params={"ids": key, "active": "False"})
                    for row in page if text(row.get("id")) == key]
        return self._record(bill, not inactive)

    @staticmethod
    def _orders_of(records: list[SourceRecord]) -> set[str]:
        return {text(r.data.get("purchaseOrderId")) for r in records if r.data.get("purchaseOrderId")}

    def look_ahead(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        """The page's purchase orders, looked up while the page before is planned: their stored
        numbers, and the X3 orders approved for those numbers (one call). ``prepare_page`` takes
        what it finds here and looks up the rest itself, with the mappings as they are then."""
        numbers = ctx.references("st_purchase_order", self._orders_of(records))
        approved = ctx.mappings.read("purchase_order", numbers.values())
        rows = self._read_x3_orders(ctx, {target for target, _ in approved.values() if target})
        with self._ahead_lock:
            self._ahead.append((numbers, rows))

    def _read_x3_orders(self, ctx: StreamContext, targets: set[str]) -> dict[str, dict[str, Any] | None]:
        """X3 purchase orders with their lines, in one call (``None`` for one X3 does not have)."""
        if not targets:
            return {}
        x3 = ctx.target
        shape = x3.shape("PORDER")
        found = {text(shape.get(row, "key")): row for row in x3.find("PORDER", "key", sorted(targets))}
        rows: dict[str, dict[str, Any] | None] = {}
        for target in targets:
            row = found.get(target)
            if row is not None and shape["lines"] not in row:  # installs whose $query has no lines
                row = x3.read("PORDER", target)
            rows[target] = row
        return rows

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        """The numbers of the page's ServiceTitan purchase orders and the X3 orders they are mapped
        to (for their line numbers). What :meth:`look_ahead` found for the page is taken as is.
        Otherwise the numbers are those the purchase orders' reference list stored when it was read
        (one query; it runs before the bills); ServiceTitan is asked (one call) only for the orders
        it has not stored (e.g. one entered since) or has stored under two numbers (one
        renumbered). X3 is asked for the mapped orders in one call, so their lines are as X3 has
        them now. Only the page's orders are kept (those of the page before that it shares are not
        looked up again): memory follows the page, not the number of bills ever read."""
        ctx.prefetch(self.name, [r.key for r in records])  # which bills were posted before, one query
        wanted = self._orders_of(records)
        with self._ahead_lock:
            ahead = list(self._ahead)
        self._po_numbers = {po_id: number for po_id, number in self._po_numbers.items() if po_id in wanted}
        kept_x3, self._x3_orders = self._x3_orders, {}
        for numbers, rows in ahead:
            self._po_numbers.update({po_id: numbers[po_id] for po_id in wanted.intersection(numbers)
                                     if po_id not in self._po_numbers})
            kept_x3 = {**kept_x3, **rows}
        self._po_numbers.update(ctx.references("st_purchase_order", wanted - set(self._po_numbers)))
        ids = sorted(wanted - set(self._po_numbers))
        if ids:
            for page in ctx.source.iter_list("inventory", "purchase-orders", params={"ids": ",".join(ids),
                                                                                   "active": "Any"}):
                for po in page:
                    self._po_numbers[text(po.get("id"))] = text(po.get("number")).strip()
        numbers = [self._po_numbers.get(po_id, "") for po_id in wanted]
        ctx.mappings.prefetch("purchase_order", numbers)  # the page's order mappings, one query
        targets = set()
        for number in numbers:
            target, _ = ctx.mappings.get("purchase_order", number) or ("", "")
            if not target:
                continue
            if target in kept_x3:
                self._x3_orders[target] = kept_x3[target]
            else:
                targets.add(target)
        self._x3_orders.update(self._read_x3_orders(ctx, targets))

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The bill for the console (not counted by reconciliation): its reference number (the
        supplier's invoice number it is posted to X3 under), its vendor's name, bill date and
        amount; voided when inactive. No currency (ServiceTitan's documents carry none)."""
        total = st_amount(snapshot.get("billAmount"))
        if total is None:
            return None
        vendor = snapshot.get("vendor")
        reference = text(snapshot.get("referenceNumber")).strip() or f"ST-BILL-{text(snapshot.get('id'))}"
        return Money(as_day(snapshot.get("billDate")), "", total, number=reference,
                     supplier=text(vendor.get("name")).strip() if isinstance(vendor, dict) else "",
                     void=snapshot.get("active") is False)

    def _po_lines(self, ctx: StreamContext, order: str) -> list[tuple[str, str]]:
        """(item, line number) of an X3 purchase order's lines."""
        shape = ctx.target.shape("PORDER")
        row = self._x3_orders.get(order) or {}
        return [(text(line.get(shape["item"])).strip(), text(line.get(shape["line_no"])))
                for line in row.get(shape["lines"]) or [] if isinstance(line, dict)]

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        bill = record.data
        posted = ctx.lineage_of(self.name, record.key)
        reference = text(bill.get("referenceNumber")).strip() or f"ST-BILL-{record.key}"
        if not bill.get("active", True):
            if posted:
                raise Conflict(f"Bill {reference} was voided in ServiceTitan after it was posted to Sage X3 as "
                               f"supplier invoice {posted[0]}. Nothing was changed in X3: cancel or credit the "
                               "invoice there, then dismiss this record")
            raise SkipRecord("Voided in ServiceTitan before it was posted; nothing to post")
        payload = self._payload(ctx, bill, reference)
        if posted:
            before = json.loads(posted[1].get("posted") or "{}")
            if before and before != _signature(payload):
                raise Conflict(f"Bill {reference} was corrected in ServiceTitan after it was posted to Sage X3 as "
                               f"supplier invoice {posted[0]}: {_difference(before, _signature(payload))}. It is not "
                               "posted again: correct the invoice in X3 (or credit it and enter the new one), then "
                               "dismiss this record")
        return payload

    def _payload(self, ctx: StreamContext, bill: dict[str, Any], reference: str) -> dict[str, Any]:
        missing: list[str] = []
        supplier, _ = ctx.mappings.resolve("supplier", text((bill.get("vendor") or {}).get("id")), missing)
        center, _ = ctx.mappings.resolve("cost_center", text((bill.get("businessUnit") or {}).get("id")), missing)
        order = ""
        if bill.get("purchaseOrderId"):
            number = self._po_numbers.get(text(bill.get("purchaseOrderId")))
            if number is None:
                raise InvalidRecord(f"ServiceTitan has no purchase order {bill.get('purchaseOrderId')} for this bill")
            order, _ = ctx.mappings.resolve("purchase_order", number, missing)
        x3_lines = self._po_lines(ctx, order) if order else []
        lines, used = [], set()
        for item in bill.get("items") or []:
            account, _ = ctx.mappings.resolve("gl_account", text((item.get("generalLedgerAccount") or {}).get("number")),
                                              missing)
            quantity = _money(item.get("quantity"), "quantity")
            cost = _money(item.get("cost"), "unit cost")
            sku = text(item.get("name")).strip()
            po_line = next((n for sku_code, n in x3_lines if sku_code == sku and n not in used), "")
            used.add(po_line)
            lines.append({"po": order, "po_line": po_line, "item": sku, "quantity": str(quantity),
                          "unit_price": str(cost), "amount": str((quantity * cost).quantize(CENT)),
                          "gl_account": account, "cost_center": center})
        if missing:
            raise NeedsMapping(missing)
        total = _money(bill.get("billAmount"), "bill amount")
        extras = (("tax", _money(bill.get("taxAmount"), "tax amount"), "bill_tax_account"),
                  ("freight", _money(bill.get("shippingAmount"), "shipping amount"), "bill_freight_account"))
        for what, value, setting in extras:
            if value:
                account = text(ctx.setting(setting, "")).strip()
                if not account:
                    raise InvalidRecord(f"The bill has {what} of {value}: set the integration's {setting} (the X3 "
                                        f"account {what} is posted to), then replay")
                lines.append({"item": what, "amount": str(value), "gl_account": account, "cost_center": center})
        if not lines:
            raise InvalidRecord("The bill has no items")
        summed = sum((Decimal(line["amount"]) for line in lines), ZERO)
        if summed != total:
            raise InvalidRecord(f"The bill's lines, tax and freight add up to {summed}, its amount is {total}")
        tax = extras[0][1]
        return {"supplier": supplier, "reference": reference, "date": day_of(bill.get("billDate")),
                "total": str(total), "total_excl": str(total - tax), "lines": lines}

    def _body(self, ctx: StreamContext, payload: dict[str, Any]) -> dict[str, Any]:
        shape = ctx.target.shape("PINVOICE")
        lines = []
        for n, line in enumerate(payload["lines"], start=1):
            row: dict[str, Any] = {shape["line_no"]: n, shape["amount"]: Decimal(line["amount"]),
                                   shape["gl_account"]: line["gl_account"]}
            for logical in ("po", "item", "cost_center"):
                if line.get(logical):
                    row[shape[logical]] = line[logical]
            if line.get("po_line"):
                row[shape["po_line"]] = int(line["po_line"])
            for logical in ("quantity", "unit_price"):
                if line.get(logical):
                    row[shape[logical]] = Decimal(line[logical])
            lines.append(row)
        return {shape["supplier"]: payload["supplier"], shape["supplier_invoice"]: payload["reference"],
                shape["invoice_date"]: payload["date"], shape["accounting_date"]: payload["date"],
                shape["currency"]: text(ctx.setting("currency", "USD")),
                shape["total_excl"]: Decimal(payload["total_excl"]), shape["total_incl"]: Decimal(payload["total"]),
                shape["lines"]: lines}

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        shape = ctx.target.shape("PINVOICE")
        results: dict[str, WriteResult] = {}
        todo = [item for item in items if not item.target_id]
        for item in items:
            if item.target_id:  # posted, and unchanged (a correction is held in the transform)
                results[item.key] = WriteResult("unchanged", target_id=item.target_id)
        try:
            found = _lookup(ctx, "PINVOICE", "supplier_invoice",
                            [item.payload["reference"] for item in todo if item.uncertain])
        except BudgetExhausted:
            raise
        except SyncError as exc:
            return {**results, **{item.key: WriteResult("", error=exc) for item in todo}}

        def post(item: WriteItem) -> WriteResult:
            payload = item.payload
            existing = found.get(payload["reference"])
            if existing is not None and text(shape.get(existing, "supplier")) != payload["supplier"]:
                existing = None  # another supplier's invoice with the same number
            number = (text(shape.get(existing, "key")) if existing else
                      _post(ctx, "PINVOICE", self._body(ctx, payload), "supplier_invoice", payload["reference"]))
            return WriteResult("created", target_id=number, target_refs={"posted": json.dumps(_signature(payload))})

        return {**results, **_each(ctx, todo, post)}
