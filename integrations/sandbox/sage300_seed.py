"""Deterministic data for the Sage 300 simulator: the demo company and bulk ledgers.

Chart of accounts: ``AAAA-DDDDD`` (account segment, then the department segment). Department
codes CC100-CC500 equal the ServiceNow demo cost centers' codes (snseed.COST_CENTERS), so the
GL account → cost center suggestion is an exact code match; department 600 ("Information
technology") has no such code and is suggested by name; CC700 ("Quality assurance") exists only
in Sage 300, so invoices coded to it are held until someone maps it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

COMPANY = "SAMLTD"
DEMO_USER = ("WEBAPI", "WEBAPI-PASS")  # stored upper-case, as Sage 300 keeps user ids
DEPARTMENTS = [
    ("CC100", "Production"),
    ("CC200", "Logistics"),
    ("CC300", "Sales and marketing"),
    ("CC400", "Administration"),
    ("CC500", "Research and development"),
    ("600", "Information technology"),
    ("CC700", "Quality assurance"),
]
NATURALS = [("6000", "Raw materials"), ("6100", "Freight in"), ("6500", "Office supplies"), ("6600", "IT equipment")]
# (natural, department) pairs of the demo chart
DEMO_ACCOUNTS = [
    ("6000", "CC100"), ("6100", "CC200"), ("6500", "CC300"), ("6500", "CC400"), ("6600", "CC500"),
    ("6600", "600"), ("6000", "CC700"),
]
SEED_DAY = date(2026, 1, 5)


def account(natural: str, dept: str, names: dict[str, str], depts: dict[str, str], day: date) -> dict[str, Any]:
    return {
        "UnformattedAccount": f"{natural}{dept}", "AccountNumber": f"{natural}-{dept}",
        "Description": f"{names[natural]} - {depts[dept]}", "AccountType": "IncomeStatement",
        "NormalBalanceDRCR": "Debit", "Status": "Active", "PostToAccount": "Detail", "AccountGroupCode": "EXP",
        "AccountSegmentCode1": natural, "AccountSegmentCode2": dept, "StructureCode": "ACCDEP",
        "DateCreated": day.isoformat(), "DateLastMaintained": day.isoformat(), "DefaultCurrencyCode": "USD",
    }


def vendor(number: str, name: str, day: date) -> dict[str, Any]:
    return {
        "VendorNumber": number, "VendorName": name, "ShortName": name[:10].upper(), "Status": "Active",
        "AddressLine1": f"{int(number) % 97 + 1} Industrial Way", "City": "Springfield", "ZipPostalCode": "01101",
        "Country": "USA", "PhoneNumber": "555-0100", "CurrencyCode": "USD", "TermsCode": "NET30",
        "DateLastMaintained": day.isoformat(),
    }


def invoice(batch: int, entry: int, vendor_number: str, details: list[tuple[str, Decimal, str]],
            day: date) -> dict[str, Any]:
    net = sum((amount for _, amount, _ in details), Decimal("0"))
    tax = (net * Decimal("0.05")).quantize(Decimal("0.01"))
    return {
        "BatchNumber": batch, "EntryNumber": entry, "VendorNumber": vendor_number,
        "DocumentNumber": f"INV-{batch:05d}-{entry:03d}", "InvoiceDescription": f"Supplies, batch {batch}",
        "DocumentDate": day.isoformat(), "PostingDate": day.isoformat(),
        "DueDate": (day + timedelta(days=30)).isoformat(), "CurrencyCode": "USD", "TaxGroup": "VAT",
        "DocumentTotalBeforeTaxes": net, "DocumentTotalIncludingTax": net + tax,
        "InvoiceDetails": [
            {"LineNumber": (i + 1) * 20, "DistributionDescription": text, "GLAccount": acct,
             "DistributedAmount": amount, "DistributedAmountBeforeTaxes": amount}
            for i, (acct, amount, text) in enumerate(details)
        ],
    }


def batch(number: int, day: date, invoices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "BatchNumber": number, "BatchDate": day.isoformat(), "Description": f"AP invoices {day.isoformat()}",
        "BatchType": "Entered", "BatchStatus": "Open", "NumberOfEntries": len(invoices),
        "BatchTotal": sum((i["DocumentTotalIncludingTax"] for i in invoices), Decimal("0")),
        "DateLastEdited": day.isoformat(), "Invoices": invoices,
    }


def demo_data() -> dict[str, Any]:
    names, depts = dict(NATURALS), dict(DEPARTMENTS)
    accounts = [account(n, d, names, depts, SEED_DAY) for n, d in DEMO_ACCOUNTS]
    segments = [{"SegmentNumber": "2", "SegmentCode": code, "Description": label} for code, label in DEPARTMENTS]
    segments += [{"SegmentNumber": "1", "SegmentCode": code, "Description": label} for code, label in NATURALS]
    vendor_names = ["Northwind Metals", "Contoso Freight", "Fabrikam Packaging", "Adventure Works Office",
                    "Litware Computing", "Tailspin Tools", "Wingtip Supplies", "Proseware Services",
                    "Woodgrove Maintenance", "Alpine Utilities", "Blue Yonder Travel", "Coho Consulting"]
    # five vendors share one DateLastMaintained, as a batch of edits on one day does
    vendors = [vendor(str(1100 + 100 * i), name, SEED_DAY + timedelta(days=0 if i < 5 else i))
               for i, name in enumerate(vendor_names)]
    codes = [f"{n}{d}" for n, d in DEMO_ACCOUNTS]
    batches = []
    for b in range(4):
        day = SEED_DAY + timedelta(days=b * 3)
        entries = []
        for e in range(3):
            k = b * 3 + e
            acct = codes[k % 6]
            # details name the unformatted account or, on some lines, the formatted one
            first = acct if k % 2 else f"{acct[:4]}-{acct[4:]}"
            lines = [(first, Decimal(f"{120 + 15 * k}.50"), "Materials"), (codes[(k + 1) % 6], Decimal("42.10"), "Freight")]
            if b == 3 and e == 2:
                lines.append((codes[6], Decimal("75.00"), "Inspection"))  # CC700: held until mapped
            entries.append(invoice(b + 1, e + 1, vendors[k % len(vendors)]["VendorNumber"], lines, day))
        batches.append(batch(b + 1, day, entries))
    return {"GLAccounts": accounts, "GLSegmentCodes": segments, "APVendors": vendors, "APInvoiceBatches": batches}


def bulk_data(invoices: int, lines_per_invoice: int, vendors: int = 50, per_batch: int = 10,
              vendors_per_day: int = 10) -> dict[str, Any]:
    """A ledger of ``invoices`` invoices of ``lines_per_invoice`` lines, every code mappable by code."""
    names, depts = dict(NATURALS), dict(DEPARTMENTS[:5])
    pairs = [(n, d) for n, _ in NATURALS for d, _ in DEPARTMENTS[:5]]
    accounts = [account(n, d, names, depts, SEED_DAY) for n, d in pairs]
    segments = [{"SegmentNumber": "2", "SegmentCode": c, "Description": label} for c, label in DEPARTMENTS[:5]]
    vendor_rows = [vendor(str(10000 + i), f"Bulk Vendor {i:05d}", SEED_DAY + timedelta(days=i // vendors_per_day))
                   for i in range(vendors)]
    batches, entries, number = [], [], 1
    for i in range(invoices):
        codes = [f"{pairs[(i + j) % len(pairs)][0]}{pairs[(i + j) % len(pairs)][1]}" for j in range(lines_per_invoice)]
        day = SEED_DAY + timedelta(days=number // 5)
        lines = [(code, Decimal(f"{10 + (i + j) % 90}.25"), f"Line {j + 1}") for j, code in enumerate(codes)]
        entries.append(invoice(number, len(entries) + 1, vendor_rows[i % vendors]["VendorNumber"], lines, day))
        if len(entries) == per_batch or i == invoices - 1:
            batches.append(batch(number, day, entries))
            entries, number = [], number + 1
    return {"GLAccounts": accounts, "GLSegmentCodes": segments, "APVendors": vendor_rows,
            "APInvoiceBatches": batches}
