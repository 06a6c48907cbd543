"""ServiceNow pieces shared by every flow that reads from or writes to ServiceNow."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from integrations.flows.base import ReferenceStream, RefItem, StreamContext, WriteItem, WriteResult
from integrations.systems.errors import TransientError
from integrations.systems.servicenow import UpsertRow


# --- values and references every flow into ServiceNow uses ------------------------------------
def text(value: Any) -> str:
    """ServiceNow stores every value as a string; amounts keep their exact decimal digits."""
    if value is None:
        return ""
    if isinstance(value, float):  # never expected: amounts are parsed to Decimal
        raise TypeError("float amount")
    return str(value)


def amount(value: Any) -> str:
    if type(value) is Decimal:  # the usual case (amounts are parsed to Decimal): no round trip
        return str(value)
    return str(Decimal(str(value))) if value not in (None, "") else ""


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

    def read(self, ctx: StreamContext, since: str) -> Iterator[list[RefItem]]:
        sn = ctx.target if self.reads == "target" else ctx.source
        code_field = sn.code_fields[self.kind]
        label_field = sn.label_fields[self.kind]
        fields = [code_field, label_field, "sys_id", "sys_updated_on"]
        for page in sn.iter_updated_since(sn.table(self.kind), since, fields=fields):
            yield [
                RefItem(code=str(row.get(code_field) or ""), label=str(row.get(label_field) or ""),
                        external_id=str(row.get("sys_id") or ""), cursor=str(row.get("sys_updated_on") or ""))
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
        UpsertRow(item.key, item.payload["header"] if line_table else item.payload, item.target_id, item.uncertain)
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
            line_rows.append(UpsertRow(key, {**line, parent_field: outcome.sys_id}, known, uncertain))
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
