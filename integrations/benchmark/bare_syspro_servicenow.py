"""The bare client for SYSPRO → ServiceNow: the fewest HTTP calls, nothing else.

What a hand-written script would do: plain ``requests``, no database, no bookkeeping, no
retries, no audit. One e.net session (``Logon``, the UserId passed back verbatim in every
query, ``Logoff`` at the end) and one ServiceNow OAuth token. Every SYSPRO table is read once
with COMFND at the benchmark's ReturnRows, in (date, key) order, each next page asking for the
rows after the last one read (a seek, as the portal does; COMFND has no offset and tells no
total, so a table's end shows as a short or empty page): the cost centres and the GL chart
(matched by code to the ServiceNow rows read once; the accounts ServiceNow lacks are created),
the suppliers, the purchase orders (none in the benchmark ledger), the distribution lines of
every invoice (kept in memory by invoice), the invoices (each page staged with its lines), and
the GL journal entries (one staging row each), all through the shared Batch API writer at the
largest batch the target allows.

Unlike the portal, it reads the GL chart once (the portal reads it as reference data for the
mapping review and again as the accounts it pushes, two streams with their own cursors), it
does not look in ServiceNow for suppliers entered by hand before creating them, and it holds
the whole line table in memory instead of joining it page by page.

Run in its own process by the benchmark: ``python -m integrations.benchmark.bare_syspro_servicenow
CONFIG.json``; prints one JSON line of figures.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import requests
from lxml import etree

from integrations.benchmark.bare_servicenow import ServiceNowBatchWriter, run_bare

TABLES = {"supplier": "proc_vendor", "invoice": "sn_apo_invoice", "invoice_line": "sn_apo_invoice_line",
          "purchase_order": "proc_po", "purchase_order_line": "proc_po_item", "gl_account": "itfm_gl_accounts",
          "cost_center": "cmn_cost_center", "gl_posting": "u_ml_gl_posting"}
# table -> (date column, key columns, columns read)
SYSPRO = {
    "GenCostCentre": ("DateLastModified", ("CostCentre",), ("CostCentre", "Description", "DateLastModified")),
    "GenMaster": ("DateLastModified", ("GlCode",), ("GlCode", "Description", "AccountType", "DateLastModified")),
    "ApSupplier": ("DateLastModified", ("Supplier",), (
        "Supplier", "SupplierName", "SupShortName", "Currency", "TermsCode", "SupAddr1", "SupAddr2", "SupPostalCode",
        "Telephone", "Email", "OnHold", "DateLastModified")),
    "PorMasterHdr": ("DateLastModified", ("PurchaseOrder",), (
        "PurchaseOrder", "Supplier", "OrderEntryDate", "OrderStatus", "Currency", "DateLastModified")),
    "ApInvoiceDistr": ("PostDate", ("Supplier", "Invoice", "DistrLine"), (
        "Supplier", "Invoice", "DistrLine", "GlCode", "CostCentre", "DistrValue", "Description", "PostDate")),
    "ApInvoice": ("PostDate", ("Supplier", "Invoice"), (
        "Supplier", "Invoice", "InvoiceDate", "PostDate", "DueDate", "Currency", "OrigInvValue", "PurchaseOrder",
        "Reference")),
    "GenJournalDetail": ("EntryDate", ("Journal", "EntryNumber"), (
        "Journal", "EntryNumber", "GlCode", "CostCentre", "EntryType", "EntryValue", "EntryDate", "Supplier", "Invoice",
        "Comment")),
}


def _xml_in(table: str, columns: tuple[str, ...], groups: list[list[tuple[str, str, str]]], order: list[str],
            rows: int) -> str:
    """COMFND XmlIn: conditions ANDed within a group, the groups ORed (each in brackets)."""
    parts = [f"<Query><TableName>{table}</TableName><ReturnRows>{rows}</ReturnRows><Columns>",
             *(f"<Column>{c}</Column>" for c in columns), "</Columns>"]
    if groups:
        parts.append("<Where>")
        for g, group in enumerate(groups):
            for n, (column, condition, value) in enumerate(group):
                parts.append(f"<Expression><OpenBracket>{'(' if n == 0 else ''}</OpenBracket>"
                             f"<AndOr>{'Or' if g and n == 0 else 'And'}</AndOr><Column>{column}</Column>"
                             f"<Condition>{condition}</Condition><Value>{escape(value)}</Value>"
                             f"<CloseBracket>{')' if n == len(group) - 1 else ''}</CloseBracket></Expression>")
        parts.append("</Where>")
    parts += ["<OrderBy>", *(f"<Column>{c}</Column>" for c in order), "</OrderBy></Query>"]
    return "".join(parts)


def _after(date_column: str, keys: tuple[str, ...], last: dict[str, str]) -> list[list[tuple[str, str, str]]]:
    """Strictly after the last row read, in (date, key) order."""
    day = last[date_column]
    groups = [[(date_column, "EQ", day), *((keys[i], "EQ", last[keys[i]]) for i in range(n)),
               (keys[n], "GT", last[keys[n]])] for n in range(len(keys))]
    return [*groups, [(date_column, "GT", day)]]


def _text(row: dict[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


class BareRun(ServiceNowBatchWriter):
    tables = TABLES

    def __init__(self, config: dict[str, Any]) -> None:
        self.rest = f"{config['syspro_url'].rstrip('/')}/SYSPROWCFService/Rest"
        self.logon_params = {"Operator": config["operator"], "OperatorPassword": config["operator_password"],
                             "CompanyId": config["company"], "CompanyPassword": config.get("company_password", "")}
        self.sn_url = config["sn_url"].rstrip("/")
        self.page_size = int(config["page_size"])
        self.batch_size = int(config["batch_size"])
        self.syspro = requests.Session()
        self.sn = requests.Session()
        self.sn.headers["Accept"] = "application/json"
        self.sn_client = tuple(config["sn_client"])
        self.user_id = ""
        self.reads: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self.calls = {"read": 0, "write": 0, "auth": 0}

    # --- SYSPRO ---------------------------------------------------------------------------
    def _get(self, operation: str, params: dict[str, str]) -> bytes:
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in params.items())
        response = self.syspro.get(f"{self.rest}/{operation}?{query}", timeout=300)
        response.raise_for_status()
        if response.content[:5].upper() == b"ERROR":
            raise RuntimeError(response.content[:200].decode("cp1252", errors="replace"))
        return response.content

    def logon(self) -> None:
        self.user_id = self._get("Logon", self.logon_params).decode("latin-1")  # verbatim: two trailing spaces
        self.calls["auth"] += 1

    def logoff(self) -> None:
        self._get("Logoff", {"UserId": self.user_id})
        self.calls["auth"] += 1

    def pages(self, table: str) -> Iterator[list[dict[str, str]]]:
        date_column, keys, columns = SYSPRO[table]
        order = [date_column, *keys]
        groups: list[list[tuple[str, str, str]]] = []
        while True:
            body = self._get("Query/Query", {"UserId": self.user_id, "BusinessObject": "COMFND",
                                             "XmlIn": _xml_in(table, columns, groups, order, self.page_size)})
            self.calls["read"] += 1
            root = etree.fromstring(body)  # the declaration says Windows-1252; lxml decodes by it
            rows = [{cell.tag: cell.text or "" for cell in row} for row in root.iter("Row")]
            self.reads[table] = self.reads.get(table, 0) + len(rows)
            if rows:
                yield rows
            if len(rows) < self.page_size:
                return
            groups = _after(date_column, keys, rows[-1])

    # --- ServiceNow -----------------------------------------------------------------------

    # --- the transfer ---------------------------------------------------------------------
    def run(self) -> None:
        self.token()
        self.logon()
        try:
            self.transfer()
        finally:
            self.logoff()  # the licence seat

    def transfer(self) -> None:
        by_code = {row["code"]: row["sys_id"] for row in self.sn_rows("cost_center", "code,name")}
        cost_center = {_text(row, "CostCentre"): by_code[_text(row, "CostCentre")]
                       for page in self.pages("GenCostCentre") for row in page if _text(row, "CostCentre") in by_code}
        gl = {row["account_number"]: row["sys_id"] for row in self.sn_rows("gl_account", "account_number,name")}
        missing = [(_text(row, "GlCode"), {"account_number": _text(row, "GlCode"), "name": _text(row, "Description"),
                                           "description": _text(row, "Description"), "active": "true"})
                   for page in self.pages("GenMaster") for row in page if _text(row, "GlCode") not in gl]
        gl.update(self.insert("gl_account", missing))

        suppliers: dict[str, str] = {}
        for page in self.pages("ApSupplier"):
            suppliers.update(self.insert("supplier", [(_text(row, "Supplier"), {
                "supplier_number": _text(row, "Supplier"), "name": _text(row, "SupplierName"),
                "short_name": _text(row, "SupShortName"), "street": _text(row, "SupAddr1"),
                "city": _text(row, "SupAddr2"), "zip": _text(row, "SupPostalCode"), "currency": _text(row, "Currency"),
                "payment_terms": _text(row, "TermsCode"), "phone": _text(row, "Telephone"),
                "email": _text(row, "Email"), "active": "false" if _text(row, "OnHold") == "Y" else "true",
            }) for row in page]))
        orders: dict[str, str] = {}
        for page in self.pages("PorMasterHdr"):  # the benchmark ledger has none; lines would follow by order
            orders.update(self.insert("purchase_order", [(_text(row, "PurchaseOrder"), {
                "erp_number": _text(row, "PurchaseOrder"), "supplier": suppliers[_text(row, "Supplier")],
                "order_date": row["OrderEntryDate"][:10], "currency": _text(row, "Currency"),
                "status": _text(row, "OrderStatus")}) for row in page]))

        lines: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
        for page in self.pages("ApInvoiceDistr"):
            for row in page:
                lines[(row["Supplier"], row["Invoice"])].append(row)
        for page in self.pages("ApInvoice"):
            keyed = [(f"{_text(row, 'Supplier')}/{_text(row, 'Invoice')}", row) for row in page]
            ids = self.insert("invoice", [(key, self._invoice(row, lines[(row["Supplier"], row["Invoice"])],
                                                              suppliers, orders)) for key, row in keyed])
            self.insert("invoice_line", [(f"{key}/{_text(line, 'DistrLine')}", {
                "line_number": _text(line, "DistrLine"), "line_description": _text(line, "Description"),
                "line_amount_invoiced": str(Decimal(line["DistrValue"].strip())),
                "gl_account": gl[_text(line, "GlCode")], "cost_center": cost_center[_text(line, "CostCentre")],
                "invoice": ids[key],
            }) for key, row in keyed for line in lines.pop((row["Supplier"], row["Invoice"]), [])])

        for page in self.pages("GenJournalDetail"):
            self.insert("gl_posting", [(f"{_text(row, 'Journal')}/{_text(row, 'EntryNumber')}", self._posting(row))
                                       for row in page])

    @staticmethod
    def _invoice(row: dict[str, str], lines: list[dict[str, str]], suppliers: dict[str, str],
                 orders: dict[str, str]) -> dict[str, str]:
        return {
            "supplier_invoice_number": _text(row, "Invoice"), "supplier": suppliers[_text(row, "Supplier")],
            "purchase_order": orders.get(_text(row, "PurchaseOrder"), ""), "invoice_date": row["InvoiceDate"][:10],
            "accounting_date": row["PostDate"][:10], "due_date": row["DueDate"][:10], "currency": _text(row, "Currency"),
            "subtotal": str(sum((Decimal(line["DistrValue"].strip()) for line in lines), Decimal("0"))),
            "amount_invoiced": str(Decimal(row["OrigInvValue"].strip())), "short_description": _text(row, "Reference"),
        }

    @staticmethod
    def _posting(row: dict[str, str]) -> dict[str, str]:
        debit = _text(row, "EntryType") == "D"
        value = str(abs(Decimal(row["EntryValue"].strip())))
        return {"u_journal": _text(row, "Journal"), "u_entry_number": _text(row, "EntryNumber"),
                "u_posting_date": row["EntryDate"][:10], "u_gl_account": _text(row, "GlCode"),
                "u_cost_center": _text(row, "CostCentre"), "u_entry_type": "D" if debit else "C",
                "u_debit": value if debit else "", "u_credit": "" if debit else value,
                "u_supplier": _text(row, "Supplier"), "u_invoice": _text(row, "Invoice"),
                "u_comment": _text(row, "Comment")}


def main(argv: list[str] | None = None) -> int:
    return run_bare(BareRun, argv)


if __name__ == "__main__":
    sys.exit(main())
