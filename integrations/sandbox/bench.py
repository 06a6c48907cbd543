"""Simulators seeded for the benchmark: volume, documented limits, and every code mappable.

``python -m integrations.sandbox.server sage_x3 --benchmark --invoices 10000 --lines-per-invoice 5``
serves what :func:`build_benchmark_simulator` builds: the X3 ledger holds only the bulk data
(suppliers, one purchase order per invoice, invoices with their lines, the demo GL accounts and
cost centers) and answers at most ``page_max`` records per page; the ServiceNow instance is the
demo instance plus the one GL account the demo leaves out on purpose (61200), so every code
the ledger uses has a match and no invoice is held. ``sage_intacct`` serves the demo company's
sender, user, GL accounts and entities, departments 100-600 (700, which ServiceNow lacks, is
left out), ``suppliers`` vendors and N AP bills of K lines (:func:`seed_intacct_bulk`);
readByQuery answers at most 1000 records per page there (the documented maximum). The request log every simulator keeps
for test assertions is bounded here, so a long run does not grow the simulator's memory.
"""

from __future__ import annotations

import importlib
import random
from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal

from .base import Faults, Simulator
from .sage_x3_seed import GL_ACCOUNTS, UNMAPPED_ACCOUNT

# The largest page the X3 simulator serves in the benchmark ([U]: X3 documents no maximum for
# ``count=``; 1000 keeps a page of invoices with lines well under a few MB) and the largest
# Batch API call the ServiceNow simulator services (ServiceNow documents no item limit, only
# 5 MB per item and the transaction timeout).
X3_PAGE_MAX = 1000
SN_BATCH_MAX = 1000
REQUEST_LOG = 100
X3_BENCH_USER = ("admin", "x3-demo-pass")


def build_benchmark_simulator(
    name: str,
    *,
    invoices: int = 0,
    lines_per_invoice: int = 3,
    suppliers: int = 50,
    page_max: int = X3_PAGE_MAX,
    batch_max_items: int = SN_BATCH_MAX,
    faults: Faults | None = None,
) -> Simulator:
    """A simulator seeded for a benchmark run (see the module docstring)."""
    if name == "sage_x3":
        module = importlib.import_module(".sage_x3", __package__)
        sim = module.SageX3Simulator(faults=faults, page_max=page_max)
        sim.add_folder("SEED")
        sim.add_user(*X3_BENCH_USER)
        sim.add_oauth_client("ml-connector", "x3-demo-secret")
        sim.seed_bulk(invoices, lines_per_invoice, suppliers=suppliers, folder="SEED")
    elif name == "sage_intacct":
        module = importlib.import_module(".intacct", __package__)
        sim = module.IntacctSimulator(faults=faults)
        seed_intacct_bulk(sim, invoices, lines_per_invoice, vendors=suppliers)
    elif name == "servicenow":
        module = importlib.import_module(".servicenow", __package__)
        sim = module.ServiceNowSimulator(faults=faults, batch_max_items=batch_max_items)
        sim.seed_demo()
        label = dict(GL_ACCOUNTS)[UNMAPPED_ACCOUNT]
        for table in ("itfm_gl_accounts", "sn_fin_gl_account"):
            sim.insert(table, {"account_number": UNMAPPED_ACCOUNT, "name": label, "description": label,
                               "active": "true", "sys_created_on": "2025-12-01 09:00:00",
                               "sys_updated_on": "2025-12-01 09:00:00"})
    else:
        raise ValueError(f"no benchmark seed for {name!r}")
    sim.requests = deque(maxlen=REQUEST_LOG)  # type: ignore[assignment]
    return sim


def seed_intacct_bulk(sim: Simulator, bills: int, lines_per_bill: int, *, vendors: int = 50) -> None:
    """The demo sender, user and chart, then ``vendors`` vendors and ``bills`` bills of K lines.

    Every GL account and department a line uses has a ServiceNow counterpart in the benchmark
    instance (by code, or by name for departments). WHENMODIFIED stamps are shuffled against
    RECORDNO, as in the demo, since readByQuery cannot sort and the client must order pages.
    """
    from .intacct_seed import (
        COMPANY_ID,
        DEPARTMENTS,
        ENTITIES,
        EXPENSE_ACCOUNTS,
        GL_ACCOUNTS,
        SEED_TIME,
        SENDER_ID,
        SENDER_PASSWORD,
        USER_ID,
        USER_PASSWORD,
    )

    sim.add_sender(SENDER_ID, SENDER_PASSWORD)  # type: ignore[attr-defined]
    sim.add_company(COMPANY_ID, senders=(SENDER_ID,), entities=ENTITIES)  # type: ignore[attr-defined]
    sim.add_user(COMPANY_ID, USER_ID, USER_PASSWORD)  # type: ignore[attr-defined]
    insert = sim.insert  # type: ignore[attr-defined]
    titles = {code: title for code, title, *_ in GL_ACCOUNTS}
    for code, title, kind, balance in GL_ACCOUNTS:
        insert(COMPANY_ID, "GLACCOUNT", {"ACCOUNTNO": code, "TITLE": title, "ACCOUNTTYPE": kind,
                                         "NORMALBALANCE": balance, "STATUS": "active"}, when=SEED_TIME)
    departments = [code for code, _ in DEPARTMENTS if code != "700"]  # 700 has no ServiceNow cost center
    for code, title in DEPARTMENTS:
        if code in departments:
            insert(COMPANY_ID, "DEPARTMENT", {"DEPARTMENTID": code, "TITLE": title, "STATUS": "active"},
                   when=SEED_TIME)
    for code in ENTITIES:
        insert(COMPANY_ID, "LOCATION", {"LOCATIONID": code, "NAME": f"Entity {code}", "STATUS": "active"},
               when=SEED_TIME)
    start = datetime(2025, 12, 1, 10, 0, 0)
    vendor_ids = [f"BV{number:05d}" for number in range(1, vendors + 1)]
    for number, vendor_id in enumerate(vendor_ids):
        name = f"Bench Vendor {number + 1}"
        insert(COMPANY_ID, "VENDOR", {
            "VENDORID": vendor_id, "NAME": name, "STATUS": "active", "TERMNAME": "Net 30", "CURRENCY": "USD",
            "DISPLAYCONTACT": {
                "CONTACTNAME": f"{name} (AP)", "PRINTAS": name, "PHONE1": f"+1 555 {number:04d}",
                "URL1": f"https://vendor{number + 1}.example",
                "MAILADDRESS": {"ADDRESS1": f"{number + 1} Main Street", "CITY": "Chicago", "ZIP": "60601",
                                "COUNTRY": "United States"},
            },
        }, when=(start + timedelta(seconds=number)).strftime("%m/%d/%Y %H:%M:%S"))
    rng = random.Random(20251201)  # noqa: S311 - benchmark data, not crypto
    offsets = list(range(bills))
    rng.shuffle(offsets)
    bills_start = start + timedelta(days=1)
    for number in range(bills):
        lines = []
        for line_no in range(1, lines_per_bill + 1):
            account = EXPENSE_ACCOUNTS[(number * 3 + line_no) % len(EXPENSE_ACCOUNTS)]
            value = format(Decimal(1000 + (number * 7 + line_no * 13) % 99_000) / 100, ".2f")
            lines.append({"RECORDNO": str(line_no), "LINE_NO": str(line_no), "ACCOUNTNO": account,
                          "ACCOUNTTITLE": titles[account], "DEPARTMENTID": departments[(number + line_no) % len(departments)],
                          "LOCATIONID": ENTITIES[number % 2], "AMOUNT": value, "TRX_AMOUNT": value,
                          "ENTRYDESCRIPTION": f"Line {line_no} of bill {number + 1}"})
        total = format(sum((Decimal(line["TRX_AMOUNT"]) for line in lines), Decimal("0")), "f")
        bill_date = datetime(2025, 11, 1) + timedelta(days=number % 28)
        vendor_id = vendor_ids[number % len(vendor_ids)]
        insert(COMPANY_ID, "APBILL", {
            "RECORDID": f"BB-{number + 1:07d}", "VENDORID": vendor_id, "VENDORNAME": f"Bench Vendor {vendor_id}",
            "DOCNUMBER": f"INV-{vendor_id}-{number + 1}", "DESCRIPTION": f"Bench bill {number + 1}",
            "WHENCREATED": bill_date.strftime("%m/%d/%Y"), "WHENPOSTED": bill_date.strftime("%m/%d/%Y"),
            "WHENDUE": (bill_date + timedelta(days=30)).strftime("%m/%d/%Y"), "CURRENCY": "USD",
            "BASECURR": "USD", "TOTALENTERED": total, "TRX_TOTALENTERED": total, "TOTALPAID": "0.00",
            "TOTALDUE": total, "STATE": "Posted", "APBILLITEMS": lines,
        }, when=(bills_start + timedelta(seconds=offsets[number])).strftime("%m/%d/%Y %H:%M:%S"))
