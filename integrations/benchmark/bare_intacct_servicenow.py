"""The bare client for Sage Intacct → ServiceNow: the fewest HTTP calls, nothing else.

What a hand-written script would do: plain ``requests`` and ``lxml``, no database, no
bookkeeping, no retries, no audit. It signs in to Intacct once (``getAPISession``), reads GL
accounts, departments and vendors with ``readByQuery``/``readMore`` at the largest page (1000),
then the bills: a page of 1000 keys by ``readByQuery`` (readByQuery returns no bill lines), and
the whole bills of that page by one request of ten ``read`` functions of 100 keys each. It maps
GL accounts by code and departments by name, and writes the same payloads as the portal through
the ServiceNow Batch API (suppliers; then per page the invoices, then their lines), at the
largest batch the target allows. It polls approved invoices once, as the portal's
approved-invoices stream does (none are approved here). Target ids it needs later stay in
dictionaries.

Unlike the X3 pair's bare client, this one does not make every call the portal makes: the
portal also looks up, per 100 new bills, any ServiceNow invoice started there with the bill's
number (see ``Bills._adopt_invoices_started_in_servicenow``), bookkeeping a script skips.

Run in its own process by the benchmark: ``python -m integrations.benchmark.bare_intacct_servicenow
CONFIG.json``; prints one JSON line of figures.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import requests
from lxml import etree

from integrations.benchmark.bare_servicenow import ServiceNowBatchWriter, run_bare

TABLES = {"supplier": "proc_vendor", "invoice": "sn_apo_invoice", "invoice_line": "sn_apo_invoice_line",
          "gl_account": "itfm_gl_accounts", "cost_center": "cmn_cost_center"}
LIST_TAGS = frozenset({"APBILLITEMS"})
XML_HEADERS = {"Content-Type": "application/xml"}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _amount(value: Any) -> str:
    return str(Decimal(str(value))) if value not in (None, "") else ""


def _iso(value: str) -> str:
    """MM/DD/YYYY → YYYY-MM-DD."""
    value = value.strip()[:10]
    return f"{value[6:10]}-{value[0:2]}-{value[3:5]}" if value else ""


def _python(node: Any) -> Any:
    children = list(node)
    if not children:
        return node.text or ""
    if node.tag in LIST_TAGS:
        return [_python(child) for child in children]
    out: dict[str, Any] = {}
    for child in children:
        value = _python(child)
        if child.tag in out:
            out[child.tag] = [*out[child.tag], value] if isinstance(out[child.tag], list) else [out[child.tag], value]
        else:
            out[child.tag] = value
    return out


class BareRun(ServiceNowBatchWriter):
    tables = TABLES

    def __init__(self, config: dict[str, Any]) -> None:
        self.gateway = config["intacct_url"].rstrip("/") + "/ia/xml/xmlgw.phtml"
        self.sn_url = config["sn_url"].rstrip("/")
        self.page_size = int(config["page_size"])
        self.batch_size = int(config["batch_size"])
        self.creds = config["intacct"]
        self.session_id = ""
        self.intacct = requests.Session()
        self.sn = requests.Session()
        self.sn.headers["Accept"] = "application/json"
        self.sn_client = tuple(config["sn_client"])
        self.reads: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self.calls = {"read": 0, "write": 0, "auth": 0}

    # --- Intacct --------------------------------------------------------------------------
    def _post(self, authentication: str, functions: list[str], kind: str) -> list[Any]:
        c = self.creds
        body = ('<?xml version="1.0" encoding="UTF-8"?><request><control>'
                f"<senderid>{escape(c['sender_id'])}</senderid><password>{escape(c['sender_password'])}</password>"
                f"<controlid>bare-{uuid.uuid4().hex[:12]}</controlid><uniqueid>false</uniqueid>"
                "<dtdversion>3.0</dtdversion><includewhitespace>false</includewhitespace></control>"
                f"<operation><authentication>{authentication}</authentication><content>"
                + "".join(f'<function controlid="f{i}">{f}</function>' for i, f in enumerate(functions))
                + "</content></operation></request>")
        response = self.intacct.post(self.gateway, data=body.encode("utf-8"), headers=XML_HEADERS, timeout=300)
        self.calls[kind] += 1
        response.raise_for_status()
        root = etree.fromstring(response.content)
        results = root.findall("operation/result")
        if root.findtext("control/status") != "success" or not results:
            raise RuntimeError(f"Intacct refused the request: {response.content[:500]!r}")
        for result in results:
            if result.findtext("status") != "success":
                raise RuntimeError(f"Intacct function failed: {etree.tostring(result)[:500]!r}")
        return [result.find("data") for result in results]

    def sign_in(self) -> None:
        c = self.creds
        login = (f"<login><userid>{escape(c['user_id'])}</userid><companyid>{escape(c['company_id'])}</companyid>"
                 f"<password>{escape(c['user_password'])}</password></login>")
        data = self._post(login, ["<getAPISession/>"], "auth")[0]
        self.session_id = data.findtext("api/sessionid")

    def query(self, obj: str, fields: str) -> Iterator[list[dict[str, Any]]]:
        """readByQuery at the largest page, then readMore until nothing remains."""
        session = f"<sessionid>{escape(self.session_id)}</sessionid>"
        function = (f"<readByQuery><object>{obj}</object><fields>{fields}</fields><query></query>"
                    f"<pagesize>{self.page_size}</pagesize></readByQuery>")
        while True:
            data = self._post(session, [function], "read")[0]
            rows = [_python(node) for node in data if isinstance(node.tag, str)]
            self.reads[obj] = self.reads.get(obj, 0) + len(rows)
            if rows:
                yield rows
            if int(data.get("numremaining") or 0) <= 0 or not rows:
                return
            function = f"<readMore><resultId>{escape(data.get('resultId'))}</resultId></readMore>"

    def read(self, obj: str, keys: list[str]) -> list[dict[str, Any]]:
        """Whole records by key: one request of ``read`` functions of 100 keys each."""
        session = f"<sessionid>{escape(self.session_id)}</sessionid>"
        functions = [f"<read><object>{obj}</object><keys>{','.join(keys[i:i + 100])}</keys><fields>*</fields></read>"
                     for i in range(0, len(keys), 100)]
        rows = [_python(node) for data in self._post(session, functions, "read") for node in data
                if isinstance(node.tag, str)]
        self.reads[f"{obj}#read"] = self.reads.get(f"{obj}#read", 0) + len(rows)
        return rows

    # --- ServiceNow -----------------------------------------------------------------------

    # --- the transfer ---------------------------------------------------------------------
    def run(self) -> None:
        self.sign_in()
        fields = "RECORDNO,{code},STATUS,TITLE,WHENMODIFIED"
        accounts = [row for page in self.query("GLACCOUNT", fields.format(code="ACCOUNTNO")) for row in page]
        departments = [row for page in self.query("DEPARTMENT", fields.format(code="DEPARTMENTID")) for row in page]
        self.token()
        sn_gl = {row["account_number"]: row["sys_id"] for row in self.sn_rows("gl_account", "account_number,name")}
        sn_cc = {row["name"]: row["sys_id"] for row in self.sn_rows("cost_center", "code,name")}
        gl = {row["ACCOUNTNO"]: sn_gl[row["ACCOUNTNO"]] for row in accounts if row["ACCOUNTNO"] in sn_gl}
        cc = {row["DEPARTMENTID"]: sn_cc[row["TITLE"]] for row in departments if row["TITLE"] in sn_cc}

        suppliers: dict[str, str] = {}
        for page in self.query("VENDOR", "*"):
            suppliers.update(self.insert("supplier", [(row["VENDORID"], self._supplier(row)) for row in page]))

        for page in self.query("APBILL", "RECORDNO,WHENMODIFIED"):
            bills = self.read("APBILL", [row["RECORDNO"] for row in page])
            ids = self.insert("invoice", [(bill["RECORDNO"], {
                "supplier_invoice_number": _text(bill.get("DOCNUMBER")) or _text(bill.get("RECORDID")),
                "supplier": suppliers[bill["VENDORID"]],
                "invoice_date": _iso(_text(bill.get("WHENCREATED"))),
                "accounting_date": _iso(_text(bill.get("WHENPOSTED"))),
                "due_date": _iso(_text(bill.get("WHENDUE"))), "currency": _text(bill.get("CURRENCY")),
                "subtotal": _amount(bill.get("TRX_TOTALENTERED")), "amount_invoiced": _amount(bill.get("TRX_TOTALENTERED")),
                "short_description": _text(bill.get("DESCRIPTION")), "u_source_system": "sage_intacct",
            }) for bill in bills])
            self.insert("invoice_line", [(f"{bill['RECORDNO']}/{line['LINE_NO']}", {
                "line_number": _text(line["LINE_NO"]), "line_description": _text(line.get("ENTRYDESCRIPTION")),
                "line_amount_invoiced": _amount(line.get("TRX_AMOUNT")),
                "gl_account": gl[line["ACCOUNTNO"]], "cost_center": cc[line["DEPARTMENTID"]],
                "invoice": ids[bill["RECORDNO"]],
            }) for bill in bills for line in bill.get("APBILLITEMS") or []])

        # the approved-invoices stream's poll (ServiceNow → Intacct); nothing is approved yet
        self.sn_rows("invoice", "number,approval", "approval=approved")

    @staticmethod
    def _supplier(row: dict[str, Any]) -> dict[str, str]:
        contact = row.get("DISPLAYCONTACT") or {}
        address = contact.get("MAILADDRESS") or {}
        return {"supplier_number": row["VENDORID"], "name": _text(row.get("NAME")),
                "short_name": _text(contact.get("PRINTAS")), "street": _text(address.get("ADDRESS1")),
                "city": _text(address.get("CITY")), "zip": _text(address.get("ZIP")),
                "country": _text(address.get("COUNTRY")), "currency": _text(row.get("CURRENCY")),
                "payment_terms": _text(row.get("TERMNAME")), "phone": _text(contact.get("PHONE1")),
                "website": _text(contact.get("URL1")), "contact": _text(contact.get("CONTACTNAME")),
                "active": "true" if row.get("STATUS") == "active" else "false"}


def main(argv: list[str] | None = None) -> int:
    return run_bare(BareRun, argv)


if __name__ == "__main__":
    sys.exit(main())
