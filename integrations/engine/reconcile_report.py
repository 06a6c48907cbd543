"""A stored reconciliation as data: one JSON shape and one CSV shape for every face (console, API, command)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from integrations.models import ReconciliationLine, ReconciliationRun

CSV_COLUMNS = [
    "section", "stream", "reason", "invoice", "supplier", "currency", "source_date", "source_amount",
    "target_currency", "target_date", "target_amount", "difference", "source_count", "target_count", "target_id",
    "record_id", "message",
]


CENT = Decimal("0.01")


def _amount(value: Decimal | str | None) -> str | None:
    """An amount as text with cents, and more digits only where the value has them (4 are stored)."""
    if value is None or value == "":
        return None
    number = Decimal(value)
    cents = number.quantize(CENT)
    return format(cents if cents == number else number.normalize(), "f")


def line_data(line: ReconciliationLine) -> dict[str, Any]:
    return {
        "stream": line.stream,
        "reason": line.reason,
        "reason_label": line.get_reason_display(),
        "record_id": line.record_id,
        "source_key": line.source_key,
        "business_key": line.business_key,
        "supplier": line.supplier,
        "currency": line.currency,
        "source_date": line.source_date.isoformat() if line.source_date else None,
        "source_amount": _amount(line.source_amount),
        "target_id": line.target_id,
        "target_currency": line.target_currency,
        "target_date": line.target_date.isoformat() if line.target_date else None,
        "target_amount": _amount(line.target_amount),
        "difference": _amount(line.gap),
        "waiting_for": line.missing_keys,
        "message": line.message,
    }


def totals_data(run: ReconciliationRun) -> list[dict[str, Any]]:
    rows = []
    for row in run.totals or []:
        gap = Decimal(row["target_amount"]) - Decimal(row["source_amount"])
        rows.append({**row, "source_amount": _amount(row["source_amount"]),
                     "target_amount": _amount(row["target_amount"]), "difference": _amount(gap),
                     "count_difference": row["target_count"] - row["source_count"]})
    return rows


def run_data(run: ReconciliationRun, lines: Iterable[ReconciliationLine] | None = None) -> dict[str, Any]:
    """The JSON shape of a run: its verdict, totals per stream and currency, and (given) its lines."""
    data: dict[str, Any] = {
        "id": run.pk,
        "uuid": str(run.uuid),
        "integration": {"id": run.integration_id, "name": run.integration.name},
        "period": {"label": run.period_label, "start": run.period_start.isoformat(),
                   "end": run.period_end.isoformat()},
        "status": run.status,
        "balanced": run.status == "balanced",
        "verdict": run.verdict,
        "differences": run.differences,
        "off_by": {currency: _amount(gap) for currency, gap in run.off_by().items()},
        "totals": totals_data(run),
        "daily": run.daily,
        "warnings": run.warnings,
        "trigger": run.trigger,
        "triggered_by": run.triggered_by,
        "api_calls": run.api_calls,
        "error": run.error,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
    if lines is not None:
        data["lines"] = [line_data(line) for line in lines]
    return data


def _text(value: Any) -> str:
    """Free text as a CSV cell: one that starts like a formula stays text when opened in a spreadsheet."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(run: ReconciliationRun, lines: Iterable[ReconciliationLine]) -> Iterator[list[Any]]:
    """The header, one ``total`` row per stream and currency, then one ``difference`` row per line."""
    yield CSV_COLUMNS
    for row in totals_data(run):
        yield ["total", row["stream"], "", "", "", row["currency"], "", row["source_amount"], row["currency"], "",
               row["target_amount"], row["difference"], row["source_count"], row["target_count"], "", "", ""]
    for line in lines:
        data = line_data(line)
        yield ["difference", line.stream, line.reason, _text(line.business_key or line.source_key),
               _text(line.supplier), line.currency, data["source_date"] or "", data["source_amount"] or "",
               line.target_currency, data["target_date"] or "", data["target_amount"] or "", data["difference"],
               "", "", _text(line.target_id), line.record_id or "", _text(line.message)]


def csv_text(run: ReconciliationRun, lines: Iterable[ReconciliationLine]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(run, lines))
    return out.getvalue()
