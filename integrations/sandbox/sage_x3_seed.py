"""Deterministic Sage X3 data for the demo and for benchmarks.

Pure data generation: each function returns typed records per class (``Decimal`` amounts,
``date``/aware ``datetime`` values), ready to be stored by the simulator. The demo set is a
small but coherent purchasing ledger: invoices reference existing purchase orders and PO
lines, their supplier and currency follow the PO, amounts add up to the cent, and exactly six
invoices carry GL account ``61200`` on one line; that account is deliberately left unmapped
in ServiceNow so those invoices get held for review.

:func:`field_service_data` and :func:`field_service_bulk` build a second folder, ``FIELD``: the X3
ledger of the ServiceTitan demo contractor (servicetitan_seed), into which the portal posts job
cost journal entries and supplier invoices; its accounts, cost centers, suppliers and purchase
orders answer to ServiceTitan's job types, GL accounts, business units, vendors and POs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import servicetitan_seed as st

CENT = Decimal("0.01")
VAT = Decimal("1.2")
UNMAPPED_ACCOUNT = "61200"

GL_ACCOUNTS = [
    ("60100", "Raw materials"),
    ("60200", "Freight in"),
    ("60300", "Packaging materials"),
    ("60400", "Subcontracting"),
    ("60500", "Office supplies"),
    ("60600", "IT equipment"),
    ("60700", "Software subscriptions"),
    ("60800", "Maintenance and repairs"),
    ("60900", "Utilities"),
    ("61000", "Professional fees"),
    ("61100", "Travel and accommodation"),
    ("61200", "Miscellaneous purchases"),
]

COST_CENTERS = [
    ("CC100", "Production"),
    ("CC200", "Logistics"),
    ("CC300", "Sales and marketing"),
    ("CC400", "Administration"),
    ("CC500", "Research and development"),
    ("CC600", "Information technology"),
]

# name, short name, country, currency, payment term, address, city, postcode, phone, web, contact
SUPPLIERS = [
    ("Acier Rhône-Alpes SAS", "ACIERRA", "FR", "EUR", "60EOM", "14 rue de l'Industrie", "Lyon", "69007", "+33 4 72 10 20 30", "www.acier-ra.fr", "Claire Martin"),
    ("Northern Packaging Ltd", "NORTHPACK", "GB", "GBP", "30NET", "Unit 4, Riverside Park", "Leeds", "LS11 5DG", "+44 113 496 0123", "www.northernpackaging.co.uk", "James Whitaker"),
    ("Pacific Freight Lines Inc", "PACFREIGHT", "US", "USD", "30NET", "2200 Harbor Blvd", "Long Beach", "90813", "+1 562 555 0142", "www.pacificfreightlines.com", "Maria Gonzalez"),
    ("Kunststoffwerk Bayern GmbH", "KUNSTBAY", "DE", "EUR", "45NET", "Industriestraße 12", "Augsburg", "86167", "+49 821 555 4410", "www.kunststoffwerk-bayern.de", "Stefan Huber"),
    ("Bureau Vallée Pro", "BVPRO", "FR", "EUR", "30NET", "3 avenue des Champs Pierreux", "Nanterre", "92000", "+33 1 41 20 55 00", "www.bureauvallee-pro.fr", "Sophie Laurent"),
    ("TechSource Distribution BV", "TECHSRC", "NL", "EUR", "30NET", "Hoogoorddreef 54", "Amsterdam", "1101 BE", "+31 20 555 7788", "www.techsource.nl", "Pieter de Vries"),
    ("CloudWorks Software Ltd", "CLOUDWRK", "GB", "GBP", "CASH", "88 Wood Street", "London", "EC2V 7RS", "+44 20 7946 0321", "www.cloudworks.io", "Priya Shah"),
    ("Maintenance Industrielle du Nord", "MAINTNORD", "FR", "EUR", "60EOM", "ZI des Hauts de France, lot 7", "Lille", "59000", "+33 3 20 55 66 77", "www.min-services.fr", "Julien Lefebvre"),
    ("EDF Entreprises", "EDFENT", "FR", "EUR", "30NET", "22-30 avenue de Wagram", "Paris", "75008", "+33 9 69 32 15 15", "www.edf.fr/entreprises", "Service clients"),
    ("Hartley & Cole LLP", "HARTCOLE", "GB", "GBP", "30NET", "1 King's Bench Walk", "London", "EC4Y 7DB", "+44 20 7946 0877", "www.hartleycole.co.uk", "Oliver Hartley"),
    ("Voyages Affaires Europe", "VOYAFF", "FR", "EUR", "30NET", "10 place de la Bourse", "Bordeaux", "33000", "+33 5 56 00 11 22", "www.voyages-affaires.eu", "Nathalie Roux"),
    ("Midwest Steel Supply Co", "MWSTEEL", "US", "USD", "45NET", "5100 W 73rd St", "Chicago", "60638", "+1 312 555 0199", "www.midweststeelsupply.com", "Robert Kowalski"),
    ("Cartonnages de Bretagne", "CARTBZH", "FR", "EUR", "45NET", "Route de Lorient", "Rennes", "35000", "+33 2 99 55 12 34", "www.cartonnages-bretagne.fr", "Yann Le Goff"),
    ("Transports Girard & Fils", "TRGIRARD", "FR", "EUR", "30NET", "ZA du Moulin", "Valence", "26000", "+33 4 75 55 98 76", "www.transports-girard.fr", "Marc Girard"),
    ("Precision Machining Partners", "PRECMACH", "US", "USD", "30NET", "410 Industrial Pkwy", "Dayton", "45414", "+1 937 555 0110", "www.precisionmachining.com", "Linda Park"),
    ("Elektro Schmidt KG", "ELSCHMIDT", "DE", "EUR", "30NET", "Hauptstraße 88", "Stuttgart", "70173", "+49 711 555 2020", "www.elektro-schmidt.de", "Anna Schmidt"),
    ("Office Depot Europe", "ODEUROPE", "NL", "EUR", "30NET", "Columbusweg 33", "Venlo", "5928 LA", "+31 77 555 3000", "www.officedepot.eu", "Customer Care"),
    ("Datacenter Services SARL", "DCSERV", "FR", "EUR", "30NET", "45 rue Jean Jaurès", "Toulouse", "31000", "+33 5 61 55 44 33", "www.dc-services.fr", "Thomas Bernard"),
    ("Alliance Conseil Audit", "ALLCONSEIL", "FR", "EUR", "60EOM", "5 cours Mirabeau", "Aix-en-Provence", "13100", "+33 4 42 55 66 00", "www.alliance-conseil.fr", "Isabelle Moreau"),
    ("Thames Valley Utilities", "TVUTIL", "GB", "GBP", "30NET", "Kings Meadow Road", "Reading", "RG1 8DQ", "+44 118 496 0456", "www.tvutilities.co.uk", "Accounts team"),
    ("Polymères Avancés SA", "POLYAV", "FR", "EUR", "45NET", "Parc Technologique, bât. C", "Grenoble", "38000", "+33 4 76 55 21 21", "www.polymeres-avances.fr", "Hélène Dubois"),
    ("Great Lakes Logistics LLC", "GLLOG", "US", "USD", "30NET", "900 Lakeshore Dr", "Cleveland", "44114", "+1 216 555 0175", "www.greatlakeslogistics.com", "Kevin O'Brien"),
    ("Iberia Componentes SL", "IBERCOMP", "ES", "EUR", "60EOM", "Calle de Alcalá 120", "Madrid", "28009", "+34 91 555 6677", "www.iberiacomponentes.es", "Lucía Fernández"),
    ("Nordic Tools AB", "NORDTOOLS", "SE", "EUR", "30NET", "Industrivägen 5", "Göteborg", "417 05", "+46 31 555 1200", "www.nordictools.se", "Erik Lindqvist"),
    ("Atelier Maintenance Express", "ATMAINT", "FR", "EUR", "CASH", "8 impasse des Artisans", "Nantes", "44000", "+33 2 40 55 77 88", "www.atelier-maintenance.fr", "Paul Renaud"),
]

# item, description, unit, price range (cents), default GL account
ITEMS = [
    ("RM-STL-001", "Steel sheet 2mm", "KG", (180, 420), "60100"),
    ("RM-ALU-002", "Aluminium profile 6060", "M", (650, 1450), "60100"),
    ("RM-PLS-003", "ABS granules", "KG", (210, 390), "60100"),
    ("RM-CMP-004", "Bearing assembly 6204", "UN", (450, 980), "60100"),
    ("FR-TRK-010", "Road freight, pallet", "UN", (4500, 12500), "60200"),
    ("FR-SEA-011", "Sea freight, container share", "UN", (35000, 90000), "60200"),
    ("PK-BOX-020", "Corrugated box 40x30x30", "UN", (85, 240), "60300"),
    ("PK-FLM-021", "Stretch film roll", "UN", (1200, 2600), "60300"),
    ("SC-MCH-030", "Subcontracted machining", "H", (4500, 8500), "60400"),
    ("OF-PAP-040", "Copy paper A4, box", "UN", (2200, 3900), "60500"),
    ("IT-LAP-050", "Laptop 14in", "UN", (85000, 160000), "60600"),
    ("IT-MON-051", "Monitor 27in", "UN", (21000, 39000), "60600"),
    ("SW-SUB-060", "SaaS licence, monthly seat", "UN", (1500, 6500), "60700"),
    ("MT-SRV-070", "Preventive maintenance visit", "UN", (25000, 65000), "60800"),
    ("UT-ELC-080", "Electricity consumption", "KWH", (14, 32), "60900"),
    ("PF-AUD-090", "Audit and advisory fees", "H", (12000, 25000), "61000"),
    ("TR-HTL-100", "Hotel night", "UN", (9000, 21000), "61100"),
]


def cents(value: Decimal) -> Decimal:
    """Round half-up to the cent, as the ledger does."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _stamp(day: datetime, seconds: int) -> datetime:
    return day + timedelta(seconds=seconds)


def demo_data() -> dict[str, list[dict[str, Any]]]:
    """The demo ledger for folder SEED; same output on every call."""
    rng = random.Random(20260105)
    loaded = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)  # reference data loaded in one go: one shared second
    data: dict[str, list[dict[str, Any]]] = {
        "GACCOUNT": [{"ACC": acc, "DES": des, "COA": "PCG", "UPDDATTIM": loaded} for acc, des in GL_ACCOUNTS],
        "CACCE": [{"CCE": cce, "DES": des, "DIE": "CCT", "UPDDATTIM": loaded} for cce, des in COST_CENTERS],
        "BPSUPPLIER": [],
        "PORDER": [],
        "PINVOICE": [],
    }
    for index, row in enumerate(SUPPLIERS, start=1):
        name, short, cry, cur, pte, addr, city, postcode, tel, web, contact = row
        data["BPSUPPLIER"].append({
            "BPSNUM": f"SUP{index:03d}", "BPSNAM": name, "BPSSHO": short, "CRY": cry, "CUR": cur, "PTE": pte,
            "BPAADDLIG": addr, "CTY": city, "POSCOD": postcode, "TEL": tel, "WEB": web, "CNTNAM": contact,
            # suppliers migrated in batches of five: five records per second
            "UPDDATTIM": _stamp(datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC), (index - 1) // 5),
        })
    suppliers = data["BPSUPPLIER"]

    orders_by_supplier: dict[str, list[dict[str, Any]]] = {}
    for index in range(1, 41):
        supplier = suppliers[(index * 7) % len(suppliers)]
        ordered = date(2026, 1, 5) + timedelta(days=(index // 2) * 2)
        lines = []
        for line_no in range(1, rng.randint(1, 4) + 1):
            item, desc, unit, (low, high), _acc = rng.choice(ITEMS)
            qty = Decimal(rng.randint(1, 60))
            price = cents(Decimal(rng.randint(low, high)) / 100)
            lines.append({"POPLIN": line_no * 1000, "ITMREF": item, "ITMDES": desc, "QTYUOM": qty, "PUU": unit,
                          "GROPRI": price, "LINAMT": cents(qty * price)})
        order = {
            "POHNUM": f"PO{index:05d}", "BPSNUM": supplier["BPSNUM"], "ORDDAT": ordered, "CUR": supplier["CUR"],
            "TOTAMTNOT": sum((line["LINAMT"] for line in lines), Decimal("0.00")),
            # entered in pairs: two orders share each order date and UPDDATTIM second
            "UPDDATTIM": datetime.combine(ordered, datetime.min.time(), UTC) + timedelta(hours=10),
            "PORDERP": lines,
        }
        data["PORDER"].append(order)
        orders_by_supplier.setdefault(order["BPSNUM"], []).append(order)

    account_of_item = {item[0]: item[4] for item in ITEMS}
    held = {4, 13, 22, 31, 44, 55}  # invoices with one line on the unmapped account
    cost_centers = [cce for cce, _ in COST_CENTERS]
    for index in range(1, 61):
        order = data["PORDER"][(index * 13) % 40]
        candidates = [(o, line) for o in orders_by_supplier[order["BPSNUM"]] for line in o["PORDERP"]]
        candidates.sort(key=lambda pair: (pair[0] is not order, pair[0]["POHNUM"], pair[1]["POPLIN"]))
        wanted = min(rng.randint(1, 5), len(candidates))
        chosen = candidates[:1] + rng.sample(candidates[1:], wanted - 1)
        lines = []
        for line_no, (po, po_line) in enumerate(chosen, start=1):
            qty = Decimal(rng.randint(1, int(po_line["QTYUOM"])))
            lines.append({
                "PIDLIN": line_no * 1000, "POHNUM": po["POHNUM"], "POPLIN": po_line["POPLIN"],
                "ITMREF": po_line["ITMREF"], "QTYUOM": qty, "NETPRI": po_line["GROPRI"],
                "AMTNOTLIN": cents(qty * po_line["GROPRI"]), "ACC": account_of_item[po_line["ITMREF"]],
                "CCE": rng.choice(cost_centers),
            })
        if index in held:
            lines[-1]["ACC"] = UNMAPPED_ACCOUNT
        amount = sum((line["AMTNOTLIN"] for line in lines), Decimal("0.00"))
        invoiced = order["ORDDAT"] + timedelta(days=rng.randint(5, 25))
        data["PINVOICE"].append({
            "NUM": f"PI{index:05d}", "BPR": order["BPSNUM"], "BPRVCR": f"F{invoiced:%y%m}-{index * 37 % 1000:03d}",
            "BPRDAT": invoiced, "ACCDAT": invoiced + timedelta(days=rng.randint(0, 3)), "CUR": order["CUR"],
            "AMTNOT": amount, "AMTATI": cents(amount * VAT),
            # posted in small batches after the last accounting date: three invoices per second
            "UPDDATTIM": _stamp(datetime(2026, 3, 16, 9, 0, 0, tzinfo=UTC), ((index - 1) // 3) * 6 * 3600),
            "PINVOICED": lines,
        })
    return data


def bulk_data(
    n_invoices: int,
    lines_per_invoice: int = 3,
    suppliers: int = 50,
    same_timestamp_groups: int | None = None,
    start: datetime | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(class, record)`` pairs for a benchmark ledger, generated lazily and cheaply.

    Each invoice gets its own purchase order with matching lines. ``same_timestamp_groups`` is
    the number of distinct ``UPDDATTIM`` seconds the invoices are spread over (default: fifty
    invoices per second), so a benchmark can force many records to share one timestamp.
    """
    start = start or datetime(2026, 4, 1, 0, 0, 0, tzinfo=UTC)
    groups = max(1, same_timestamp_groups or (n_invoices + 49) // 50)
    for index in range(1, suppliers + 1):
        name, short, cry, cur, pte, addr, city, postcode, tel, web, contact = SUPPLIERS[(index - 1) % len(SUPPLIERS)]
        yield "BPSUPPLIER", {
            "BPSNUM": f"BSUP{index:05d}", "BPSNAM": f"{name} #{index}", "BPSSHO": short, "CRY": cry, "CUR": cur,
            "PTE": pte, "BPAADDLIG": addr, "CTY": city, "POSCOD": postcode, "TEL": tel, "WEB": web, "CNTNAM": contact,
            "UPDDATTIM": start,
        }
    accounts = [acc for acc, _ in GL_ACCOUNTS if acc != UNMAPPED_ACCOUNT]
    cost_centers = [cce for cce, _ in COST_CENTERS]
    for index in range(1, n_invoices + 1):
        supplier = f"BSUP{(index % suppliers) + 1:05d}"
        currency = SUPPLIERS[index % suppliers % len(SUPPLIERS)][3]
        stamp = start + timedelta(seconds=1 + (index - 1) * groups // n_invoices)
        po_lines, inv_lines = [], []
        for line_no in range(1, lines_per_invoice + 1):
            item = ITEMS[(index + line_no) % len(ITEMS)]
            qty = Decimal((index * line_no) % 17 + 1)
            price = cents(Decimal(item[3][0] + (index * 7919 + line_no) % (item[3][1] - item[3][0])) / 100)
            amount = cents(qty * price)
            po_lines.append({"POPLIN": line_no * 1000, "ITMREF": item[0], "ITMDES": item[1], "QTYUOM": qty,
                             "PUU": item[2], "GROPRI": price, "LINAMT": amount})
            inv_lines.append({"PIDLIN": line_no * 1000, "POHNUM": f"BPO{index:07d}", "POPLIN": line_no * 1000,
                              "ITMREF": item[0], "QTYUOM": qty, "NETPRI": price, "AMTNOTLIN": amount,
                              "ACC": accounts[(index + line_no) % len(accounts)],
                              "CCE": cost_centers[(index + line_no) % len(cost_centers)]})
        total = sum((line["AMTNOTLIN"] for line in inv_lines), Decimal("0.00"))
        day = (start + timedelta(days=(index % 28))).date()
        yield "PORDER", {"POHNUM": f"BPO{index:07d}", "BPSNUM": supplier, "ORDDAT": day, "CUR": currency,
                         "TOTAMTNOT": total, "UPDDATTIM": stamp, "PORDERP": po_lines}
        yield "PINVOICE", {"NUM": f"BPI{index:07d}", "BPR": supplier, "BPRVCR": f"B-{index:07d}", "BPRDAT": day,
                           "ACCDAT": day, "CUR": currency, "AMTNOT": total, "AMTATI": cents(total * VAT),
                           "UPDDATTIM": stamp, "PINVOICED": inv_lines}


# --- the X3 folder of a ServiceTitan contractor (ServiceTitan -> Sage X3) -------------------------
# Coherent with servicetitan_seed.demo_data()/bulk_data(): what the portal reads there finds its
# counterpart here by code, name or number, except one vendor (see FIELD_SUPPLIER_RENAMED).
# Codes, charts and names below are demo choices [U], like the rest of this module.

FIELD_SERVICE_FOLDER = "FIELD"
FIELD_LOADED = datetime(2026, 1, 2, 7, 0, 0, tzinfo=UTC)  # the folder was set up before the ST demo day
FIELD_CHART = "USGAAP"
JOB_COST_OFFSET_ACCOUNT = "21500"  # credited by a job cost entry: the journal offset default
FIELD_EXTRA_ACCOUNTS = [
    (JOB_COST_OFFSET_ACCOUNT, "Accrued job costs"),
    ("21600", "Sales tax payable on purchases"),  # a bill's tax, when posted apart from its lines
]
FIELD_COST_CENTER_CODES = {"Electrical North": "ELN", "Electrical South": "ELS", "Head Office Service": "HOS"}
FIELD_EXTRA_COST_CENTER = ("WHS", "Warehouse and fleet")  # no business unit points at it
# The one ServiceTitan vendor whose X3 supplier has another name: no name match, so the portal's
# mapping gate holds its bills until an operator maps it (to FIELD_SUPPLIER_RENAMED's code).
FIELD_SUPPLIER_RENAMED = {"Tailspin Tools": "Tailspin Toolworks Inc"}


def job_type_accounts(index: int, name: str) -> list[tuple[str, str]]:
    """The labor and materials cost accounts of the ``index``-th ServiceTitan job type:
    51010/51020, 51110/51120, … with descriptions ``"<name> labor"`` and ``"<name> materials"``."""
    base = 51000 + index * 100
    return [(str(base + 10), f"{name} labor"), (str(base + 20), f"{name} materials")]


def _field_accounts() -> list[dict[str, Any]]:
    rows = [(number, name) for number, name, _kind, _detail in st.GL_ACCOUNTS]  # identical codes
    for index, (_type_id, name) in enumerate(st.JOB_TYPES):
        rows += job_type_accounts(index, name)
    rows += FIELD_EXTRA_ACCOUNTS
    return [{"ACC": acc, "DES": des, "COA": FIELD_CHART, "UPDDATTIM": FIELD_LOADED} for acc, des in sorted(rows)]


def _field_cost_centers() -> list[dict[str, Any]]:
    rows = [(FIELD_COST_CENTER_CODES.get(name, f"BU{unit_id}"), name) for unit_id, name in st.BUSINESS_UNITS]
    rows.append(FIELD_EXTRA_COST_CENTER)
    return [{"CCE": cce, "DES": des, "DIE": "CCT", "UPDDATTIM": FIELD_LOADED} for cce, des in rows]


def _field_supplier(code: str, vendor_id: int, name: str, moment: datetime) -> dict[str, Any]:
    short = "".join(ch for ch in name.upper() if ch.isalnum())[:10]
    return {
        "BPSNUM": code, "BPSNAM": name, "BPSSHO": short, "CRY": "US", "CUR": "USD", "PTE": "30NET",
        # the vendor's address and phone as ServiceTitan's demo builds them
        "BPAADDLIG": f"{100 + vendor_id} Main Street", "CTY": "Riverside", "POSCOD": "92501",
        "TEL": f"555-01{vendor_id % 100:02d}", "WEB": None, "CNTNAM": "Accounts Receivable", "UPDDATTIM": moment,
    }


def _po_lines(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """PORDERP from a ServiceTitan PO's items, in their order: POPLIN 1, 2, …; ITMREF the skuCode."""
    return [{"POPLIN": n, "ITMREF": item["skuCode"], "ITMDES": item["description"],
             "QTYUOM": Decimal(item["quantity"]), "PUU": "EA", "GROPRI": Decimal(item["cost"]),
             "LINAMT": cents(Decimal(item["cost"]) * Decimal(item["quantity"]))}
            for n, item in enumerate(items, start=1)]


def _field_order(po: dict[str, Any], supplier: str, lines: list[dict[str, Any]], moment: datetime) -> dict[str, Any]:
    return {"POHNUM": po["number"], "BPSNUM": supplier, "ORDDAT": date.fromisoformat(po["date"][:10]), "CUR": "USD",
            "TOTAMTNOT": sum((line["LINAMT"] for line in lines), Decimal("0.00")), "UPDDATTIM": moment,
            "PORDERP": lines}


def field_service_data() -> dict[str, list[dict[str, Any]]]:
    """The X3 folder of the ServiceTitan demo contractor; same output on every call.

    - GACCOUNT: every ServiceTitan GL account under its own number and name (identical-code
      suggestions), a labor and a materials account per job type (:func:`job_type_accounts`),
      the job cost offset ``21500`` and a purchase tax account;
    - CACCE: one cost center per business unit, described by the unit's name, plus one more;
    - BPSUPPLIER: one supplier per vendor, named like it except ``FIELD_SUPPLIER_RENAMED``;
    - PORDER: one order per ServiceTitan purchase order, under the same number, lines in the
      order of its items.
    """
    data: dict[str, list[dict[str, Any]]] = {
        "GACCOUNT": _field_accounts(), "CACCE": _field_cost_centers(), "BPSUPPLIER": [], "PORDER": [],
    }
    supplier_of: dict[int, str] = {}
    for n, (vendor_id, name) in enumerate(st.VENDORS, start=1):
        code = f"US{n:03d}"
        supplier_of[vendor_id] = code
        data["BPSUPPLIER"].append(_field_supplier(code, vendor_id, FIELD_SUPPLIER_RENAMED.get(name, name),
                                                  FIELD_LOADED + timedelta(minutes=n)))
    for po, moment, _active in st.demo_data()[("inventory", "purchase-orders")]:
        data["PORDER"].append(_field_order(po, supplier_of[po["vendorId"]], _po_lines(po["items"]), moment))
    return data


def field_service_bulk(jobs: int, bills: int, lines: int = 5, vendors: int = 50) -> dict[str, list[dict[str, Any]]]:
    """The X3 side of ``servicetitan_seed.bulk_data(bills, lines, vendors, jobs)``, for a benchmark
    that posts ``jobs`` journal entries and ``bills`` supplier invoices.

    The chart and cost centers are :func:`field_service_data`'s (bulk data keeps ServiceTitan's
    three job types and business units), so ``jobs`` needs no X3 record of its own; it is taken
    to mirror the ServiceTitan call. Suppliers ``BV00000``… are named ``Bulk Vendor 00000``…
    like the bulk vendors (all matched); orders ``PO-300001``… follow the bulk purchase orders,
    vendor ``n % vendors`` and one of five item templates, whose line lists they share (the
    simulator replaces lines on edit, it never changes them in place).
    """
    if jobs < 0 or bills < 0 or lines < 1 or vendors < 1:
        raise ValueError("jobs and bills must be >= 0, lines and vendors >= 1")
    base = field_service_data()
    t = st.SEED_TIME
    suppliers = [_field_supplier(f"BV{i:05d}", 100 + i, f"Bulk Vendor {i:05d}", FIELD_LOADED) for i in range(vendors)]
    templates = []
    for k in range(5):  # servicetitan_seed.bulk_data's PO templates: MATERIALS[(k + j) % 5], quantity 1 + j % 3
        po_lines = []
        for j in range(lines):
            sku, text, cost = st.MATERIALS[(k + j) % 5]
            qty = Decimal(1 + j % 3)
            po_lines.append({"POPLIN": j + 1, "ITMREF": sku, "ITMDES": text, "QTYUOM": qty, "PUU": "EA",
                             "GROPRI": cost, "LINAMT": cents(cost * qty)})
        templates.append((po_lines, sum((line["LINAMT"] for line in po_lines), Decimal("0.00"))))
    ordered = (t - timedelta(days=3)).date()
    orders = []
    for n in range(bills):
        po_lines, total = templates[n % 5]
        orders.append({"POHNUM": f"PO-{300_001 + n}", "BPSNUM": suppliers[n % vendors]["BPSNUM"], "ORDDAT": ordered,
                       "CUR": "USD", "TOTAMTNOT": total, "UPDDATTIM": t + timedelta(seconds=n), "PORDERP": po_lines})
    return {"GACCOUNT": base["GACCOUNT"], "CACCE": base["CACCE"], "BPSUPPLIER": suppliers, "PORDER": orders}
