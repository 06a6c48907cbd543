"""The bare client for Sage 300 → ServiceNow: the fewest HTTP calls, nothing else.

What a hand-written script would do: plain ``requests``, no database, no bookkeeping, no
retries, no audit. Sage 300 takes HTTP Basic on every request (user and password upper-case,
as the portal sends them) and ``Content-Type: application/json`` even on a GET, so there is no
sign-in call; ServiceNow takes one OAuth token. The script reads, as the portal does, each
collection with ``$top``/``$skip`` at the server's page size, ``$count=true`` (which says
which page is the last) and the same ``$filter``/``$orderby`` on every page, building each
URL itself (the server's ``@odata.nextLink`` drops the filter): the ServiceNow cost centers,
the department segment names, the chart of accounts (once), the vendors, and the AP invoice
batches in (``DateLastEdited``, ``BatchNumber``) order. A GL account's cost center is the one
whose code is its department segment, else the one named like that segment; the accounts are
pushed to the GL account table, the vendors to suppliers, and per page of batches the
invoices (one per invoice of a batch, keyed ``batch-entry``), then their lines, through the
shared Batch API writer at the largest batch the target allows. Target ids it needs later
stay in dictionaries.

Unlike the X3 pair's bare client, this one does not make every call the portal makes: the
portal reads the chart twice (once as reference data for the cost center mappings, once as
the GL accounts it pushes: two streams, each with its own cursor), and before creating GL
accounts and suppliers it looks in ServiceNow for rows entered by hand with the same code or
name, to adopt them instead of duplicating them (one query per 50 new rows); a script skips
both.

Run in its own process by the benchmark: ``python -m integrations.benchmark.bare_sage300_servicenow
CONFIG.json``; prints one JSON line of figures.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import requests

from integrations.benchmark.bare_servicenow import ServiceNowBatchWriter, run_bare

TABLES = {"supplier": "proc_vendor", "invoice": "sn_apo_invoice", "invoice_line": "sn_apo_invoice_line",
          "gl_account": "itfm_gl_accounts", "cost_center": "cmn_cost_center"}
MODULE_OF = {"GLAccounts": "GL", "GLSegmentCodes": "GL", "APVendors": "AP", "APInvoiceBatches": "AP"}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _amount(value: Any) -> str:
    return str(Decimal(str(value))) if value not in (None, "") else ""


def _day(value: Any) -> str:
    """``2026-01-05T00:00:00Z`` → ``2026-01-05``."""
    return _text(value)[:10]


def _plain(account: Any) -> str:
    """``6000-CC100`` and ``6000CC100`` are one account."""
    return re.sub(r"[^0-9A-Za-z]", "", _text(account))


def _department(row: dict[str, Any]) -> str:
    segment = _text(row.get("AccountSegmentCode2")).strip()
    if segment:
        return segment
    formatted = _text(row.get("AccountNumber"))
    for separator in ("-", "/", ".", "_"):
        if separator in formatted:
            return formatted.split(separator, 1)[1]
    return ""


class BareRun(ServiceNowBatchWriter):
    tables = TABLES

    def __init__(self, config: dict[str, Any]) -> None:
        self.api = f"{config['s300_url'].rstrip('/')}/Sage300WebApi/v1.0/-/{config['company'].upper()}"
        self.sn_url = config["sn_url"].rstrip("/")
        self.page_size = int(config["page_size"])
        self.batch_size = int(config["batch_size"])
        user, password = config["s300_basic"]
        self.s300 = requests.Session()
        self.s300.auth = (user.upper(), password.upper())
        # mandatory on every request, GET included: without it Sage 300 answers 500
        self.s300.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        self.sn = requests.Session()
        self.sn.headers["Accept"] = "application/json"
        self.sn_client = tuple(config["sn_client"])
        self.reads: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self.calls = {"read": 0, "write": 0, "auth": 0}

    # --- Sage 300 -------------------------------------------------------------------------
    def pages(self, resource: str, *, filter: str = "", orderby: str = "") -> Iterator[list[dict[str, Any]]]:
        """Every page of a collection: ``$top``/``$skip`` built here, the filter kept on each page."""
        url = f"{self.api}/{MODULE_OF[resource]}/{resource}"
        skip = 0
        while True:
            params: dict[str, Any] = {"$top": self.page_size, "$skip": skip, "$count": "true"}
            if filter:
                params["$filter"] = filter
            if orderby:
                params["$orderby"] = orderby
            response = self.s300.get(url, params=params, timeout=300)
            self.calls["read"] += 1
            response.raise_for_status()
            body = json.loads(response.content, parse_float=Decimal)
            rows = body["value"]
            self.reads[resource] = self.reads.get(resource, 0) + len(rows)
            if rows:
                yield rows
            skip += len(rows)
            if not rows or skip >= int(body["@odata.count"]):
                return

    # --- ServiceNow -----------------------------------------------------------------------

    # --- the transfer ---------------------------------------------------------------------
    def run(self) -> None:
        self.token()
        centers = self.sn_rows("cost_center", "code,name")
        by_code = {row["code"]: row["sys_id"] for row in centers}
        by_name = {row["name"]: row["sys_id"] for row in centers}
        segment_names = {_text(row["SegmentCode"]): _text(row["Description"]) for page in
                         self.pages("GLSegmentCodes", filter="SegmentNumber eq '2'") for row in page}

        cost_center: dict[str, str] = {}
        accounts: list[tuple[str, dict[str, str]]] = []
        for page in self.pages("GLAccounts", orderby="DateLastMaintained,UnformattedAccount"):
            for row in page:
                code = _plain(row.get("UnformattedAccount") or row.get("AccountNumber"))
                department = _department(row)
                found = by_code.get(department) or by_name.get(segment_names.get(department, ""))
                if found:
                    cost_center[code] = found
                accounts.append((code, {
                    "account_number": _text(row.get("AccountNumber")) or code, "name": _text(row.get("Description")),
                    "description": _text(row.get("Description")),
                    "active": "true" if _text(row.get("Status")).lower() == "active" else "false",
                }))
        gl = self.insert("gl_account", accounts)

        suppliers: dict[str, str] = {}
        for page in self.pages("APVendors", orderby="DateLastMaintained,VendorNumber"):
            suppliers.update(self.insert("supplier", [(_text(row["VendorNumber"]), {
                "supplier_number": _text(row["VendorNumber"]), "name": _text(row.get("VendorName")),
                "short_name": _text(row.get("ShortName")).strip(), "street": _text(row.get("AddressLine1")),
                "city": _text(row.get("City")), "zip": _text(row.get("ZipPostalCode")),
                "country": _text(row.get("Country")), "currency": _text(row.get("CurrencyCode")),
                "payment_terms": _text(row.get("TermsCode")), "phone": _text(row.get("PhoneNumber")),
                "active": "true" if _text(row.get("Status")).lower() == "active" else "false",
            }) for row in page if row.get("VendorNumber")]))

        for page in self.pages("APInvoiceBatches", orderby="DateLastEdited,BatchNumber"):
            invoices = [(f"{int(batch['BatchNumber'])}-{int(invoice['EntryNumber'])}", invoice)
                        for batch in page for invoice in batch.get("Invoices") or []]
            ids = self.insert("invoice", [(key, self._invoice(invoice, suppliers)) for key, invoice in invoices])
            self.insert("invoice_line", [(f"{key}/{number}", {
                "line_number": number, "line_description": _text(line.get("DistributionDescription")),
                "line_amount_invoiced": _amount(line.get("DistributedAmount")),
                "gl_account": gl[_plain(line["GLAccount"])], "cost_center": cost_center[_plain(line["GLAccount"])],
                "invoice": ids[key],
            }) for key, invoice in invoices
                for i, line in enumerate(invoice["InvoiceDetails"])
                for number in (_text(line.get("LineNumber")) or str(i + 1),)])

    @staticmethod
    def _invoice(invoice: dict[str, Any], suppliers: dict[str, str]) -> dict[str, str]:
        total, net = _amount(invoice.get("DocumentTotalIncludingTax")), _amount(invoice.get("DocumentTotalBeforeTaxes"))
        return {
            "supplier_invoice_number": _text(invoice.get("DocumentNumber")),
            "supplier": suppliers[_text(invoice["VendorNumber"])],
            "invoice_date": _day(invoice.get("DocumentDate")), "accounting_date": _day(invoice.get("PostingDate")),
            "due_date": _day(invoice.get("DueDate")), "currency": _text(invoice.get("CurrencyCode")),
            "subtotal": net, "tax_amount": str(Decimal(total) - Decimal(net)) if total and net else "",
            "amount_invoiced": total, "short_description": _text(invoice.get("InvoiceDescription")),
        }


def main(argv: list[str] | None = None) -> int:
    return run_bare(BareRun, argv)


if __name__ == "__main__":
    sys.exit(main())
