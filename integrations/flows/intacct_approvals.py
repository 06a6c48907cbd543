"""Invoices approved in ServiceNow, posted back to Sage Intacct exactly once.

The stream polls the invoice staging table for ``approval=approved`` by ``sys_updated_on``
(integration settings ``approval_field`` / ``approved_value`` rename both). For each
approved invoice:

- one that came from an Intacct bill (its source-id column holds the bill's RECORDNO) is
  posted with ``update`` of that APBILL: its lines on the GL accounts and departments mapped
  from the ServiceNow lines' GL accounts and cost centers (approved mappings, read in reverse;
  a ServiceNow code with no single approved Intacct code holds the invoice), with the
  approved amounts;
- one that started in ServiceNow is posted with ``create`` of an APBILL (bill number = the
  ServiceNow number, vendor = the supplier's code), unless ``create_bills_from_servicenow``
  is off, and the ServiceNow invoice and lines are then linked to it (source-id column).

Exactly once: each post is a function with ``uniqueid=true`` and a controlid derived from the
invoice, its ServiceNow version and the content, so a retried post is refused by Intacct and
resolved to the record it made; a create whose earlier attempt may have committed looks the
bill up first; and an invoice whose content was already posted is not sent again, however
often it is polled, re-approved or replayed. The lineage keeps ServiceNow sys_id → RECORDNO,
plus what Intacct stamped after our post (``intacct_modified``), so the bills stream knows that
change as its own echo and does not send it back.

A bill changed in Intacct since it was staged (and not into exactly what is being posted) is
held as a conflict for a person; replaying it posts the ServiceNow version.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.flows.base import (
    Checkpoint,
    Conflict,
    InvalidRecord,
    Money,
    NeedsMapping,
    RecordStream,
    SkipRecord,
    SourceRecord,
    StreamContext,
    WriteItem,
    WriteResult,
    as_day,
    as_decimal,
    canonical_hash,
)
from integrations.flows.values import text
from integrations.systems.errors import SyncError, TransientError
from integrations.systems.intacct import WriteOp, derived_controlid, intacct_date, to_cursor
from integrations.systems.servicenow import UpsertRow

SOURCE_SYSTEM = "sage_intacct"
# Header fields an update may carry when a create turns out to exist already.
UPDATABLE = ("RECORDID", "DOCNUMBER", "DESCRIPTION", "WHENDUE", "APBILLITEMS")





def source_system_field(ctx: StreamContext) -> str:
    return str(ctx.setting("source_system_field", "u_source_system"))



def _money(value: Any, what: str) -> Decimal:
    try:
        return Decimal(text(value).strip())
    except InvalidOperation:
        raise InvalidRecord(f"{what} {value!r} is not an amount") from None


class ApprovedInvoices(RecordStream):
    name = "approved_invoices"
    label = "Approved invoices (ServiceNow → Intacct)"
    reads = "target"
    depends_on = ("bills",)
    default_schedule = "hourly"

    def __init__(self) -> None:
        self._bills: dict[str, dict[str, Any]] = {}
        self._read_error: SyncError | None = None
        self._reverse: dict[tuple[str, str], list[str]] | None = None

    # --- reading ServiceNow -------------------------------------------------------------------
    @staticmethod
    def _settings(ctx: StreamContext) -> tuple[str, str]:
        return str(ctx.setting("approval_field", "approval")), str(ctx.setting("approved_value", "approved"))

    def _header_fields(self, ctx: StreamContext) -> list[str]:
        sn = ctx.target
        approval, _ = self._settings(ctx)
        return ["sys_id", "number", "sys_updated_on", "sys_mod_count", approval, "supplier",
                f"supplier.{sn.code_fields['supplier']}", "supplier_invoice_number", "invoice_date", "due_date",
                "currency", "amount_invoiced", "short_description", sn.source_id_field, source_system_field(ctx)]

    def _line_fields(self, ctx: StreamContext) -> list[str]:
        sn = ctx.target
        return ["sys_id", "invoice", "line_number", "line_description", "line_amount_invoiced", "gl_account",
                f"gl_account.{sn.code_fields['gl_account']}", "cost_center",
                f"cost_center.{sn.code_fields['cost_center']}", sn.source_id_field]

    def _records(self, ctx: StreamContext, rows: list[dict[str, Any]]) -> list[SourceRecord]:
        sn = ctx.target
        lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
        ids = [text(row.get("sys_id")) for row in rows]
        for start in range(0, len(ids), 100):
            query = f"invoiceIN{','.join(ids[start:start + 100])}"
            for page in sn.iter_pages(sn.table("invoice_line"), query, fields=self._line_fields(ctx)):
                for line in page:
                    lines[text(line.get("invoice"))].append(line)
        records = []
        for row in rows:
            data = {k: v for k, v in row.items() if k != "sys_updated_on"}
            data["lines"] = sorted(lines.get(text(row.get("sys_id")), []),
                                   key=lambda line: (_int(line.get("line_number")), text(line.get("sys_id"))))
            records.append(SourceRecord(key=text(row.get("sys_id")), cursor=text(row.get("sys_updated_on")),
                                        data=data, business_key=text(row.get("number"))))
        return records

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        """Approved invoices in (sys_updated_on, sys_id) order, as keyset pages: this stream writes
        links back into rows it has just read, moving them later, and keyset paging reads them
        there instead of skipping others (see ServiceNowClient.iter_updated_since)."""
        sn = ctx.target
        approval, approved = self._settings(ctx)
        for page in sn.iter_updated_since(sn.table("invoice"), checkpoint.cursor, after_id=checkpoint.after_key,
                                          extra_query=f"{approval}={approved}", fields=self._header_fields(ctx)):
            yield self._records(ctx, page)

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        sn = ctx.target
        rows, _ = sn.list(sn.table("invoice"), f"sys_id={key}", fields=self._header_fields(ctx), limit=2)
        rows = [row for row in rows if text(row.get("sys_id")) == key]
        return self._records(ctx, rows)[0] if rows else None

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The invoice for the console (its bill is what reconciliation counts, in the bills
        stream): the supplier's invoice number, the supplier's code (the dot-walked column read
        with the invoice, whichever code field the ServiceNow connection names), invoice date and
        approved amount. ``None`` without an amount."""
        total = as_decimal(snapshot.get("amount_invoiced"))
        if total is None:
            return None
        supplier = next((value for name, value in snapshot.items() if name.startswith("supplier.")), "")
        return Money(as_day(snapshot.get("invoice_date")), text(snapshot.get("currency")).strip(), total,
                     number=text(snapshot.get("supplier_invoice_number")).strip(), supplier=text(supplier).strip())

    # --- transform ------------------------------------------------------------------------------
    def _bill_of(self, ctx: StreamContext, record: SourceRecord) -> str:
        own = ctx.lineage_of(self.name, record.key)
        identity = text(record.data.get(ctx.target.source_id_field))
        return (ctx.key_of(identity) or "" if identity else "") or (own[0] if own else "")

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        ctx.prefetch(self.name, [r.key for r in records])
        bills = [b for r in records if (b := self._bill_of(ctx, r))]
        ctx.prefetch("bills", bills)
        code = f"supplier.{ctx.target.code_fields['supplier']}"
        ctx.prefetch("vendors", [text(r.data.get(code)) for r in records])
        self._bills, self._read_error = {}, None
        if self._reverse is None:
            reverse: dict[tuple[str, str], list[str]] = defaultdict(list)
            for (kind, source_code), (target_code, _) in ctx.mappings.approved.items():
                reverse[(kind, target_code)].append(source_code)
            self._reverse = {key: sorted(codes) for key, codes in reverse.items()}
        try:
            self._bills = {text(row.get("RECORDNO")): row for row in ctx.source.read("APBILL", bills)}
        except SyncError as exc:  # each linked invoice fails (and is retried) on its own
            self._read_error = exc

    def _intacct_code(self, kind: str, sn_code: str, missing: list[str]) -> str:
        if not sn_code:
            return ""
        candidates = (self._reverse or {}).get((kind, sn_code), [])
        if len(candidates) != 1:
            # None approved, or several Intacct codes mapped onto this one: a person decides.
            missing.append(f"{kind}:{sn_code}")
            return ""
        return candidates[0]

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        sn = ctx.target
        d = record.data
        approval, approved = self._settings(ctx)
        system = text(d.get(source_system_field(ctx)))
        if system and system != SOURCE_SYSTEM:
            raise SkipRecord(f"Invoice from {system}, not from Sage Intacct")
        identity = text(d.get(sn.source_id_field))
        if identity and ctx.key_of(identity) is None:
            raise SkipRecord(f"Invoice staged from another source ({identity.partition(':')[0]}), not this "
                             "Intacct company")
        if text(d.get(approval)) != approved:
            raise SkipRecord("No longer approved in ServiceNow")
        own = ctx.lineage_of(self.name, record.key)
        bill = self._bill_of(ctx, record)
        current: dict[str, Any] = {}
        if bill:
            forward = ctx.lineage_of("bills", bill)
            if (forward and own and own[1].get("posted")
                    and forward[1].get("sys_mod_count") == text(d.get("sys_mod_count"))):
                raise SkipRecord("This change is our own write from Intacct; not posted back")
            if self._read_error is not None:
                raise self._read_error
            current = self._bills.get(bill) or {}
            if forward is None and own is None and not self._created_from(ctx, current, d):
                # No lineage yet may only mean the bills stream's answer for it is still outstanding
                # (a lost answer, a crash, a run in progress): wait for it, or the approval is
                # skipped for good and never reaches Intacct.
                if ctx.written("bills", [record.key])[1]:
                    raise TransientError(f"Intacct bill {bill}: its staging by this integration is not accounted "
                                         "for yet; will retry")
                raise SkipRecord(f"Linked to Intacct bill {bill}, which this integration did not sync")
            if not current:
                raise InvalidRecord(f"Intacct bill {bill} no longer exists")
        elif not ctx.setting("create_bills_from_servicenow", True):
            raise SkipRecord("Invoice started in ServiceNow; creating Intacct bills is off for this integration")
        items, sn_lines = self._lines(ctx, d, current)
        if current and not ctx.force:
            seen = max((forward or ("", {}))[1].get("intacct_read", ""),
                       (own or ("", {}))[1].get("intacct_modified", ""))
            changed = to_cursor(text(current.get("WHENMODIFIED")))
            # Changed since we last saw it, and not into exactly what we are posting (which is what
            # an earlier attempt of ours, whose answer was lost, leaves behind): a person decides.
            if seen and changed > seen and not _already_applied(items, d, current):
                raise Conflict(f"Bill {current.get('RECORDID') or bill} changed in Intacct ({changed}) after it was "
                               "staged; review and replay to post the ServiceNow approval anyway")
        total = sum((Decimal(i["TRX_AMOUNT"]) for i in items), Decimal("0"))
        if text(d.get("amount_invoiced")) and _money(d.get("amount_invoiced"), "Invoice total") != total:
            raise InvalidRecord(f"Lines add up to {total} but the invoice total is {d.get('amount_invoiced')}")
        lines = {"APBILLITEM": items}
        number = text(d.get("number"))
        if bill:
            values: dict[str, Any] = {"RECORDNO": bill}
            if d.get("due_date"):
                values["WHENDUE"] = intacct_date(text(d.get("due_date")))
            values["APBILLITEMS"] = lines
            return {"action": "update", "record_no": bill, "values": values, "identity": {},
                    "version": text(d.get("sys_mod_count")), "sn_lines": sn_lines}
        vendor = text(d.get(f"supplier.{sn.code_fields['supplier']}"))
        if not vendor or ctx.lineage_of("vendors", vendor) is None:
            raise InvalidRecord(f"Supplier {vendor or '(none)'} is not an Intacct vendor synced by this integration")
        if not d.get("invoice_date"):
            raise InvalidRecord("The invoice has no invoice date")
        values = {
            "RECORDID": number,
            "VENDORID": vendor,
            "WHENCREATED": intacct_date(text(d.get("invoice_date"))),
            "DOCNUMBER": text(d.get("supplier_invoice_number")),
            "DESCRIPTION": text(d.get("short_description")) or f"ServiceNow invoice {number}",
            "WHENDUE": intacct_date(text(d.get("due_date"))) or None,
            "CURRENCY": text(d.get("currency")) or None,
            "APBILLITEMS": lines,
        }
        return {"action": "create", "record_no": "", "values": {k: v for k, v in values.items() if v is not None},
                "identity": {"RECORDID": number, "VENDORID": vendor}, "version": text(d.get("sys_mod_count")),
                "sn_lines": sn_lines}

    @staticmethod
    def _created_from(ctx: StreamContext, bill: dict[str, Any], d: dict[str, Any]) -> bool:
        """Is this the bill an earlier attempt created from this invoice (whose answer we lost)?"""
        vendor = text(d.get(f"supplier.{ctx.target.code_fields['supplier']}"))
        return bool(bill) and (text(bill.get("RECORDID")), text(bill.get("VENDORID"))) == (text(d.get("number")), vendor)

    def _lines(self, ctx: StreamContext, d: dict[str, Any], current: dict[str, Any]
               ) -> tuple[list[dict[str, str]], dict[str, str]]:
        sn = ctx.target
        missing: list[str] = []
        locations = {text(line.get("LINE_NO")): text(line.get("LOCATIONID"))
                     for line in current.get("APBILLITEMS") or []}
        default_location = next(iter(locations.values()), "") or ctx.source.location_id
        items, sn_lines = [], {}
        if not d.get("lines"):
            raise InvalidRecord("The invoice has no lines")
        for position, line in enumerate(d["lines"], start=1):
            gl_code = text(line.get(f"gl_account.{sn.code_fields['gl_account']}"))
            if not gl_code:
                raise InvalidRecord(f"Line {text(line.get('line_number')) or position} has no GL account")
            account = self._intacct_code("gl_account", gl_code, missing)
            department = self._intacct_code(
                "cost_center", text(line.get(f"cost_center.{sn.code_fields['cost_center']}")), missing)
            linked = text(line.get(sn.source_id_field))
            number = linked.rsplit("/", 1)[-1] if "/" in linked else str(position)
            sn_lines[text(line.get("sys_id"))] = str(position)
            item = {"ACCOUNTNO": account,
                    "TRX_AMOUNT": format(_money(line.get("line_amount_invoiced"), "Line amount"), "f"),
                    "ENTRYDESCRIPTION": text(line.get("line_description"))}
            location = locations.get(number) or default_location
            if location:
                item["LOCATIONID"] = location
            if department:
                item["DEPARTMENTID"] = department
            items.append(item)
        if missing:
            raise NeedsMapping(missing)
        return items, sn_lines

    # --- writing Intacct ------------------------------------------------------------------------
    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        intacct = ctx.source
        results: dict[str, WriteResult] = {}
        todo: list[tuple[WriteItem, WriteOp, str]] = []
        for item in items:
            p = item.payload
            digest = canonical_hash({"action": p["action"], "record_no": p["record_no"], "values": p["values"]})
            if item.target_id and item.target_refs.get("posted") == digest:
                # Posted already: never twice, not even on a forced replay (change it in ServiceNow to re-post).
                results[item.key] = WriteResult("unchanged", item.target_id)
                continue
            controlid = derived_controlid(self.name, item.key, p["version"], digest)
            todo.append((item, WriteOp(item.key, p["action"], "APBILL", dict(p["values"]), controlid,
                                       dict(p["identity"])), digest))
        self._resolve_uncertain_creates(intacct, todo)
        outcomes = intacct.write([op for _, op, _ in todo]) if todo else {}
        written = [o.record_no for o in outcomes.values() if o.error is None and o.record_no]
        stamps = {text(r.get("RECORDNO")): to_cursor(text(r.get("WHENMODIFIED")))
                  for r in (intacct.read("APBILL", written, ["RECORDNO", "WHENMODIFIED"]) if written else [])}
        links: list[tuple[WriteItem, str]] = []
        for item, op, digest in todo:
            outcome = outcomes[item.key]
            if outcome.error is not None:
                results[item.key] = WriteResult("", error=outcome.error)
                continue
            results[item.key] = WriteResult(
                "created" if op.action == "create" else "updated", outcome.record_no,
                target_refs={"posted": digest, "intacct_modified": stamps.get(outcome.record_no, ""),
                             "controlid": op.controlid, "duplicate_refused": "yes" if outcome.duplicate else ""})
            if ctx.key_of(text(item.record.data.get(ctx.target.source_id_field))) != outcome.record_no:
                links.append((item, outcome.record_no))
        self._link(ctx, links, results)
        return results

    def _resolve_uncertain_creates(self, intacct: Any, todo: list[tuple[WriteItem, WriteOp, str]]) -> None:
        """A create that may have committed unseen becomes an update of the bill it made."""
        uncertain = [(item, op) for item, op, _ in todo if op.action == "create" and item.uncertain]
        if not uncertain:
            return
        found = intacct.find("APBILL", [op.identity for _, op in uncertain])
        for index, (_, op) in enumerate(uncertain):
            row = found.get(index)
            if row is not None:
                op.action = "update"
                op.values = {"RECORDNO": text(row.get("RECORDNO")),
                             **{k: v for k, v in op.values.items() if k in UPDATABLE}}

    def _link(self, ctx: StreamContext, links: list[tuple[WriteItem, str]], results: dict[str, WriteResult]) -> None:
        """Write the Intacct RECORDNO into the ServiceNow invoice and its lines (the source-id column)."""
        if not links:
            return
        sn = ctx.target
        headers = [UpsertRow(record_no, {source_system_field(ctx): SOURCE_SYSTEM}, item.key,
                             identity=ctx.identity(record_no))
                   for item, record_no in links]
        lines = [UpsertRow(f"{record_no}/{number}", {}, sys_id, identity=ctx.identity(f"{record_no}/{number}"))
                 for item, record_no in links for sys_id, number in item.payload["sn_lines"].items() if sys_id]
        done = sn.upsert(sn.table("invoice"), headers)
        done_lines = sn.upsert(sn.table("invoice_line"), lines) if lines else {}
        for item, record_no in links:
            outcomes = [(sn.table("invoice"), item.key, done[record_no])] + [
                (sn.table("invoice_line"), sys_id, done_lines[f"{record_no}/{n}"])
                for sys_id, n in item.payload["sn_lines"].items() if f"{record_no}/{n}" in done_lines]
            errors = [outcome.error for table, sys_id, outcome in outcomes
                      if not _deleted_by_hand(sn, table, sys_id, record_no, outcome.error)]
            error = next((e for e in errors if e is not None), None)
            if error is not None:
                # Posted to Intacct but not linked in ServiceNow: retry; the retry finds the bill.
                results[item.key] = WriteResult("", error=TransientError(f"Posted as Intacct bill {record_no}, but "
                                                                         f"linking it in ServiceNow failed: {error}"))


def _deleted_by_hand(sn: Any, table: str, sys_id: str, record_no: str, error: SyncError | None) -> bool:
    """A row the link-back updates answered 404: deleted in ServiceNow since it was read. The link
    carries only our identity, so the row is not created again (it would be an empty invoice or
    line, unlike the staging streams' whole rows, which :func:`upsert_recreating` re-creates): the
    post to Intacct stands, and the deletion is audited instead of being retried forever."""
    if error is None or error.status != 404:
        return False
    sn.http.on_event("record.link_skipped", {
        "reason": f"The {table} row {sys_id} was deleted in ServiceNow after it was posted to Intacct as bill "
                  f"{record_no}; it is not linked (nor created again)",
        "table": table, "sys_id": sys_id, "record_no": record_no})
    return True


def _already_applied(items: list[dict[str, str]], d: dict[str, Any], current: dict[str, Any]) -> bool:
    """Does the Intacct bill already hold these lines (and due date)?"""
    def shape(line: dict[str, Any]) -> tuple[str, str, Decimal, str]:
        return (text(line.get("ACCOUNTNO")), text(line.get("DEPARTMENTID")), _money(line.get("TRX_AMOUNT"), "Amount"),
                text(line.get("ENTRYDESCRIPTION")))

    due = intacct_date(text(d.get("due_date"))) if d.get("due_date") else text(current.get("WHENDUE"))
    return ([shape(i) for i in items] == [shape(line) for line in current.get("APBILLITEMS") or []]
            and due == text(current.get("WHENDUE")))


def _int(value: Any) -> int:
    try:
        return int(text(value))
    except ValueError:
        return 0
