"""ServiceNow pieces shared by every flow that reads from or writes to ServiceNow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from integrations.flows.base import (
    Checkpoint,
    InvalidRecord,
    NeedsMapping,
    ReferenceStream,
    RefItem,
    StreamContext,
    WriteItem,
    WriteResult,
)
from integrations.flows.values import amount
from integrations.systems.errors import TransientError
from integrations.systems.servicenow import UpsertRow


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


def upsert_with_lines(ctx: StreamContext, logical: str, items: list[WriteItem],
                      line_table: str | None = None) -> dict[str, WriteResult]:
    """Upsert header rows (and their lines) by source identity through the Batch API.

    ``item.payload`` is the row itself, or ``{"header": ..., "lines": {number: row},
    "parent_field": column}`` when ``line_table`` is given. Lines are keyed
    ``<record key>/<line number>`` and refer to their header by sys_id; a line that vanished
    from the source is deleted from the target.
    """
    sn = ctx.target
    table = sn.table(logical)
    headers = [
        UpsertRow(item.key, item.payload["header"] if line_table else item.payload, item.target_id, item.uncertain,
                  identity=ctx.identity(item.key))
        for item in items
    ]
    written = sn.upsert(table, headers)
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
        line_results = sn.upsert(sn.table(line_table), line_rows)
        for key, line_outcome in line_results.items():
            record_key, number = owner[key]
            result = results[record_key]
            if line_outcome.error:
                result.error = result.error or line_outcome.error
            else:
                result.target_refs[number] = line_outcome.sys_id
    return results
