"""Deterministic data for the ServiceTitan simulator: the demo tenant and bulk data.

Record shapes follow ServiceTitan's published OpenAPI files (API_FACTS 6.2, ST-SPEC): invoice
amounts are strings (``subTotal``, ``total``, ``balance``, item ``cost``/``totalCost``), inventory
bill amounts are strings too in the vendored spec and in public client schemas (``billAmount``,
``taxAmount``, ``shippingAmount``; the simulator's ``numeric_bill_amounts`` switch serves
numbers instead), purchase order amounts are numbers. GL accounts appear inside records as
``{name, number, type, detailType}``.

Chosen for the demo, not documented [U]:

- job costs: ServiceTitan's job schema has no cost fields, so each completed job carries two
  custom fields, ``laborCost`` and ``materialCost`` (the connection's ``job_cost_fields``
  default), equal to the summed ``totalCost`` of the Service and Material items of its invoice;
- GL account ``type``/``detailType`` values, bill ``referenceNumber``/``vendorNumber`` contents
  and purchase order numbers.

The story: a regional electrical contractor (the seed's example) with three business units.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

TENANT_ID = "1042817"
CLIENT_ID = "cid.st-demo-ml-connector"
CLIENT_SECRET = "cs1.st-demo-client-secret-8f2c41d7"
APP_KEY = "ak1.st-demo-app-key-5b9e07a3c6"
WEBHOOK_KEY = "whk-demo-7c1f0e9a4b3d2c5e8f6a1b0c9d8e7f6a"  # 42 characters (32-64 allowed)
SEED_TIME = datetime(2026, 1, 2, 9, 0, 0, tzinfo=UTC)
CENT = Decimal("0.01")

# (number, name, type, detailType): a QuickBooks-like chart as ServiceTitan tenants use [U]
GL_ACCOUNTS = [
    ("4000", "Service Revenue", "Income", "ServiceFeeIncome"),
    ("4100", "Materials Revenue", "Income", "SalesOfProductIncome"),
    ("5000", "Labor Cost", "CostOfGoodsSold", "CostOfLaborCos"),
    ("5100", "Materials Cost", "CostOfGoodsSold", "SuppliesMaterialsCogs"),
    ("5200", "Freight In", "CostOfGoodsSold", "ShippingFreightDeliveryCos"),
    ("1300", "Inventory Asset", "OtherCurrentAsset", "Inventory"),
]
BUSINESS_UNITS = [(11, "Electrical North"), (12, "Electrical South"), (13, "Head Office Service")]
JOB_TYPES = [(21, "Panel Upgrade"), (22, "Service Call"), (23, "EV Charger Install")]
VENDORS = [(31, "Northwind Electrical Supply"), (32, "Contoso Wire and Cable"), (33, "Fabrikam Fixtures"),
           (34, "Tailspin Tools")]
MATERIALS = [("BRK-20A", "20A breaker", Decimal("14.80")), ("WIRE-12", "12 AWG wire, 250 ft", Decimal("96.40")),
             ("PANEL-200", "200A load center", Decimal("318.00")), ("EVSE-48", "48A EV charger", Decimal("549.00")),
             ("GFCI-15", "GFCI outlet", Decimal("18.25"))]
LABOR_RATE = Decimal("42.50")  # the technician's cost per hour
LABOR_PRICE = Decimal("125.00")  # billed per hour
MARKUP = Decimal("1.6")
TAX_RATE = Decimal("0.0825")


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as ServiceTitan writes ``modifiedOn``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def gl(number: str) -> dict[str, Any]:
    for code, name, kind, detail in GL_ACCOUNTS:
        if code == number:
            return {"name": name, "number": code, "type": kind, "detailType": detail}
    raise KeyError(number)


def address(n: int) -> dict[str, Any]:
    return {"street": f"{100 + n} Main Street", "unit": None, "city": "Riverside", "state": "CA", "zip": "92501",
            "country": "USA"}


def gl_account_row(i: int, row: tuple[str, str, str, str], moment: datetime) -> dict[str, Any]:
    number, name, kind, detail = row
    # [C] the gl-accounts endpoint is in newer spec versions; fields beyond these are left out [U]
    return {"id": 901 + i, "name": name, "number": number, "description": name, "type": kind, "subtype": detail,
            "active": True, "createdOn": stamp(SEED_TIME), "modifiedOn": stamp(moment)}


def business_unit(unit_id: int, name: str, moment: datetime) -> dict[str, Any]:
    return {"id": unit_id, "active": True, "name": name, "officialName": f"Acme Electric - {name}",
            "email": None, "phoneNumber": None, "modifiedOn": stamp(moment)}


def job_type(type_id: int, name: str, moment: datetime) -> dict[str, Any]:
    return {"id": type_id, "name": name, "modifiedOn": stamp(moment), "externalData": []}


def vendor(vendor_id: int, name: str, moment: datetime) -> dict[str, Any]:
    return {
        "id": vendor_id, "name": name, "active": True, "isTruckReplenishment": False,
        "isMobileCreationRestricted": False, "memo": None, "deliveryOption": "None", "defaultTaxRate": 0,
        "contactInfo": {"firstName": "Accounts", "lastName": "Receivable", "phone": f"555-01{vendor_id % 100:02d}",
                        "email": None, "fax": None},
        "address": address(vendor_id), "createdOn": stamp(SEED_TIME), "modifiedOn": stamp(moment),
        "externalData": [],
    }


def invoice_items(job_index: int, first_item_id: int, lines: int, moment: datetime
                  ) -> tuple[list[dict[str, Any]], Decimal, Decimal, Decimal]:
    """``lines`` items (one Service line of labor, the rest Material), with their totals."""
    items: list[dict[str, Any]] = []
    labor = material = price_total = Decimal("0")
    for n in range(lines):
        if n == 0:
            hours = Decimal(2 + job_index % 5)
            cost, total_cost = LABOR_RATE, (LABOR_RATE * hours).quantize(CENT)
            price, total = LABOR_PRICE, (LABOR_PRICE * hours).quantize(CENT)
            labor += total_cost
            item = {"type": "Service", "skuName": "LABOR-HR", "skuId": 601, "description": "Electrician labor",
                    "quantity": str(hours), "inventory": False, "taxable": False, "soldHours": hours,
                    "generalLedgerAccount": gl("4000"), "costOfSaleAccount": gl("5000"), "assetAccount": None,
                    "inventoryLocation": None}
        else:
            sku, text, unit = MATERIALS[(job_index + n) % len(MATERIALS)]
            qty = Decimal(1 + (job_index + n) % 3)
            cost, total_cost = unit, (unit * qty).quantize(CENT)
            price = (unit * MARKUP).quantize(CENT)
            total = (price * qty).quantize(CENT)
            material += total_cost
            item = {"type": "Material", "skuName": sku, "skuId": 700 + MATERIALS.index((sku, text, unit)),
                    "description": text, "quantity": str(qty), "inventory": True, "taxable": True, "soldHours": None,
                    "generalLedgerAccount": gl("4100"), "costOfSaleAccount": gl("5100"),
                    "assetAccount": gl("1300"), "inventoryLocation": "Main Warehouse"}
        price_total += total
        items.append({
            "id": first_item_id + n, **item, "cost": money(cost), "totalCost": money(total_cost),
            "price": money(price), "total": money(total), "membershipTypeId": 0, "itemGroup": None,
            "displayName": item["description"], "modifiedOn": stamp(moment), "serviceDate": stamp(moment),
            "order": n + 1,
        })
    return items, labor, material, price_total


def job(job_id: int, unit: tuple[int, str], kind: tuple[int, str], status: str, moment: datetime,
        labor: Decimal, material: Decimal) -> dict[str, Any]:
    completed = status == "Completed"
    return {
        "id": job_id, "jobNumber": str(job_id), "customerId": 3000 + job_id % 50, "locationId": 4000 + job_id % 50,
        "jobStatus": status, "completedOn": stamp(moment) if completed else None, "businessUnitId": unit[0],
        "jobTypeId": kind[0], "priority": "Normal", "campaignId": 51, "summary": f"{kind[1]} for customer {job_id % 50}",
        "customFields": [{"typeId": 101, "name": "laborCost", "value": money(labor)},
                         {"typeId": 102, "name": "materialCost", "value": money(material)}] if completed else [],
        "appointmentCount": 1, "firstAppointmentId": 20000 + job_id, "lastAppointmentId": 20000 + job_id,
        "recallForId": None, "warrantyId": None, "jobGeneratedLeadSource": None, "noCharge": False,
        "notificationsEnabled": True, "createdOn": stamp(SEED_TIME), "createdById": 71, "modifiedOn": stamp(moment),
        "tagTypeIds": [], "leadCallId": None, "bookingId": None, "soldById": None, "externalData": [],
    }


def invoice(invoice_id: int, job_row: dict[str, Any] | None, unit: tuple[int, str], kind_name: str,
            items: list[dict[str, Any]], subtotal: Decimal, moment: datetime) -> dict[str, Any]:
    tax = (sum((Decimal(i["total"]) for i in items if i["taxable"]), Decimal("0")) * TAX_RATE).quantize(CENT)
    customer = job_row["customerId"] if job_row else 3999
    return {
        "id": invoice_id, "syncStatus": "Pending", "summary": f"Invoice {invoice_id}",
        "referenceNumber": str(invoice_id), "invoiceDate": stamp(moment), "dueDate": stamp(moment + timedelta(days=30)),
        "subTotal": money(subtotal), "salesTax": money(tax), "salesTaxCode": None, "total": money(subtotal + tax),
        "balance": money(subtotal + tax), "customer": {"id": customer, "name": f"Customer {customer}"},
        "customerAddress": address(customer), "locationAddress": address(customer),
        "businessUnit": {"id": unit[0], "name": unit[1]}, "termName": "Net 30", "createdBy": "dispatch",
        "batch": None, "modifiedOn": stamp(moment), "adjustmentToId": None,
        "job": {"id": job_row["id"], "number": job_row["jobNumber"], "type": kind_name} if job_row else None,
        "projectId": None, "royalty": None, "employeeInfo": None, "commissionEligibilityDate": None,
        "items": items, "customFields": [],
    }


def purchase_order(po_id: int, vendor_id: int, job_row: dict[str, Any] | None, unit_id: int,
                   lines: list[tuple[str, str, Decimal, Decimal]], tax: Decimal, shipping: Decimal,
                   moment: datetime) -> dict[str, Any]:
    items = [{"id": po_id * 10 + n, "skuId": 700 + n, "skuName": sku, "skuCode": sku, "skuType": "Material",
              "description": text, "vendorPartNumber": f"VP-{sku}", "quantity": qty, "quantityReceived": qty,
              "cost": cost, "total": (cost * qty).quantize(CENT), "serialNumbers": [], "status": "Received",
              "chargeable": True} for n, (sku, text, cost, qty) in enumerate(lines)]
    total = sum((i["total"] for i in items), Decimal("0")) + tax + shipping
    return {
        "id": po_id, "number": f"PO-{po_id}", "invoiceId": None, "jobId": job_row["id"] if job_row else None,
        "projectId": None, "status": "Received", "typeId": 1, "vendorId": vendor_id, "technicianId": None,
        "shipTo": address(po_id), "businessUnitId": unit_id, "inventoryLocationId": 1, "batchId": None,
        "vendorDocumentNumber": f"VINV-{po_id}", "date": stamp(moment - timedelta(days=3)),
        "requiredOn": stamp(moment), "sentOn": stamp(moment - timedelta(days=3)), "receivedOn": stamp(moment),
        "createdOn": stamp(moment - timedelta(days=3)), "modifiedOn": stamp(moment), "total": total, "tax": tax,
        "shipping": shipping, "summary": f"Materials for job {job_row['id']}" if job_row else "Stock replenishment",
        "items": items, "customFields": [],
    }


def inventory_bill(bill_id: int, po: dict[str, Any], vendor_row: tuple[int, str], unit: tuple[int, str],
                   job_row: dict[str, Any] | None, moment: datetime, numeric: bool = False) -> dict[str, Any]:
    def amount(value: Decimal) -> Any:
        return value.quantize(CENT) if numeric else money(value)

    stocked = job_row is None
    items = [{"order": n + 1, "name": i["skuCode"], "description": i["description"], "quantity": str(i["quantity"]),
              "cost": amount(i["cost"]), "inventoryLocation": "Main Warehouse", "serialNumber": None,
              "generalLedgerAccount": gl("1300" if stocked else "5100"), "costOfSaleAccount": gl("5100"),
              "assetAccount": gl("1300")} for n, i in enumerate(po["items"])]
    return {
        "id": bill_id, "purchaseOrderId": po["id"], "syncStatus": "Pending", "referenceNumber": str(bill_id),
        "vendorNumber": po["vendorDocumentNumber"], "summary": po["summary"], "billDate": stamp(moment),
        "billAmount": amount(po["total"]), "taxAmount": amount(po["tax"]), "shippingAmount": amount(po["shipping"]),
        "createdBy": "warehouse", "createdOn": stamp(moment), "termName": "Net 30",
        "dueDate": stamp(moment + timedelta(days=30)), "shipToDescription": "Main Warehouse", "batch": None,
        "businessUnit": {"id": unit[0], "name": unit[1]}, "vendor": {"id": vendor_row[0], "name": vendor_row[1]},
        "shipTo": address(po["id"]), "items": items, "customFields": [],
        "jobId": job_row["id"] if job_row else None, "jobNumber": job_row["jobNumber"] if job_row else None,
    }


Rows = list[tuple[dict[str, Any], datetime, bool]]  # (record, changed at, active)


def demo_data(numeric_bill_amounts: bool = False) -> dict[tuple[str, str], Rows]:
    """The demo tenant: 3 business units, 3 job types, 4 vendors, 8 jobs, 10 invoices, 5 POs and bills."""
    t = SEED_TIME
    data: dict[tuple[str, str], Rows] = {
        ("accounting", "gl-accounts"): [(gl_account_row(i, row, t), t, True) for i, row in enumerate(GL_ACCOUNTS)],
        ("settings", "business-units"): [(business_unit(i, n, t), t, True) for i, n in BUSINESS_UNITS],
        ("jpm", "job-types"): [(job_type(i, n, t), t, True) for i, n in JOB_TYPES],
        ("inventory", "vendors"): [(vendor(i, n, t + timedelta(minutes=i)), t + timedelta(minutes=i), True)
                                   for i, n in VENDORS],
        ("jpm", "jobs"): [], ("accounting", "invoices"): [], ("inventory", "purchase-orders"): [],
        ("accounting", "inventory-bills"): [],
    }
    statuses = ["Completed"] * 6 + ["InProgress", "Canceled"]
    jobs: list[dict[str, Any]] = []
    for n, status in enumerate(statuses):
        moment = t + timedelta(hours=2 + n)
        unit, kind = BUSINESS_UNITS[n % 3], JOB_TYPES[n % 3]
        items, labor, material, price_total = invoice_items(n, 50001 + n * 10, 3, moment)
        row = job(1001 + n, unit, kind, status, moment, labor, material)
        jobs.append(row)
        data[("jpm", "jobs")].append((row, moment, True))
        if status == "Completed":
            data[("accounting", "invoices")].append(
                (invoice(5001 + n, row, unit, kind[1], items, price_total, moment), moment, True))
    for n in range(4):  # counter sales: invoices without a job, which carry no job cost
        moment = t + timedelta(hours=10 + n)
        unit = BUSINESS_UNITS[n % 3]
        items, _, _, _ = invoice_items(n + 3, 51001 + n * 10, 3, moment)
        items = [i for i in items if i["type"] == "Material"]
        price_total = sum((Decimal(i["total"]) for i in items), Decimal("0"))
        data[("accounting", "invoices")].append((invoice(5101 + n, None, unit, "", items, price_total, moment),
                                                 moment, True))
    for n in range(5):
        moment = t + timedelta(days=1, hours=n)
        vendor_row, unit = VENDORS[n % 4], BUSINESS_UNITS[n % 3]
        job_row = jobs[n] if n < 3 else None
        lines = [(sku, text, cost, Decimal(2 + k)) for k, (sku, text, cost) in enumerate(MATERIALS[n % 3:n % 3 + 2])]
        po = purchase_order(7001 + n, vendor_row[0], job_row, unit[0], lines, Decimal("12.40") + n,
                            Decimal("25.00") if n % 2 else Decimal("0"), moment)
        data[("inventory", "purchase-orders")].append((po, moment, True))
        bill = inventory_bill(8001 + n, po, vendor_row, unit, job_row, moment, numeric_bill_amounts)
        voided = n == 4  # voided an hour after entry: inactive, seen only through the export feed
        data[("accounting", "inventory-bills")].append(
            (bill, moment + timedelta(hours=1) if voided else moment, not voided))
    return data


def bulk_data(records: int, lines: int = 5, vendors: int = 50, jobs: int | None = None,
              numeric_bill_amounts: bool = False) -> dict[tuple[str, str], Rows]:
    """``records`` inventory bills (each with its PO) of ``lines`` items, and ``jobs`` (default
    ``records``) completed jobs each with one invoice of ``lines`` items; every reference resolves.

    Five templates per kind are copied with new ids and times (nested parts shared, as the
    simulator never edits a record in place), so 100,000 of each take seconds, not minutes.
    """
    jobs = records if jobs is None else jobs
    t = SEED_TIME
    data = demo_data(numeric_bill_amounts)
    vendor_rows = [(100 + i, f"Bulk Vendor {i:05d}") for i in range(vendors)]
    data[("inventory", "vendors")] = [(vendor(i, n, t), t, True) for i, n in vendor_rows]
    job_templates, invoice_templates, po_templates, bill_templates = [], [], [], []
    for k in range(5):
        unit, kind = BUSINESS_UNITS[k % 3], JOB_TYPES[k % 3]
        items, labor, material, price_total = invoice_items(k, 0, lines, t)
        job_row = job(100_001 + k, unit, kind, "Completed", t, labor, material)
        job_templates.append(job_row)
        invoice_templates.append(invoice(200_001 + k, job_row, unit, kind[1], items, price_total, t))
        po_lines = [(*MATERIALS[(k + j) % 5][:3], Decimal(1 + j % 3)) for j in range(lines)]
        vendor_row = vendor_rows[k % vendors]
        po = purchase_order(300_001 + k, vendor_row[0], job_row, unit[0], po_lines, Decimal("5.00"), Decimal("0"), t)
        po_templates.append(po)
        bill_templates.append(inventory_bill(400_001 + k, po, vendor_row, unit, job_row, t, numeric_bill_amounts))
    was_enabled = gc.isenabled()
    gc.disable()  # millions of small dicts: the collector would rescan them all, again and again
    try:
        job_rows: Rows = []
        invoices: Rows = []
        for n in range(jobs):
            moment = t + timedelta(seconds=n)
            at = stamp(moment)
            job_id = 100_001 + n
            template = job_templates[n % 5]
            job_rows.append(({**template, "id": job_id, "jobNumber": str(job_id), "completedOn": at,
                              "modifiedOn": at}, moment, True))
            inv = invoice_templates[n % 5]
            own = [{**item, "id": 1_000_000 + n * lines + k} for k, item in enumerate(inv["items"])]
            invoices.append(({**inv, "id": 200_001 + n, "referenceNumber": str(200_001 + n), "invoiceDate": at,
                              "modifiedOn": at, "job": {**inv["job"], "id": job_id, "number": str(job_id)},
                              "items": own}, moment, True))
        pos: Rows = []
        bills: Rows = []
        for n in range(records):
            moment = t + timedelta(seconds=n)
            at = stamp(moment)
            job_id = 100_001 + n % jobs if jobs else None
            vendor_id, vendor_name = vendor_rows[n % vendors]
            po_id, bill_id = 300_001 + n, 400_001 + n
            po = po_templates[n % 5]
            pos.append(({**po, "id": po_id, "number": f"PO-{po_id}", "jobId": job_id, "vendorId": vendor_id,
                         "vendorDocumentNumber": f"VINV-{po_id}", "receivedOn": at, "modifiedOn": at,
                         "items": [{**item, "id": po_id * 10 + k} for k, item in enumerate(po["items"])]},
                        moment, True))
            bill = bill_templates[n % 5]
            bills.append(({**bill, "id": bill_id, "purchaseOrderId": po_id, "referenceNumber": str(bill_id),
                           "vendorNumber": f"VINV-{po_id}", "billDate": at, "createdOn": at,
                           "vendor": {"id": vendor_id, "name": vendor_name}, "jobId": job_id,
                           "jobNumber": str(job_id) if job_id else None}, moment, True))
    finally:
        if was_enabled:
            gc.enable()
    data[("jpm", "jobs")] = job_rows
    data[("accounting", "invoices")] = invoices
    data[("inventory", "purchase-orders")] = pos
    data[("accounting", "inventory-bills")] = bills
    return data
