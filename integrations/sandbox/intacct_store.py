"""One simulated Intacct company: its objects, records and the business rules of writes.

Records are plain dicts of strings (XML is text); APBILL lines live under ``APBILLITEMS`` as a
list of dicts. Every write stamps ``WHENMODIFIED`` (``MM/DD/YYYY HH:MM:SS``, second precision,
never decreasing) so rows written in one second share it, as on the real system.
Validation failures raise :class:`BusinessError` carrying Intacct's four error fields; the
error numbers and texts of business rules are [U] (Intacct does not publish them) except
where API_FACTS quotes them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .clock import ClockFn, MonotonicStamper

WHEN_FORMAT = "%m/%d/%Y %H:%M:%S"
GENERIC_ERRORNO = "BL01001973"  # [U] the gateway's generic business-logic error number


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    key: str  # the human id (ACCOUNTNO, VENDORID...); RECORDNO is the system key
    fields: tuple[str, ...]
    writable: bool = False


OBJECTS: dict[str, ObjectSpec] = {
    "GLACCOUNT": ObjectSpec("GLACCOUNT", "ACCOUNTNO", (
        "RECORDNO", "ACCOUNTNO", "TITLE", "ACCOUNTTYPE", "NORMALBALANCE", "STATUS", "WHENMODIFIED")),
    "DEPARTMENT": ObjectSpec("DEPARTMENT", "DEPARTMENTID", (
        "RECORDNO", "DEPARTMENTID", "TITLE", "STATUS", "WHENMODIFIED")),
    "LOCATION": ObjectSpec("LOCATION", "LOCATIONID", ("RECORDNO", "LOCATIONID", "NAME", "STATUS", "WHENMODIFIED")),
    "VENDOR": ObjectSpec("VENDOR", "VENDORID", (
        "RECORDNO", "VENDORID", "NAME", "STATUS", "TERMNAME", "CURRENCY", "DISPLAYCONTACT", "WHENMODIFIED"),
        writable=True),
    "APBILL": ObjectSpec("APBILL", "RECORDNO", (
        "RECORDNO", "RECORDID", "VENDORID", "VENDORNAME", "DOCNUMBER", "DESCRIPTION", "WHENCREATED", "WHENPOSTED",
        "WHENDUE", "CURRENCY", "BASECURR", "TOTALENTERED", "TRX_TOTALENTERED", "TOTALPAID", "TOTALDUE", "STATE",
        "WHENMODIFIED", "APBILLITEMS"), writable=True),
    # An AP payment applied to bills (create only, as for a submitted payment). PAYMENTDATE reads
    # back as WHENCREATED [D: developer.intacct.com/api/accounts-payable/ap-payments/].
    "APPYMT": ObjectSpec("APPYMT", "RECORDNO", (
        "RECORDNO", "VENDORID", "FINANCIALENTITY", "PAYMENTMETHOD", "DOCNUMBER", "DESCRIPTION", "WHENCREATED",
        "CURRENCY", "TOTALENTERED", "STATE", "WHENMODIFIED", "APPYMTDETAILS"), writable=True),
}
# The payment methods a created APPYMT may name [D: ap-payments page]; provider methods are not simulated.
PAYMENT_METHODS = frozenset({"Printed Check", "Joint Check", "Cash", "EFT", "Credit Card", "ACH", "Check Delivery",
                             "WF Check", "WF Domestic ACH", "WF USD Wire"})
LINE_CONTAINERS = ("APBILLITEMS", "APPYMTDETAILS")  # left out of readByQuery's "*", as Intacct does for lines
LINE_FIELDS = ("RECORDNO", "LINE_NO", "ACCOUNTNO", "ACCOUNTTITLE", "DEPARTMENTID", "LOCATIONID", "AMOUNT",
               "TRX_AMOUNT", "ENTRYDESCRIPTION")
BILL_HEADER_UPDATABLE = ("RECORDID", "DOCNUMBER", "DESCRIPTION", "WHENPOSTED", "WHENDUE")


class BusinessError(Exception):
    def __init__(self, description2: str, description: str = "", correction: str = "",
                 errorno: str = GENERIC_ERRORNO) -> None:
        super().__init__(description2)
        self.errorno = errorno
        self.description = description
        self.description2 = description2
        self.correction = correction


def _money(value: Any, what: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BusinessError(f"{what} {value!r} is not a valid amount.", "Invalid amount") from None
    if not amount.is_finite():
        raise BusinessError(f"{what} {value!r} is not a valid amount.", "Invalid amount")
    return amount


def _date(value: Any, what: str, required: bool = True) -> str:
    text = str(value or "").strip()
    if not text:
        if required:
            raise BusinessError(f"{what} is required.", "Required field missing")
        return ""
    try:
        return datetime.strptime(text, "%m/%d/%Y").strftime("%m/%d/%Y")
    except ValueError:
        raise BusinessError(f"{what} {text!r} is not a date in the format MM/DD/YYYY.", "Invalid date") from None


@dataclass
class Company:
    """One company's data. ``data[object][RECORDNO] = record``."""

    company_id: str
    senders: set[str] = field(default_factory=set)  # sender ids authorised for Web Services
    users: dict[str, str] = field(default_factory=dict)
    entities: set[str] = field(default_factory=set)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    completed_controlids: set[str] = field(default_factory=set)
    unique_bill_numbers: bool = False  # a company preference; off shows why uniqueid matters
    # Checking/savings accounts and charge cards a payment may be paid from (FINANCIALENTITY); an
    # empty set accepts any id.
    financial_entities: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for name in OBJECTS:
            self.data.setdefault(name, {})
            self.counters.setdefault(name, {"APBILL": 100, "APPYMT": 500}.get(name, 10))

    # --- snapshots for transaction rollback -----------------------------------------------------
    def snapshot(self) -> tuple[dict[str, Any], dict[str, int]]:
        return copy.deepcopy(self.data), dict(self.counters)

    def restore(self, snap: tuple[dict[str, Any], dict[str, int]]) -> None:
        self.data, self.counters = copy.deepcopy(snap[0]), dict(snap[1])

    # --- reads ----------------------------------------------------------------------------------
    def by_key(self, obj: str, key: str) -> dict[str, Any] | None:
        spec = OBJECTS[obj]
        for record in self.data[obj].values():
            if str(record.get(spec.key)) == key:
                return record
        return None

    def ordered(self, obj: str) -> list[dict[str, Any]]:
        """Records by RECORDNO: the order readByQuery happens to return (it cannot sort)."""
        return [self.data[obj][k] for k in sorted(self.data[obj], key=int)]


class Ledger:
    """Business rules of writes, stamping WHENMODIFIED from one monotonic clock."""

    def __init__(self, clock: ClockFn | None = None) -> None:
        self.stamper = MonotonicStamper(clock, WHEN_FORMAT)

    def stamp(self) -> str:
        return self.stamper.stamp()

    def insert(self, company: Company, obj: str, record: dict[str, Any], *, when: str | None = None) -> dict[str, Any]:
        """Add a record as is (seeding, or after validation); assigns RECORDNO and stamps it."""
        company.counters[obj] += 1
        row = dict(record)
        row["RECORDNO"] = str(row.get("RECORDNO") or company.counters[obj])
        row["WHENMODIFIED"] = when or self.stamp()
        company.data[obj][row["RECORDNO"]] = row
        return row

    def touch(self, company: Company, obj: str, record_no: str, values: dict[str, Any]) -> dict[str, Any]:
        """Change a record as a person in the Intacct UI would (bumps WHENMODIFIED)."""
        row = company.data[obj][record_no]
        row.update(values)
        if obj == "APBILL":
            _totals(row)
        row["WHENMODIFIED"] = self.stamp()
        return row

    # --- APBILL ---------------------------------------------------------------------------------
    def create_bill(self, company: Company, values: dict[str, Any], location_id: str) -> dict[str, Any]:
        vendor_id = str(values.get("VENDORID") or "").strip()
        vendor = company.by_key("VENDOR", vendor_id) if vendor_id else None
        if vendor is None:
            raise BusinessError(f"Vendor '{vendor_id}' does not exist.", "Could not create Bill record!",
                                "Use an existing vendor ID.")
        if vendor.get("STATUS") != "active":
            raise BusinessError(f"Vendor '{vendor_id}' is inactive.", "Could not create Bill record!")
        record_id = str(values.get("RECORDID") or "").strip()
        if company.unique_bill_numbers and record_id and any(
                b.get("VENDORID") == vendor_id and b.get("RECORDID") == record_id
                for b in company.data["APBILL"].values()):
            raise BusinessError(f"Bill number {record_id} already exists for vendor {vendor_id}.",
                                "Could not create Bill record!")
        header = {
            "RECORDID": record_id,
            "VENDORID": vendor_id,
            "VENDORNAME": vendor.get("NAME", ""),
            "DOCNUMBER": str(values.get("DOCNUMBER") or ""),
            "DESCRIPTION": str(values.get("DESCRIPTION") or ""),
            "WHENCREATED": _date(values.get("WHENCREATED"), "Bill date"),
            "WHENPOSTED": _date(values.get("WHENPOSTED"), "GL posting date", required=False),
            "WHENDUE": _date(values.get("WHENDUE"), "Due date", required=False),
            "CURRENCY": str(values.get("CURRENCY") or vendor.get("CURRENCY") or "USD"),
            "BASECURR": "USD",
            "TOTALPAID": "0.00",
            "STATE": "Posted",
        }
        header["WHENPOSTED"] = header["WHENPOSTED"] or header["WHENCREATED"]
        header["APBILLITEMS"] = self._lines(company, values, location_id)
        _totals(header)
        return self.insert(company, "APBILL", header)

    def update_bill(self, company: Company, values: dict[str, Any], location_id: str) -> dict[str, Any]:
        record_no = str(values.get("RECORDNO") or "").strip()
        row = company.data["APBILL"].get(record_no)
        if row is None:
            raise BusinessError(f"Bill with RECORDNO {record_no or '(none)'} was not found.",
                                "Could not update Bill record!")
        if row.get("STATE") == "Paid":
            raise BusinessError(f"Bill {row.get('RECORDID') or record_no} is paid and can no longer be edited.",
                                "Could not update Bill record!", "Reverse the payment first.")
        for name in BILL_HEADER_UPDATABLE:
            if name in values:
                value = values[name]
                row[name] = _date(value, name, required=False) if name.startswith("WHEN") else str(value or "")
        if "APBILLITEMS" in values:
            row["APBILLITEMS"] = self._lines(company, values, location_id)
        _totals(row)
        row["WHENMODIFIED"] = self.stamp()
        return row

    def _lines(self, company: Company, values: dict[str, Any], location_id: str) -> list[dict[str, Any]]:
        container = values.get("APBILLITEMS")
        raw = container.get("APBILLITEM") if isinstance(container, dict) else container
        items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
        if not items:
            raise BusinessError("A bill needs at least one line.", "Could not save Bill record!")
        lines = []
        for number, item in enumerate(items, start=1):
            account_no = str(item.get("ACCOUNTNO") or "").strip()
            account = company.by_key("GLACCOUNT", account_no)
            if account is None:
                raise BusinessError(f"Line {number}: GL account '{account_no}' does not exist.",
                                    "Could not save Bill record!", "Use an active GL account.")
            department = str(item.get("DEPARTMENTID") or "").strip()
            if department and company.by_key("DEPARTMENT", department) is None:
                raise BusinessError(f"Line {number}: department '{department}' does not exist.",
                                    "Could not save Bill record!")
            location = str(item.get("LOCATIONID") or location_id or "").strip()
            if location and company.entities and location not in company.entities:
                raise BusinessError(f"Line {number}: location '{location}' does not exist.",
                                    "Could not save Bill record!")
            amount = _money(item.get("TRX_AMOUNT"), f"Line {number}: amount")
            lines.append({
                "RECORDNO": str(number),
                "LINE_NO": str(number),
                "ACCOUNTNO": account_no,
                "ACCOUNTTITLE": account.get("TITLE", ""),
                "DEPARTMENTID": department,
                "LOCATIONID": location,
                "AMOUNT": format(amount, "f"),
                "TRX_AMOUNT": format(amount, "f"),
                "ENTRYDESCRIPTION": str(item.get("ENTRYDESCRIPTION") or ""),
            })
        return lines

    # --- APPYMT ---------------------------------------------------------------------------------
    def create_payment(self, company: Company, values: dict[str, Any]) -> dict[str, Any]:
        """An AP payment applied to bills: every detail is checked before any bill is touched, then
        each bill's TOTALPAID grows (TOTALDUE shrinks; fully paid: STATE Paid) and WHENMODIFIED moves.
        Error texts and numbers are [U] (Intacct does not publish them)."""
        refused = "Could not create Payment record!"
        vendor_id = str(values.get("VENDORID") or "").strip()
        if not vendor_id or company.by_key("VENDOR", vendor_id) is None:
            raise BusinessError(f"Vendor '{vendor_id}' does not exist.", refused, "Use an existing vendor ID.")
        entity = str(values.get("FINANCIALENTITY") or "").strip()
        if not entity or (company.financial_entities and entity not in company.financial_entities):
            raise BusinessError(f"Financial entity '{entity}' is not a checking account, savings account or charge "
                                "card of this company.", refused, "Use an existing bank account ID.")
        method = str(values.get("PAYMENTMETHOD") or "").strip()
        if method not in PAYMENT_METHODS:
            raise BusinessError(f"Payment method '{method}' is not valid.", refused,
                                f"Use one of: {', '.join(sorted(PAYMENT_METHODS))}.")
        when = _date(values.get("PAYMENTDATE"), "Payment date")
        currency = str(values.get("CURRENCY") or "").strip()
        if not currency:
            raise BusinessError("Currency is required.", refused)
        container = values.get("APPYMTDETAILS")
        raw = container.get("APPYMTDETAIL") if isinstance(container, dict) else container
        details = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
        if not details:
            raise BusinessError("A payment needs at least one payment detail.", refused)
        applied: dict[str, Decimal] = {}
        for detail in details:
            key = str(detail.get("RECORDKEY") or "").strip()
            bill = company.data["APBILL"].get(key)
            if bill is None:
                raise BusinessError(f"Bill with record number {key or '(none)'} was not found.", refused,
                                    "Pay an existing, posted bill.")
            name = bill.get("RECORDID") or key
            if bill.get("VENDORID") != vendor_id:
                raise BusinessError(f"Bill {name} belongs to vendor {bill.get('VENDORID')}, not {vendor_id}.",
                                    refused, "Pay the bill with the vendor it belongs to.")
            if str(bill.get("CURRENCY") or currency) != currency:
                raise BusinessError(f"Bill {name} is in {bill.get('CURRENCY')}, the payment in {currency}.", refused,
                                    "Pay the bill in its own currency.")
            amount = _money(detail.get("TRX_PAYMENTAMOUNT"), "Payment amount")
            if amount <= 0:
                raise BusinessError(f"Payment amount {amount} for bill {name} must be greater than zero.", refused)
            due = Decimal(str(bill.get("TOTALDUE") or "0")) - applied.get(key, Decimal("0"))
            if bill.get("STATE") == "Paid" or due <= 0:
                raise BusinessError(f"Bill {name} is already paid.", refused,
                                    "Check the bill's payments in Intacct; reverse a payment before paying it again.")
            if amount > due:
                raise BusinessError(f"Payment amount {amount} for bill {name} exceeds the amount due {due}.", refused,
                                    "Pay at most the amount due.")
            applied[key] = applied.get(key, Decimal("0")) + amount
        stamp = self.stamp()
        for key, amount in applied.items():
            bill = company.data["APBILL"][key]
            bill["TOTALPAID"] = format((Decimal(str(bill.get("TOTALPAID") or "0")) + amount).quantize(Decimal("0.01")),
                                       "f")
            _totals(bill)
            bill["WHENMODIFIED"] = stamp
        record = {
            "VENDORID": vendor_id, "FINANCIALENTITY": entity, "PAYMENTMETHOD": method,
            "DOCNUMBER": str(values.get("DOCNUMBER") or ""), "DESCRIPTION": str(values.get("DESCRIPTION") or ""),
            "WHENCREATED": when, "CURRENCY": currency,
            "TOTALENTERED": format(sum(applied.values(), Decimal("0")).quantize(Decimal("0.01")), "f"),
            "STATE": "Submitted",  # [U] the state names (the docs show letters D/S/A)
            "APPYMTDETAILS": [{"RECORDKEY": str(d.get("RECORDKEY") or "").strip(),
                               "TRX_PAYMENTAMOUNT": format(_money(d.get("TRX_PAYMENTAMOUNT"), "Payment amount"), "f")}
                              for d in details],
        }
        return self.insert(company, "APPYMT", record, when=stamp)

    # --- VENDOR ---------------------------------------------------------------------------------
    def create_vendor(self, company: Company, values: dict[str, Any]) -> dict[str, Any]:
        vendor_id = str(values.get("VENDORID") or "").strip()
        if not vendor_id or not str(values.get("NAME") or "").strip():
            raise BusinessError("VENDORID and NAME are required.", "Could not create Vendor record!")
        if company.by_key("VENDOR", vendor_id) is not None:
            raise BusinessError(f"Another Vendor with the given value(s) {vendor_id} already exists.",
                                "Could not create Vendor record!")
        record = {name: values.get(name, "") for name in OBJECTS["VENDOR"].fields if name in values}
        record.setdefault("STATUS", "active")
        return self.insert(company, "VENDOR", record)

    def update_vendor(self, company: Company, values: dict[str, Any]) -> dict[str, Any]:
        record_no = str(values.get("RECORDNO") or "")
        row = company.data["VENDOR"].get(record_no) or company.by_key("VENDOR", str(values.get("VENDORID") or ""))
        if row is None:
            raise BusinessError("Vendor was not found.", "Could not update Vendor record!")
        for name in ("NAME", "STATUS", "TERMNAME", "CURRENCY", "DISPLAYCONTACT"):
            if name in values:
                row[name] = values[name]
        row["WHENMODIFIED"] = self.stamp()
        return row


def _totals(bill: dict[str, Any]) -> None:
    total = sum((Decimal(line["TRX_AMOUNT"]) for line in bill.get("APBILLITEMS") or []), Decimal("0"))
    paid = Decimal(str(bill.get("TOTALPAID") or "0"))
    bill["TOTALENTERED"] = bill["TRX_TOTALENTERED"] = format(total.quantize(Decimal("0.01")), "f")
    bill["TOTALDUE"] = format((total - paid).quantize(Decimal("0.01")), "f")
    if paid and paid >= total:
        bill["STATE"] = "Paid"
    elif paid:
        bill["STATE"] = "Partially Paid"
