"""The bare client for Sage X3 → ServiceNow: the same HTTP calls as the portal, nothing else.

What a hand-written script would do: plain ``requests``, no database, no bookkeeping, no
retries, no audit. It reads the same pages (``count=`` at the largest page the source allows,
in the same order), maps GL accounts and cost centers by exact code, and writes the same
payloads through the same Batch API calls (headers of a page, then their lines, at the largest
batch the target allows). Target ids it needs later (suppliers, purchase orders and their
lines) stay in dictionaries: the script keeps them in memory where the portal keeps lineage
in its database.

Run in its own process by the benchmark: ``python -m integrations.benchmark.bare_x3_servicenow
CONFIG.json``; prints one JSON line of figures.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import requests

from integrations.benchmark.bare_servicenow import ServiceNowBatchWriter, run_bare

TABLES = {
    "supplier": "proc_vendor", "purchase_order": "proc_po", "purchase_order_line": "proc_po_item",
    "invoice": "sn_apo_invoice", "invoice_line": "sn_apo_invoice_line",
    "gl_account": "itfm_gl_accounts", "cost_center": "cmn_cost_center",
}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _amount(value: Any) -> str:
    return str(Decimal(str(value))) if value not in (None, "") else ""


class BareRun(ServiceNowBatchWriter):
    tables = TABLES

    def __init__(self, config: dict[str, Any]) -> None:
        self.x3_url = config["x3_url"].rstrip("/")
        self.sn_url = config["sn_url"].rstrip("/")
        self.page_size = int(config["page_size"])
        self.batch_size = int(config["batch_size"])
        self.x3 = requests.Session()
        self.x3.auth = tuple(config["x3_basic"])
        self.x3.headers["Accept"] = "application/json"
        self.sn = requests.Session()
        self.sn.headers["Accept"] = "application/json"
        self.sn_client = tuple(config["sn_client"])
        self.reads: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self.calls = {"read": 0, "write": 0, "auth": 0}

    # --- sources --------------------------------------------------------------------------
    def x3_pages(self, klass: str, key: str) -> Iterator[list[dict[str, Any]]]:
        url: str | None = f"{self.x3_url}/api1/x3/erp/SEED/{klass}"
        params: dict[str, Any] | None = {"representation": f"{klass}.$query", "count": self.page_size,
                                         "orderBy": f"UPDDATTIM asc, {key} asc"}
        while url:
            response = self.x3.get(url, params=params, timeout=60)
            self.calls["read"] += 1
            response.raise_for_status()
            body = json.loads(response.content, parse_float=Decimal)
            rows = body.get("$resources") or []
            self.reads[klass] = self.reads.get(klass, 0) + len(rows)
            if rows:
                yield rows
            url = ((body.get("$links") or {}).get("$next") or {}).get("$url")
            params = None

    def sn_codes(self, logical: str, code_field: str) -> dict[str, str]:
        table = TABLES[logical]
        response = self.sn.get(f"{self.sn_url}/api/now/table/{table}", timeout=60, params={
            "sysparm_limit": 1000, "sysparm_offset": 0, "sysparm_exclude_reference_link": "true",
            "sysparm_fields": f"{code_field},name,sys_id,sys_updated_on",
            "sysparm_query": "ORDERBYsys_updated_on^ORDERBYsys_id"})
        self.calls["read"] += 1
        response.raise_for_status()
        rows = response.json()["result"]
        self.reads[table] = len(rows)
        return {row[code_field]: row["sys_id"] for row in rows}

    # --- target ---------------------------------------------------------------------------
    # --- the transfer ---------------------------------------------------------------------
    def run(self) -> None:
        self.token()
        for klass, key in (("GACCOUNT", "ACC"), ("CACCE", "CCE")):
            for _ in self.x3_pages(klass, key):
                pass
        gl = self.sn_codes("gl_account", "account_number")
        cc = self.sn_codes("cost_center", "code")

        suppliers: dict[str, str] = {}
        for page in self.x3_pages("BPSUPPLIER", "BPSNUM"):
            suppliers.update(self.insert("supplier", [(row["BPSNUM"], {
                "supplier_number": row["BPSNUM"], "name": _text(row["BPSNAM"]), "short_name": _text(row["BPSSHO"]),
                "country": _text(row["CRY"]), "currency": _text(row["CUR"]), "payment_terms": _text(row["PTE"]),
                "street": _text(row["BPAADDLIG"]), "city": _text(row["CTY"]), "zip": _text(row["POSCOD"]),
                "phone": _text(row["TEL"]), "website": _text(row["WEB"]), "contact": _text(row["CNTNAM"]),
            }) for row in page]))

        orders: dict[str, tuple[str, dict[str, str]]] = {}
        for page in self.x3_pages("PORDER", "POHNUM"):
            ids = self.insert("purchase_order", [(row["POHNUM"], {
                "erp_number": row["POHNUM"], "supplier": suppliers[row["BPSNUM"]],
                "order_date": _text(row["ORDDAT"]), "currency": _text(row["CUR"]),
                "total_amount": _amount(row["TOTAMTNOT"]),
            }) for row in page])
            lines = [(f"{row['POHNUM']}/{line['POPLIN']}", {
                "line_number": _text(line["POPLIN"]), "item": _text(line["ITMREF"]),
                "description": _text(line["ITMDES"]), "quantity": _amount(line["QTYUOM"]), "uom": _text(line["PUU"]),
                "unit_price": _amount(line["GROPRI"]), "total_amount": _amount(line["LINAMT"]),
                "purchase_order": ids[row["POHNUM"]],
            }) for row in page for line in row["PORDERP"]]
            line_ids = self.insert("purchase_order_line", lines)
            for row in page:
                orders[row["POHNUM"]] = (ids[row["POHNUM"]], {
                    _text(line["POPLIN"]): line_ids[f"{row['POHNUM']}/{line['POPLIN']}"] for line in row["PORDERP"]})

        for page in self.x3_pages("PINVOICE", "NUM"):
            ids = self.insert("invoice", [(row["NUM"], {
                "supplier_invoice_number": _text(row["BPRVCR"]), "supplier": suppliers[row["BPR"]],
                "purchase_order": orders[row["PINVOICED"][0]["POHNUM"]][0] if row["PINVOICED"] else "",
                "invoice_date": _text(row["BPRDAT"]), "accounting_date": _text(row["ACCDAT"]),
                "currency": _text(row["CUR"]), "subtotal": _amount(row["AMTNOT"]),
                "amount_invoiced": _amount(row["AMTATI"]),
            }) for row in page])
            self.insert("invoice_line", [(f"{row['NUM']}/{line['PIDLIN']}", {
                "line_number": _text(line["PIDLIN"]), "purchase_order": orders[line["POHNUM"]][0],
                "purchase_order_line": orders[line["POHNUM"]][1][_text(line["POPLIN"])],
                "item": _text(line["ITMREF"]),
                "line_description": f"{line['POHNUM']}/{line['POPLIN']} {_text(line['ITMREF'])}",
                "line_quantity": _amount(line["QTYUOM"]), "line_unit_price": _amount(line["NETPRI"]),
                "line_amount_invoiced": _amount(line["AMTNOTLIN"]),
                "gl_account": gl[line["ACC"]], "cost_center": cc[line["CCE"]], "invoice": ids[row["NUM"]],
            }) for row in page for line in row["PINVOICED"]])


def main(argv: list[str] | None = None) -> int:
    return run_bare(BareRun, argv)


if __name__ == "__main__":
    sys.exit(main())
