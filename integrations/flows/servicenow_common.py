"""ServiceNow pieces shared by every flow that reads from or writes to ServiceNow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from integrations.flows.base import (
    Checkpoint,
    InvalidRecord,
    Ledger,
    NeedsMapping,
    RecordStream,
    ReferenceStream,
    RefItem,
    StreamContext,
    TargetDocument,
    WriteItem,
    WriteResult,
)
from integrations.flows.values import amount, text
from integrations.systems.errors import TransientError
from integrations.systems.servicenow import UpsertOutcome, UpsertRow


# --- references every flow into ServiceNow uses --------------------------------------------------
def renamed(ctx: StreamContext, table: str, payload: dict[str, str]) -> dict[str, str]:
    """Target column names renamed per integration: settings["field_names"][table]."""
    names = (ctx.setting("field_names", {}) or {}).get(table, {})
    return {names.get(k, k): v for k, v in payload.items()} if names else payload


def synced_id(ctx: StreamContext, stream: str, key: str) -> str:
    """The target id of a record another stream synced; wait (retry later) if not there yet."""
    if not key:
        return ""
    found = ctx.lineage_of(stream, key)
    if found is None:
        raise TransientError(f"{stream} record {key} is not in ServiceNow yet; will retry")
    return found[0]


class ServiceNowReference(ReferenceStream):
    """GL accounts / cost centers read from a ServiceNow table of the connection's profile."""

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[RefItem]]:
        sn = ctx.target if self.reads == "target" else ctx.source
        code_field = sn.code_fields[self.kind]
        label_field = sn.label_fields[self.kind]
        fields = [code_field, label_field, "sys_id", "sys_updated_on"]
        for page in sn.iter_updated_since(sn.table(self.kind), checkpoint.cursor, after_id=checkpoint.after_key,
                                          fields=fields):
            yield [
                RefItem(code=str(row.get(code_field) or ""), label=str(row.get(label_field) or ""),
                        external_id=str(row.get("sys_id") or ""), cursor=str(row.get("sys_updated_on") or ""),
                        order_key=str(row.get("sys_id") or ""))
                for row in page
                if row.get(code_field)
            ]


class SnGlAccounts(ServiceNowReference):
    name = "sn_gl_accounts"
    label = "GL accounts (ServiceNow)"
    kind = "gl_account"
    reads = "target"


class SnCostCenters(ServiceNowReference):
    name = "sn_cost_centers"
    label = "Cost centers (ServiceNow)"
    kind = "cost_center"
    reads = "target"


def adopt(ctx: StreamContext, logical: str, column: str, items: list[WriteItem], value_of: Any, what: str) -> None:
    """Link never-synced rows to an existing ServiceNow row with the same ``column`` value and no
    source key (entered by hand before the integration), instead of creating a duplicate."""
    sn = ctx.target
    fresh: dict[str, WriteItem] = {}
    for item in items:
        value = value_of(item)
        if not item.target_id and value and "^" not in value and "," not in value:
            fresh.setdefault(value, item)
    values = list(fresh)
    for start in range(0, len(values), 50):
        chunk = values[start:start + 50]
        query = "^OR".join(f"{column}={value}" for value in chunk)
        for page in sn.iter_pages_before_write(sn.table(logical), query,
                                               fields=[column, "sys_id", sn.source_id_field]):
            for row in page:
                item = fresh.get(text(row.get(column)))
                if item is None or item.target_id or text(row.get(sn.source_id_field)):
                    continue
                item.target_id = text(row.get("sys_id"))
                sn.http.on_event("record.adopted", {
                    "reason": f"{what} {item.record.business_key or item.key} matched the existing ServiceNow "
                              f"row {item.target_id} ({column} = {text(row.get(column))!r}, no source key): "
                              "adopted, not duplicated",
                    "table": sn.table(logical), "sys_id": item.target_id, "key": item.key})


# --- the invoice with lines every ERP → ServiceNow flow stages ----------------------------------
@dataclass
class InvoiceLine:
    """One line of a supplier invoice as the ERP has it: the codes to map, the amount, and any
    further target columns (item, quantity...)."""

    number: str
    amount: Any
    gl_account: str  # the ERP's GL account code, mapped through the "gl_account" mapping
    cost_center: str  # the ERP code mapped through the "cost_center" mapping (a department, or the account)
    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)


def invoice_with_lines(ctx: StreamContext, lines: list[InvoiceLine], header: Callable[[], dict[str, str]], *,
                       line_columns: Callable[[InvoiceLine], dict[str, str]] | None = None,
                       line_word: str = "line") -> dict[str, Any]:
    """The staging payload of an invoice whose every line lands on an approved GL account and
    cost center, for :func:`upsert_with_lines`.

    In this order: a line without a GL account or cost center code is a data error of the invoice
    (:class:`InvalidRecord`); a code without an approved mapping holds it (:class:`NeedsMapping`,
    naming every missing key); only then are ``header()`` and ``line_columns(line)`` built, which
    may wait for another stream's record (a supplier, a purchase order), so an invoice that needs
    a person is held rather than retried.
    """
    blank = [f"{line_word} {line.number} has no {label}"
             for line in lines for label, code in (("GL account", line.gl_account), ("cost center", line.cost_center))
             if not code.strip()]
    if blank:
        raise InvalidRecord("; ".join(blank))
    missing: list[str] = []
    dimensions = [(ctx.mappings.resolve("gl_account", line.gl_account, missing)[1],
                   ctx.mappings.resolve("cost_center", line.cost_center, missing)[1]) for line in lines]
    if missing:
        raise NeedsMapping(missing)
    rows = {}
    for line, (gl_id, cc_id) in zip(lines, dimensions, strict=True):
        rows[line.number] = renamed(ctx, "invoice_line", {
            "line_number": line.number,
            "line_description": line.description,
            "line_amount_invoiced": amount(line.amount),
            **line.columns,
            **(line_columns(line) if line_columns else {}),
            "gl_account": gl_id,
            "cost_center": cc_id,
        })
    return {"header": renamed(ctx, "invoice", header()), "lines": rows, "parent_field": "invoice"}


def upsert_recreating(sn: Any, table: str, rows: list[UpsertRow]) -> dict[str, UpsertOutcome]:
    """``sn.upsert``, then once more for the rows whose update by sys_id answered 404: deleted by
    hand in ServiceNow since we wrote them. They are created again (looked up by source identity
    first, in case the row exists under another sys_id) and each re-creation is audited."""
    outcomes = sn.upsert(table, rows)
    gone = [row for row in rows if row.sys_id and (found := outcomes.get(row.key)) is not None
            and found.error is not None and found.error.status == 404]
    if not gone:
        return outcomes
    again = sn.upsert(table, [UpsertRow(row.key, row.payload, "", True, identity=row.identity) for row in gone])
    for row in gone:
        outcome = again[row.key]
        outcomes[row.key] = outcome
        if outcome.error is None:
            sn.http.on_event("record.recreated", {
                "reason": f"The {table} row {row.sys_id} of {row.key} was deleted in ServiceNow; "
                          f"{'created again' if outcome.action == 'created' else 'found again'} as {outcome.sys_id}",
                "table": table, "key": row.key, "deleted_sys_id": row.sys_id, "sys_id": outcome.sys_id})
    return outcomes


def upsert_with_lines(ctx: StreamContext, logical: str, items: list[WriteItem],
                      line_table: str | None = None) -> dict[str, WriteResult]:
    """Upsert header rows (and their lines) by source identity through the Batch API.

    ``item.payload`` is the row itself, or ``{"header": ..., "lines": {number: row},
    "parent_field": column}`` when ``line_table`` is given. Lines are keyed
    ``<record key>/<line number>`` and refer to their header by sys_id; a line that vanished
    from the source is deleted from the target; a row deleted by hand in ServiceNow is created
    again (:func:`upsert_recreating`).
    """
    sn = ctx.target
    table = sn.table(logical)
    headers = [
        UpsertRow(item.key, item.payload["header"] if line_table else item.payload, item.target_id, item.uncertain,
                  identity=ctx.identity(item.key))
        for item in items
    ]
    written = upsert_recreating(sn, table, headers)
    results: dict[str, WriteResult] = {}
    line_rows: list[UpsertRow] = []
    owner: dict[str, tuple[str, str]] = {}
    for item in items:
        outcome = written[item.key]
        if outcome.error:
            results[item.key] = WriteResult("", error=outcome.error)
            continue
        results[item.key] = WriteResult(
            outcome.action, outcome.sys_id, sn.record_url(table, outcome.sys_id),
            target_refs={"sys_mod_count": str(outcome.record.get("sys_mod_count", ""))},
        )
        if not line_table:
            continue
        lines: dict[str, dict[str, Any]] = item.payload["lines"]
        parent_field = item.payload["parent_field"]
        for number, line in lines.items():
            key = f"{item.key}/{number}"
            known = item.target_refs.get(number, "")
            # A header that already existed may have lines we never heard back about.
            uncertain = not known and outcome.action != "created"
            line_rows.append(UpsertRow(key, {**line, parent_field: outcome.sys_id}, known, uncertain,
                                       identity=ctx.identity(key)))
            owner[key] = (item.key, number)
        for number, sys_id in item.target_refs.items():
            if number not in lines and number.isdigit():
                sn.delete(sn.table(line_table), sys_id)
    if line_rows:
        line_results = upsert_recreating(sn, sn.table(line_table), line_rows)
        for key, line_outcome in line_results.items():
            record_key, number = owner[key]
            result = results[record_key]
            if line_outcome.error:
                result.error = result.error or line_outcome.error
            else:
                result.target_refs[number] = line_outcome.sys_id
    return results


# --- reading staged invoices back, for month-end reconciliation ----------------------------------
# The header columns an invoice stream writes (see ``invoice_with_lines``' header), by payload name.
INVOICE_LEDGER = Ledger("invoice", date="invoice_date", currency="currency", amount="amount_invoiced",
                        number="supplier_invoice_number")
READ_BACK_KEYS = 100  # record keys per look-up (two identities each: namespaced and bare)


class StagedInvoices:
    """Mixin of an ERP → ServiceNow invoice stream: where its invoices land, and how they are read
    back (the stream itself says how to read the money of its source snapshots: ``money``)."""

    ledger = INVOICE_LEDGER

    def write_chunk(self, ctx: StreamContext) -> int:
        # invoices per Batch API call of headers (their lines follow in calls of the same size)
        return int(getattr(ctx.target, "batch_size", 0) or 0)

    def read_back(self, ctx: StreamContext, first: date, last: date, keys: list[str]) -> Iterator[list[TargetDocument]]:
        return read_back_ledger(self, ctx, first, last, keys)  # type: ignore[arg-type]


def read_back_ledger(stream: RecordStream, ctx: StreamContext, first: date, last: date,
                     keys: list[str]) -> Iterator[list[TargetDocument]]:
    """Our rows of the stream's ledger table: every one dated in ``first``..``last`` (keyset pages
    by update time, as the sync reads), then the rows of ``keys`` not among them (written under a
    bare key, or dated outside the period in ServiceNow), by source identity. GETs only."""
    sn = ctx.target
    ledger = stream.ledger
    assert ledger is not None
    settings = ctx.integration_settings
    table = sn.table(ledger.table)
    id_column = sn.source_id_field
    date_column = ledger.column(settings, ledger.date)
    fields = [id_column, *(ledger.column(settings, name) for name in (ledger.date, ledger.currency, ledger.amount,
                                                                       ledger.number) if name)]
    wanted = set(keys)
    found: set[str] = set()
    seen: set[str] = set()  # sys_ids: a row updated while we page is read twice

    def documents(rows: list[dict[str, Any]], dated: bool) -> list[TargetDocument]:
        out = []
        for row in rows:
            key, sys_id = ctx.key_of(text(row.get(id_column))), text(row.get("sys_id"))
            if not key or sys_id in seen:
                continue
            document = TargetDocument(key, sys_id, stream.target_money(row, settings))
            day = document.money.day
            # ServiceNow ignores a condition on a column it lacks: the period is checked again here
            if dated and key not in wanted and (day is None or not first <= day <= last):
                continue
            seen.add(sys_id)
            found.add(key)
            out.append(document)
        return out

    conditions = [f"{id_column}STARTSWITH{ctx.namespace}:"] if ctx.namespace else []
    conditions += [f"{date_column}>={first.isoformat()}", f"{date_column}<={last.isoformat()}"]
    for page in sn.iter_updated_since(table, "", extra_query="^".join(conditions), fields=fields):
        yield documents(page, dated=True)
    rest = [key for key in keys if key not in found]
    for start in range(0, len(rest), READ_BACK_KEYS):
        chunk = rest[start:start + READ_BACK_KEYS]
        rows = sn.lookup(table, id_column, [value for key in chunk for value in {ctx.identity(key), key}],
                         fields=fields)
        yield documents(list(rows.values()), dated=False)
