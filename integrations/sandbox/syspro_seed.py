"""The SYSPRO simulator's tables and their data: the demo company and bulk ledgers.

Table names ``ApSupplier``, ``ApInvoice`` (``Supplier``, ``Invoice``, ``OrigInvValue``,
``MthInvBal1``), ``GenMaster`` (``AccountType`` A/L/C/R/E), ``PorMasterHdr`` and
``PorMasterDetail`` come from public client code [C: API_FACTS 5.3]. Everything else here is
[U], chosen to look like SYSPRO and overridable in the client's settings:

- the maintenance date columns (``DateLastModified``);
- ``ApInvoiceDistr``: an invoice's distribution lines (GL code and cost centre per line); it
  repeats the invoice's ``PostDate`` so lines can be read by date like their invoices;
- ``GenCostCentre``: cost centres (SYSPRO ties them to the GL code structure; a table of
  their own keeps the simulator simple);
- ``GenJournalDetail``: the GL postings of each invoice (one journal per invoice: a debit per
  distribution line, a credit to AP control ``20000``; every journal balances);
- the PO columns with SYSPRO's ``M`` prefix (``MStockCode``, ``MOrderQty``, ``MPrice``).

The demo company mirrors the ServiceNow demo: GL codes 60100-61100 match its chart, 61200 is
missing there (its lines are held); cost centres CC100-CC500 match by code, ``600``
("Information technology") only by name, CC700 ("Quality assurance") not at all. Supplier
names carry what Windows-1252 must keep intact (``Müller Gießerei``, ``O’Brien``, ``Smith & Sons
– Hydraulics``) and one (``Łódź``) that the code page lacks, sent as a character reference.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from .syspro_query import AMOUNT, DATE, Table

OPERATOR = ("ADMIN", "Adm!n & Co+1 #2")  # a password that needs encoding: & + # and spaces
COMPANY = ("EDU1", "")  # company id, company password (blank is common)
SEED_DAY = date(2026, 1, 5)

SCHEMAS: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]] = {
    # table -> (columns, key, types)
    "ApSupplier": (
        ("Supplier", "SupplierName", "SupShortName", "Currency", "TermsCode", "SupAddr1", "SupAddr2",
         "SupPostalCode", "Telephone", "Email", "OnHold", "DateLastModified"),
        ("Supplier",), {"DateLastModified": DATE}),
    "ApInvoice": (
        ("Supplier", "Invoice", "InvoiceDate", "PostDate", "DueDate", "Currency", "OrigInvValue", "MthInvBal1",
         "PurchaseOrder", "Reference"),
        ("Supplier", "Invoice"),
        {"InvoiceDate": DATE, "PostDate": DATE, "DueDate": DATE, "OrigInvValue": AMOUNT, "MthInvBal1": AMOUNT}),
    "ApInvoiceDistr": (
        ("Supplier", "Invoice", "DistrLine", "GlCode", "CostCentre", "DistrValue", "Description", "PostDate"),
        ("Supplier", "Invoice", "DistrLine"), {"DistrValue": AMOUNT, "PostDate": DATE}),
    "GenMaster": (
        ("GlCode", "Description", "AccountType", "GlGroup", "DateLastModified"),
        ("GlCode",), {"DateLastModified": DATE}),
    "GenCostCentre": (("CostCentre", "Description", "DateLastModified"), ("CostCentre",), {"DateLastModified": DATE}),
    "PorMasterHdr": (
        ("PurchaseOrder", "Supplier", "OrderEntryDate", "OrderStatus", "Currency", "DateLastModified"),
        ("PurchaseOrder",), {"OrderEntryDate": DATE, "DateLastModified": DATE}),
    "PorMasterDetail": (
        ("PurchaseOrder", "Line", "MStockCode", "MStockDes", "MOrderQty", "MPrice", "MGlCode"),
        ("PurchaseOrder", "Line"), {"MOrderQty": AMOUNT, "MPrice": AMOUNT}),
    "GenJournalDetail": (
        ("Journal", "EntryNumber", "GlCode", "CostCentre", "EntryType", "EntryValue", "EntryDate", "Supplier",
         "Invoice", "Comment"),
        ("Journal", "EntryNumber"), {"EntryValue": AMOUNT, "EntryDate": DATE}),
}
AP_CONTROL = "20000"
GL_ACCOUNTS = [
    ("60100", "Raw materials"), ("60200", "Freight in"), ("60300", "Packaging materials"),
    ("60400", "Subcontracting"), ("60500", "Office supplies"), ("60600", "IT equipment"),
    ("60700", "Software subscriptions"), ("60800", "Maintenance and repairs"), ("60900", "Utilities"),
    ("61000", "Professional fees"), ("61100", "Travel and accommodation"), ("61200", "Miscellaneous purchases"),
]
COST_CENTRES = [
    ("CC100", "Production"), ("CC200", "Logistics"), ("CC300", "Sales and marketing"), ("CC400", "Administration"),
    ("CC500", "Research and development"), ("600", "Information technology"), ("CC700", "Quality assurance"),
]
SUPPLIERS = [
    ("MUL001", "Müller Gießerei GmbH", "EUR"),
    ("OBR001", "O’Brien Fasteners Ltd", "GBP"),
    ("SMI001", "Smith & Sons – Hydraulics", "USD"),
    ("LOD001", "Łódź Precision Tools", "EUR"),
    ("NOR001", "Northwind Metals", "USD"),
    ("CON001", "Contoso Freight", "USD"),
]


def empty_tables() -> dict[str, Table]:
    return {name: Table(name, columns, key, types) for name, (columns, key, types) in SCHEMAS.items()}


def _day(offset: int) -> str:
    return (SEED_DAY + timedelta(days=offset)).isoformat()


def _supplier(code: str, name: str, currency: str, day: str) -> dict[str, Any]:
    return {"Supplier": code, "SupplierName": name, "SupShortName": name[:20].upper(), "Currency": currency,
            "TermsCode": "30", "SupAddr1": "1 Foundry Lane", "SupAddr2": "Springfield", "SupPostalCode": "01101",
            "Telephone": "555-0100", "Email": f"ap@{code.lower()}.example", "OnHold": "N", "DateLastModified": day}


def add_invoice(tables: dict[str, Table], supplier: str, currency: str, invoice: str, day: str,
                lines: list[tuple[str, str, Decimal, str]], journal: int, paid: bool = False, po: str = "") -> None:
    """An invoice with its distribution lines and its balanced journal (debits, then the AP credit)."""
    total = sum((amount for _, _, amount, _ in lines), Decimal("0.00"))
    due = (date.fromisoformat(day) + timedelta(days=30)).isoformat()
    tables["ApInvoice"].insert({
        "Supplier": supplier, "Invoice": invoice, "InvoiceDate": day, "PostDate": day, "DueDate": due,
        "Currency": currency, "OrigInvValue": f"{total:.2f}", "MthInvBal1": "0.00" if paid else f"{total:.2f}",
        "PurchaseOrder": po, "Reference": f"Ref {invoice}"})
    number = 0
    for number, (gl, centre, amount, text) in enumerate(lines, start=1):
        tables["ApInvoiceDistr"].insert({
            "Supplier": supplier, "Invoice": invoice, "DistrLine": str(number), "GlCode": gl, "CostCentre": centre,
            "DistrValue": f"{amount:.2f}", "Description": text, "PostDate": day})
        tables["GenJournalDetail"].insert({
            "Journal": str(journal), "EntryNumber": str(number), "GlCode": gl, "CostCentre": centre,
            "EntryType": "D", "EntryValue": f"{amount:.2f}", "EntryDate": day, "Supplier": supplier,
            "Invoice": invoice, "Comment": text})
    tables["GenJournalDetail"].insert({
        "Journal": str(journal), "EntryNumber": str(number + 1), "GlCode": AP_CONTROL, "CostCentre": "",
        "EntryType": "C", "EntryValue": f"{total:.2f}", "EntryDate": day, "Supplier": supplier,
        "Invoice": invoice, "Comment": "AP control"})


def _reference(tables: dict[str, Table], centres: list[tuple[str, str]]) -> None:
    tables["GenMaster"].insert({"GlCode": AP_CONTROL, "Description": "Accounts payable", "AccountType": "L",
                                "GlGroup": "LIAB", "DateLastModified": _day(0)})
    for code, label in GL_ACCOUNTS:
        tables["GenMaster"].insert({"GlCode": code, "Description": label, "AccountType": "E", "GlGroup": "EXP",
                                    "DateLastModified": _day(0)})
    for code, label in centres:
        tables["GenCostCentre"].insert({"CostCentre": code, "Description": label, "DateLastModified": _day(0)})


def demo_tables() -> dict[str, Table]:
    tables = empty_tables()
    _reference(tables, COST_CENTRES)
    for n, (code, name, currency) in enumerate(SUPPLIERS):
        tables["ApSupplier"].insert(_supplier(code, name, currency, _day(0 if n < 4 else n)))
    tables["PorMasterHdr"].insert({"PurchaseOrder": "000101", "Supplier": "MUL001", "OrderEntryDate": _day(-10),
                                   "OrderStatus": "4", "Currency": "EUR", "DateLastModified": _day(-10)})
    tables["PorMasterHdr"].insert({"PurchaseOrder": "000102", "Supplier": "SMI001", "OrderEntryDate": _day(-8),
                                   "OrderStatus": "1", "Currency": "USD", "DateLastModified": _day(-8)})
    for po, line, stock, text, qty, price, gl in (
            ("000101", "1", "CAST-100", "Grey iron castings", "40", "12.50", "60100"),
            ("000101", "2", "FRT", "Freight", "1", "85.00", "60200"),
            ("000102", "1", "HYD-7", "Hydraulic seals", "100", "1.95", "60800"),
            ("000102", "2", "HYD-9", "Hydraulic hoses – 2 m", "12", "24.00", "60800")):
        tables["PorMasterDetail"].insert({"PurchaseOrder": po, "Line": line, "MStockCode": stock, "MStockDes": text,
                                          "MOrderQty": qty, "MPrice": price, "MGlCode": gl})
    codes = [code for code, _ in GL_ACCOUNTS[:11]]
    centres = [code for code, _ in COST_CENTRES[:6]]
    journal = 5000
    for n in range(10):
        code, _, currency = SUPPLIERS[n % len(SUPPLIERS)]
        day = _day((n // 3) * 2)  # three invoices share each posting day
        lines = [(codes[(n + j) % len(codes)], centres[(n + j) % len(centres)],
                  Decimal(f"{100 + 17 * n + 5 * j}.{(n * 7 + j) % 100:02d}"), f"Line {j + 1}") for j in range(1 + n % 3)]
        if n == 8:
            lines.append(("61200", "CC100", Decimal("19.99"), "Sundries"))  # GL code ServiceNow lacks
        if n == 9:
            lines.append(("60500", "CC700", Decimal("75.00"), "Inspection"))  # cost centre ServiceNow lacks
        po = "000101" if n == 0 else "000102" if n == 2 else ""
        add_invoice(tables, code, currency, f"INV-{1001 + n}", day, lines, journal + n, paid=n % 4 == 3, po=po)
    return tables


def bulk_tables(invoices: int, lines_per_invoice: int, suppliers: int = 50, per_day: int = 100,
                postings: bool = True) -> dict[str, Table]:
    """A ledger of ``invoices`` invoices of ``lines_per_invoice`` lines, every code mappable by code.

    Built as tuples in column order (a hundred thousand invoices take a few seconds and a few
    hundred MB); ``per_day`` invoices share each posting date.
    """
    tables = empty_tables()
    _reference(tables, COST_CENTRES[:5])
    for n in range(suppliers):
        tables["ApSupplier"].insert(_supplier(f"B{n:05d}", f"Bulk Supplier {n:05d}", "USD", _day(n // 10)))
    codes = [code for code, _ in GL_ACCOUNTS[:11]]
    centres = [code for code, _ in COST_CENTRES[:5]]
    days = [_day(d) for d in range(invoices // max(per_day, 1) + 1)]
    invoice_rows, line_rows, journal_rows = [], [], []
    for i in range(invoices):
        supplier, number, day = f"B{i % suppliers:05d}", f"INV{i:07d}", days[i // max(per_day, 1)]
        total = Decimal("0.00")
        for j in range(lines_per_invoice):
            amount = Decimal(f"{10 + (i + j) % 90}.25")
            total += amount
            gl, centre = codes[(i + j) % len(codes)], centres[(i + j) % len(centres)]
            line_rows.append((supplier, number, str(j + 1), gl, centre, f"{amount}", f"Line {j + 1}", day))
            if postings:
                journal_rows.append((str(100000 + i), str(j + 1), gl, centre, "D", f"{amount}", day, supplier,
                                     number, f"Line {j + 1}"))
        if postings:
            journal_rows.append((str(100000 + i), str(lines_per_invoice + 1), AP_CONTROL, "", "C", f"{total}", day,
                                 supplier, number, "AP control"))
        due = (date.fromisoformat(day) + timedelta(days=30)).isoformat()
        invoice_rows.append((supplier, number, day, day, due, "USD", f"{total}", f"{total}", "", f"Ref {number}"))
    tables["ApInvoice"].rows = invoice_rows
    tables["ApInvoiceDistr"].rows = line_rows
    tables["GenJournalDetail"].rows = journal_rows
    return tables
