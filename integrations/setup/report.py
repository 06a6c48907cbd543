"""A fit check report as text (for ``load_tenant --dry-run``) and as CSV (for the customer's IT)."""

from __future__ import annotations

import csv
import io
from typing import Any


def report_rows(report: dict[str, Any]) -> list[list[Any]]:
    """Section, item, value, note: one row per fact, the same facts the page shows."""
    rows: list[list[Any]] = [["section", "item", "value", "note"]]
    integ = report["integration"]
    rows.append(["integration", integ["name"], integ["label"], report["at"]])
    rows.append(["verdict", report["verdict"]["status"], report["verdict"]["text"], ""])
    for blocker in report["blockers"]:
        rows.append(["blocker", "", blocker, ""])
    for part in report["connections"]:
        for line in part["checks"]:
            rows.append([f"connection {part['side']}", f"{part['label']} ({part['name']})",
                         "ok" if line["ok"] else "problem", line["text"] + (f" [{line['detail']}]" if line["detail"] else "")])
    for part in report["streams"]:
        if part.get("reference"):
            rows.append(["reference data", part["label"], part["read"],
                         f"read from {part['system']}" + ("" if part["complete"] else " (stopped before the end)")])
        elif part.get("off"):
            rows.append(["records", part["label"], "", "off for this integration"])
        else:
            rows.append(["records", part["label"], part.get("would_move", 0),
                         f"{part.get('written', 0)} ready, {part.get('held', 0)} waiting for a mapping, "
                         f"{part.get('invalid', 0)} refused, {part.get('skipped', 0)} skipped; read {part['read']}"
                         + ("" if part["complete"] else f" (first {part['pages']} pages only)")])
    for ref in report["reference"]:
        rows.append(["reference count", f"{ref['kind']} in {ref['side']}", ref["count"], ""])
    for held in report["held_codes"]:
        rows.append(["mapping needed", held["key"], held["records"],
                     f"suggested {held['suggested']} {held['suggested_label']}".strip() if held["suggested"]
                     else "no match found: map it by hand"])
    for budget in report["budget"]:
        least = "at least " if budget.get("at_least") else ""
        rows.append(["call budget", f"{budget['system']} ({budget['connection']})", f"{least}{budget['needed']}",
                     f"budget {budget['budget'] or 'unlimited'} per cycle: {least}{budget['cycles']} cycle(s)"])
    return rows


def report_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in report_rows(report):
        # a cell starting with = + - @ would be a formula in a spreadsheet: quote it as text
        writer.writerow([f"'{cell}" if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@") else cell
                         for cell in row])
    return out.getvalue()


def report_text(report: dict[str, Any]) -> str:
    """The report for a terminal: the verdict first, then every fact."""
    lines = [f"Fit check of {report['integration']['name']} ({report['integration']['label']})",
             f"Verdict: {report['verdict']['text']}", ""]
    for section, item, value, note in report_rows(report)[3:]:
        lines.append(f"  {section:<22} {str(item):<40} {str(value):<10} {note}".rstrip())
    return "\n".join(lines)
