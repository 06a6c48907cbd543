"""The demo Intacct company: a sender, an API user, a chart of accounts, departments, vendors, bills.

Deterministic on purpose. GL account codes and names mirror the ServiceNow demo chart (so exact
code suggestions line up) except 61200, which ServiceNow lacks, so a few bill lines are held
for a missing GL mapping. Department ids are Intacct-style numbers whose names match the
ServiceNow cost centers (name-match suggestions), except 700, which has no counterpart.
WHENMODIFIED stamps are not in RECORDNO order and some share a second, because readByQuery
cannot sort and cursors must cope with ties.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .intacct import IntacctSimulator

SENDER_ID = "mlconnector"
SENDER_PASSWORD = "intacct-sender-pass"
COMPANY_ID = "acme-demo"
USER_ID = "xml_gateway"
USER_PASSWORD = "intacct-user-pass"
ENTITIES = ("E100", "E200")
BANK_ACCOUNT = "BA1000"  # the checking account payments are made from (FINANCIALENTITY)
SEED_TIME = "12/01/2025 09:00:00"

GL_ACCOUNTS = [
    ("20000", "Accounts payable", "balancesheet", "credit"),
    ("60100", "Raw materials", "incomestatement", "debit"),
    ("60200", "Freight in", "incomestatement", "debit"),
    ("60300", "Packaging materials", "incomestatement", "debit"),
    ("60400", "Subcontracting", "incomestatement", "debit"),
    ("60500", "Office supplies", "incomestatement", "debit"),
    ("60600", "IT equipment", "incomestatement", "debit"),
    ("60700", "Software subscriptions", "incomestatement", "debit"),
    ("60800", "Maintenance and repairs", "incomestatement", "debit"),
    ("60900", "Utilities", "incomestatement", "debit"),
    ("61000", "Professional fees", "incomestatement", "debit"),
    ("61100", "Travel and accommodation", "incomestatement", "debit"),
    ("61200", "Training", "incomestatement", "debit"),
]
DEPARTMENTS = [
    ("100", "Production"),
    ("200", "Logistics"),
    ("300", "Sales and marketing"),
    ("400", "Administration"),
    ("500", "Research and development"),
    ("600", "Information technology"),
    ("700", "Quality assurance"),
]
VENDORS = [
    ("V100", "Northwind Metals", "Net 30", "Chicago", "60601"),
    ("V101", "Contoso Logistics", "Net 45", "Dallas", "75201"),
    ("V102", "Fabrikam Packaging", "Net 30", "Atlanta", "30301"),
    ("V103", "Tailspin Software", "Net 15", "Seattle", "98101"),
    ("V104", "Litware Consulting", "Net 30", "Boston", "02108"),
    ("V105", "Adventure Works Travel", "Due on receipt", "Denver", "80202"),
    ("V106", "Wide World Utilities", "Net 30", "Phoenix", "85001"),
    ("V107", "Proseware Maintenance", "Net 60", "Detroit", "48201"),
]
BILL_COUNT = 36
EXPENSE_ACCOUNTS = [code for code, *_ in GL_ACCOUNTS if code.startswith("6")]


def seed_demo(sim: IntacctSimulator) -> None:
    sim.add_sender(SENDER_ID, SENDER_PASSWORD)
    company = sim.add_company(COMPANY_ID, senders=(SENDER_ID,), entities=ENTITIES)
    company.financial_entities.add(BANK_ACCOUNT)
    sim.add_user(COMPANY_ID, USER_ID, USER_PASSWORD)
    if company.data["GLACCOUNT"]:
        return  # already seeded
    for code, title, kind, balance in GL_ACCOUNTS:
        sim.insert(COMPANY_ID, "GLACCOUNT", {"ACCOUNTNO": code, "TITLE": title, "ACCOUNTTYPE": kind,
                                             "NORMALBALANCE": balance, "STATUS": "active"}, when=SEED_TIME)
    for code, title in DEPARTMENTS:
        sim.insert(COMPANY_ID, "DEPARTMENT", {"DEPARTMENTID": code, "TITLE": title, "STATUS": "active"},
                   when=SEED_TIME)
    for code in ENTITIES:
        sim.insert(COMPANY_ID, "LOCATION", {"LOCATIONID": code, "NAME": f"Entity {code}", "STATUS": "active"},
                   when=SEED_TIME)
    for index, (vendor_id, name, terms, city, zipcode) in enumerate(VENDORS):
        slug = name.lower().replace(" ", "")
        sim.insert(COMPANY_ID, "VENDOR", {
            "VENDORID": vendor_id, "NAME": name, "STATUS": "active", "TERMNAME": terms, "CURRENCY": "USD",
            "DISPLAYCONTACT": {
                "CONTACTNAME": f"{name} (AP)", "PRINTAS": name, "PHONE1": f"+1 555 01{index:02d}",
                "EMAIL1": f"ap@{slug}.example", "URL1": f"https://{slug}.example",
                "MAILADDRESS": {"ADDRESS1": f"{100 + index} Main Street", "CITY": city, "ZIP": zipcode,
                                "COUNTRY": "United States"},
            },
        }, when=f"12/01/2025 09:{index:02d}:00")
    _seed_bills(sim)


def _seed_bills(sim: IntacctSimulator) -> None:
    rng = random.Random(20251201)  # noqa: S311 - demo data, not crypto
    start = datetime(2025, 12, 2, 8, 0, 0)
    # Modification times are shuffled against RECORDNO, and pairs share a second.
    offsets = [(i // 2) * 97 for i in range(BILL_COUNT)]
    rng.shuffle(offsets)
    for number in range(BILL_COUNT):
        vendor_id = VENDORS[number % len(VENDORS)][0]
        bill_date = datetime(2025, 11, 3) + timedelta(days=number % 25)
        lines = []
        for line_no in range(1, 2 + number % 3):
            account = EXPENSE_ACCOUNTS[(number * 3 + line_no) % len(EXPENSE_ACCOUNTS)]
            department = "700" if number % 17 == 16 else DEPARTMENTS[(number + line_no) % 6][0]
            amount = (Decimal(rng.randint(5_000, 250_000)) / 100).quantize(Decimal("0.01"))
            lines.append({"RECORDNO": str(line_no), "LINE_NO": str(line_no), "ACCOUNTNO": account,
                          "ACCOUNTTITLE": dict((c, t) for c, t, *_ in GL_ACCOUNTS)[account],
                          "DEPARTMENTID": department, "LOCATIONID": ENTITIES[number % 2],
                          "AMOUNT": format(amount, "f"), "TRX_AMOUNT": format(amount, "f"),
                          "ENTRYDESCRIPTION": f"Line {line_no} of bill {number + 1}"})
        total = sum((Decimal(line["TRX_AMOUNT"]) for line in lines), Decimal("0"))
        paid = total if number % 9 == 8 else Decimal("0.00")
        when = (start + timedelta(seconds=offsets[number])).strftime("%m/%d/%Y %H:%M:%S")
        sim.insert("acme-demo", "APBILL", {
            "RECORDID": f"BILL-{number + 1:04d}", "VENDORID": vendor_id,
            "VENDORNAME": next(v[1] for v in VENDORS if v[0] == vendor_id),
            "DOCNUMBER": f"INV-{vendor_id}-{1000 + number}", "DESCRIPTION": f"Demo bill {number + 1}",
            "WHENCREATED": bill_date.strftime("%m/%d/%Y"), "WHENPOSTED": bill_date.strftime("%m/%d/%Y"),
            "WHENDUE": (bill_date + timedelta(days=30)).strftime("%m/%d/%Y"), "CURRENCY": "USD",
            "BASECURR": "USD", "TOTALENTERED": format(total, "f"), "TRX_TOTALENTERED": format(total, "f"),
            "TOTALPAID": format(paid, "f"), "TOTALDUE": format(total - paid, "f"),
            "STATE": "Paid" if paid else "Posted", "APBILLITEMS": lines,
        }, when=when)
