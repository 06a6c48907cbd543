"""Simulators seeded for the benchmark: volume, documented limits, and every code mappable.

``python -m integrations.sandbox.server sage_x3 --benchmark --invoices 10000 --lines-per-invoice 5``
serves what :func:`build_benchmark_simulator` builds: the X3 ledger holds only the bulk data
(suppliers, one purchase order per invoice, invoices with their lines, the demo GL accounts and
cost centers) and answers at most ``page_max`` records per page; the ServiceNow instance is the
demo instance plus the one GL account the demo leaves out on purpose (61200), so every code
the ledger uses has a match and no invoice is held. ``sage_intacct`` serves the demo company's
sender, user, GL accounts and entities, departments 100-600 (700, which ServiceNow lacks, is
left out), ``suppliers`` vendors and N AP bills of K lines (:func:`seed_intacct_bulk`);
readByQuery answers at most 1000 records per page there (the documented maximum). ``sage_300``
serves the demo Web API user, a chart whose department segments are the ServiceNow seed's cost
center codes, ``suppliers`` vendors and N AP invoices of K details in invoice batches of 50
(:func:`seed_sage300_bulk`), at most :data:`S300_PAGE_SIZE` records per page. ``syspro`` serves the
demo operator and company, the demo GL accounts (with the AP control account) and the cost
centres ServiceNow has, ``suppliers`` suppliers, N AP invoices of K distribution lines and each
invoice's balanced journal (``syspro_seed.bulk_tables``), 100 invoices to a posting date, on one
e.net licence seat. ``servicetitan`` serves the demo client and app key, ``suppliers`` vendors,
N inventory bills of K items (each with its purchase order) and N completed jobs
(``servicetitan_seed.bulk_data``), under its documented 60 calls a second. ``sage_x3`` with
``field_service`` serves instead the contractor's folder ``FIELD`` coherent with that data
(:meth:`~.sage_x3_store.X3Store.seed_field_service_bulk`: the chart, cost centers, suppliers named
like the vendors, orders ``PO-300001``…), the target of the ServiceTitan pair. The request log every simulator keeps
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
# Sage 300 answers at most web.config PageSize records per GET, 100 unless the customer changed it
# (API_FACTS 3 [D]; Sage recommends 1000 for bulk). The benchmark keeps the default every
# install starts with: a record here is an invoice batch of 50 invoices, so a page of 100 is
# already 5000 invoices, and the minimum is counted at this size either way.
S300_PAGE_SIZE = 100
S300_INVOICES_PER_BATCH = 50
S300_BATCHES_PER_DAY = 4  # batches sharing one DateLastEdited (a date without time)
# SYSPRO documents no largest ReturnRows for COMFND [U]; the benchmark asks 1000 rows a query, as
# X3 serves 1000 records a page. Invoices share a posting date 100 at a time.
SYSPRO_PAGE_SIZE = 1000
SYSPRO_INVOICES_PER_DAY = 100


def build_benchmark_simulator(
    name: str,
    *,
    invoices: int = 0,
    lines_per_invoice: int = 3,
    suppliers: int = 50,
    page_max: int = X3_PAGE_MAX,
    batch_max_items: int = SN_BATCH_MAX,
    faults: Faults | None = None,
    field_service: bool = False,
) -> Simulator:
    """A simulator seeded for a benchmark run (see the module docstring)."""
    if name == "sage_x3" and field_service:
        # the target of the ServiceTitan pair: as many journal entries (jobs) as supplier invoices
        module = importlib.import_module(".sage_x3", __package__)
        sim = module.SageX3Simulator(faults=faults, folders=(), page_max=page_max)
        sim.seed_field_service_bulk(jobs=invoices, bills=invoices, lines=lines_per_invoice, vendors=suppliers)
        sim.add_user(*X3_BENCH_USER)
        sim.add_oauth_client("ml-connector", "x3-demo-secret")
    elif field_service:
        raise ValueError(f"no field-service seed for {name!r} (sage_x3 only)")
    elif name == "sage_x3":
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
    elif name == "sage_300":
        # page_max is the X3 server's (the CLI's --page-max); Sage 300 keeps its PageSize
        module = importlib.import_module(".sage300", __package__)
        sim = module.Sage300Simulator(faults=faults, page_size=S300_PAGE_SIZE)
        seed_sage300_bulk(sim, invoices, lines_per_invoice, vendors=suppliers)
    elif name == "syspro":
        # one licence seat, as the seed's customer has: each contender logs off before the next
        module = importlib.import_module(".syspro", __package__)
        sim = module.SysproSimulator(faults=faults)
        sim.seed_bulk(invoices, lines_per_invoice, suppliers, per_day=SYSPRO_INVOICES_PER_DAY)
    elif name == "servicetitan":
        # ServiceTitan's own limit of 60 calls a second per app and tenant stays on: both contenders
        # live under it (each keeps under it, the portal with its pacer)
        module = importlib.import_module(".servicetitan", __package__)
        sim = module.ServiceTitanSimulator(faults=faults)
        sim.seed_bulk(invoices, lines_per_invoice, suppliers)
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


def seed_sage300_bulk(sim: Simulator, invoices: int, lines_per_invoice: int, *, vendors: int = 50,
                      per_batch: int = S300_INVOICES_PER_BATCH) -> None:
    """The demo Web API user, then a chart, ``vendors`` vendors and ``invoices`` invoices of K details.

    GL accounts are ``NNNN-CCnnn``: the four naturals of the demo chart times the ServiceNow
    seed's cost center codes as the department segment, so every account's cost center is
    suggested by exact code and every account is pushed as a GL account; no invoice is held.
    Invoices come ``per_batch`` to an AP invoice batch (the last one may be short), each with
    ``lines_per_invoice`` details over the accounts in turn. Keys do not follow dates, as in a
    ledger people edit: ``DateLastEdited`` (the date incremental reads filter and order on, no
    time) is shuffled against ``BatchNumber``, ``S300_BATCHES_PER_DAY`` batches to a date, and
    vendors' ``DateLastMaintained`` against ``VendorNumber`` likewise.
    """
    from .sage300_seed import DEMO_USER, NATURALS, SEED_DAY, account, batch, invoice, vendor
    from .snseed import COST_CENTERS

    names, departments = dict(NATURALS), dict(COST_CENTERS)
    accounts = [account(natural, dept, names, departments, SEED_DAY) for natural, _ in NATURALS
                for dept, _ in COST_CENTERS]
    segments = [{"SegmentNumber": "1", "SegmentCode": code, "Description": label} for code, label in NATURALS]
    segments += [{"SegmentNumber": "2", "SegmentCode": code, "Description": label} for code, label in COST_CENTERS]
    rng = random.Random(20260105)  # noqa: S311 - benchmark data, not crypto
    vendor_days = list(range(vendors))
    rng.shuffle(vendor_days)
    vendor_rows = [vendor(str(20001 + i), f"Bench Vendor {i + 1:05d}", SEED_DAY + timedelta(days=vendor_days[i] // 10))
                   for i in range(vendors)]
    codes = [row["UnformattedAccount"] for row in accounts]
    batch_count = -(-invoices // per_batch)
    edited = list(range(batch_count))
    rng.shuffle(edited)
    # entered day by day in number order, edited (approved, corrected) later in any order
    last_entered = batch_count // S300_BATCHES_PER_DAY + 1
    batches = []
    for b in range(batch_count):
        number = b + 1
        day = SEED_DAY + timedelta(days=b // S300_BATCHES_PER_DAY)
        entries = []
        for entry, i in enumerate(range(b * per_batch, min(invoices, (b + 1) * per_batch)), start=1):
            details = [(codes[(i + j) % len(codes)], Decimal(10 + (i * 7 + j * 13) % 990) + Decimal("0.25"),
                        f"Line {j + 1} of invoice {i + 1}") for j in range(lines_per_invoice)]
            entries.append(invoice(number, entry, vendor_rows[i % vendors]["VendorNumber"], details, day))
        row = batch(number, day, entries)
        row["DateLastEdited"] = (SEED_DAY + timedelta(days=last_entered + edited[b] // S300_BATCHES_PER_DAY)).isoformat()
        batches.append(row)
    sim.add_user(*DEMO_USER)  # type: ignore[attr-defined]
    sim.load({"GLAccounts": accounts, "GLSegmentCodes": segments, "APVendors": vendor_rows,  # type: ignore[attr-defined]
              "APInvoiceBatches": batches})
