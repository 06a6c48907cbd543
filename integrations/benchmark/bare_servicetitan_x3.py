"""The bare client for ServiceTitan → Sage X3: the calls a hand-written script would make, nothing else.

Plain ``requests``, no database, no bookkeeping, no retries, no audit. One ServiceTitan token
(client credentials), the app key on every call; every list read whole at 5000 a page, the
inventory bills through the export feed; the four X3 reference classes through ``$query`` at the
largest page the benchmark X3 serves. Codes are matched in memory as the portal's suggestions
match them once approved (job type → the accounts described "<name> labor" / "<name> materials",
business unit → the cost center described by its name, vendor → the supplier of the same name,
purchase order and GL account → the X3 record of the same number). Then one ``$create`` per
completed job (a balanced GACCENTRY) and one per active bill (a PINVOICE), bodies as the flow
builds them, amounts exact JSON numbers, ``write_concurrency`` of them in flight at once (the
same number as the portal's X3 connection is given, so both make the same calls the same way).

Run in its own process by the benchmark: ``python -m integrations.benchmark.bare_servicetitan_x3
CONFIG.json``; prints one JSON line of figures.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import requests

from integrations.benchmark.bare_servicenow import run_bare
from integrations.systems.http import exact_json

CENT = Decimal("0.01")
ZERO = Decimal("0")
JSON_BODY = {"Content-Type": "application/json"}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _money(value: Any) -> Decimal:
    return ZERO if value in (None, "") else Decimal(str(value).strip())


class BareRun:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.st_url = config["st_url"].rstrip("/")
        self.x3_url = config["x3_url"].rstrip("/")
        self.tenant = config["tenant"]
        self.st_page = int(config["st_page_size"])
        self.x3_page = int(config["x3_page_size"])
        self.folder = config["folder"]
        self.st = requests.Session()
        self.st.headers.update({"Accept": "application/json", "ST-App-Key": config["app_key"]})
        self.x3 = requests.Session()
        self.x3.auth = tuple(config["x3_basic"])
        self.x3.headers["Accept"] = "application/json"
        self.reads: dict[str, int] = {}
        self.writes: dict[str, int] = {}
        self.calls = {"read": 0, "write": 0, "auth": 0}

    # --- ServiceTitan ---------------------------------------------------------------------------
    def token(self) -> None:
        client_id, secret = self.config["st_client"]
        response = self.st.post(f"{self.st_url}/connect/token", timeout=60, data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
        self.calls["auth"] += 1
        response.raise_for_status()
        self.st.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _st_get(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self.st.get(f"{self.st_url}/{name.replace('/', f'/v2/tenant/{self.tenant}/', 1)}",
                               params=params, timeout=120)
        self.calls["read"] += 1
        response.raise_for_status()
        return json.loads(response.content, parse_float=Decimal)

    def st_list(self, name: str) -> list[dict[str, Any]]:
        """Every record of ``module/resource``, page after page until ``hasMore`` is false."""
        rows: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self._st_get(name, {"page": page, "pageSize": self.st_page})
            rows += body["data"]
            if not body.get("hasMore") or not body["data"]:
                break
            page += 1
        self.reads[name] = len(rows)
        return rows

    def st_export(self, name: str) -> list[dict[str, Any]]:
        """Every record of ``module/export/resource``, ``continueFrom`` after ``continueFrom``."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        while True:
            body = self._st_get(name, params)
            rows += body["data"]
            if not body.get("hasMore"):
                break
            params = {"from": body["continueFrom"]}
        self.reads[name] = len(rows)
        return rows

    # --- Sage X3 --------------------------------------------------------------------------------
    def x3_rows(self, klass: str, key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in self._x3_pages(klass, key):
            rows += page
        self.reads[klass] = len(rows)
        return rows

    def _x3_pages(self, klass: str, key: str) -> Iterator[list[dict[str, Any]]]:
        url: str | None = f"{self.x3_url}/api1/x3/erp/{self.folder}/{klass}"
        params: dict[str, Any] | None = {"representation": f"{klass}.$query", "count": self.x3_page,
                                         "orderBy": f"UPDDATTIM asc, {key} asc"}
        while url:
            response = self.x3.get(url, params=params, timeout=120)
            self.calls["read"] += 1
            response.raise_for_status()
            body = json.loads(response.content, parse_float=Decimal)
            yield body.get("$resources") or []
            url = ((body.get("$links") or {}).get("$next") or {}).get("$url")
            params = None

    def x3_create_all(self, klass: str, bodies: list[dict[str, Any]]) -> None:
        """One ``$create`` per body, ``write_concurrency`` at a time (as the portal's connection is set)."""
        workers = max(1, int(self.config.get("write_concurrency") or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for response in pool.map(lambda body: self._x3_create(klass, body), bodies):
                self.calls["write"] += 1
                if response.status_code >= 400:
                    raise RuntimeError(f"{klass} $create refused: HTTP {response.status_code} {response.text[:300]}")
                self.writes[klass] = self.writes.get(klass, 0) + 1

    def _x3_create(self, klass: str, body: dict[str, Any]) -> requests.Response:
        return self.x3.post(f"{self.x3_url}/api1/x3/erp/{self.folder}/{klass}", data=exact_json(body),
                            params={"representation": f"{klass}.$create"}, headers=JSON_BODY, timeout=120)

    # --- the transfer ---------------------------------------------------------------------------
    def run(self) -> None:
        self.token()
        job_types = self.st_list("jpm/job-types")
        units = self.st_list("settings/business-units")
        st_accounts = self.st_list("accounting/gl-accounts")
        vendors = self.st_list("inventory/vendors")
        orders = self.st_list("inventory/purchase-orders")
        jobs = self.st_list("jpm/jobs")
        bills = self.st_export("accounting/export/inventory-bills")
        accounts = self.x3_rows("GACCOUNT", "ACC")
        centers = self.x3_rows("CACCE", "CCE")
        suppliers = self.x3_rows("BPSUPPLIER", "BPSNUM")
        x3_orders = self.x3_rows("PORDER", "POHNUM")

        by_label = {_text(row["DES"]).strip(): row["ACC"] for row in accounts}
        codes = {row["ACC"] for row in accounts}
        labor = {_text(t["id"]): by_label.get(f"{_text(t['name']).strip()} labor") for t in job_types}
        material = {_text(t["id"]): by_label.get(f"{_text(t['name']).strip()} materials") for t in job_types}
        center_of_name = {_text(row["DES"]).strip(): row["CCE"] for row in centers}
        center = {_text(u["id"]): center_of_name.get(_text(u["name"]).strip()) for u in units}
        supplier_of_name = {_text(row["BPSNAM"]).strip(): row["BPSNUM"] for row in suppliers}
        supplier = {_text(v["id"]): supplier_of_name.get(_text(v["name"]).strip()) for v in vendors}
        x3_lines = {row["POHNUM"]: [(_text(line["ITMREF"]).strip(), _text(line["POPLIN"]))
                                    for line in row.get("PORDERP") or []] for row in x3_orders}
        order = {_text(po["id"]): _text(po["number"]).strip() for po in orders
                 if _text(po["number"]).strip() in x3_lines}
        account = {_text(a["number"]).strip(): _text(a["number"]).strip() for a in st_accounts
                   if _text(a["number"]).strip() in codes}

        entries = [self.journal_entry(job, labor, material, center) for job in jobs]
        self.x3_create_all("GACCENTRY", [body for body in entries if body])
        self.x3_create_all("PINVOICE", [self.supplier_invoice(bill, supplier, center, order, x3_lines, account)
                                        for bill in bills if bill.get("active") is not False])

    def journal_entry(self, job: dict[str, Any], labor: dict[str, Any], material: dict[str, Any],
                      center: dict[str, Any]) -> dict[str, Any] | None:
        """The job's balanced GACCENTRY, or None when it has nothing to post (as the flow skips it)."""
        if _text(job.get("jobStatus")) != "Completed":
            return None
        custom = {_text(f.get("name")).strip().lower(): f.get("value") for f in job.get("customFields") or []}
        costs = {"labor": _money(custom.get("laborcost")), "material": _money(custom.get("materialcost"))}
        if not any(costs.values()):
            return None
        type_id, cost_center = _text(job.get("jobTypeId")), center[_text(job.get("businessUnitId"))]
        mapped = {"labor": labor[type_id], "material": material[type_id]}
        lines = [(mapped[kind], cost_center, 1, costs[kind], word)
                 for kind, word in (("labor", "Labor"), ("material", "Materials")) if costs[kind]]
        lines.append((self.config["journal_offset_account"], "", -1, sum(costs.values(), ZERO), "Job costs"))
        return {"TYP": self.config["journal_type"], "ACCDAT": _text(job.get("completedOn")).strip()[:10],
                "REF": f"ST-JOB-{job['id']}",
                "DESVCR": f"ServiceTitan job {_text(job.get('jobNumber') or job['id'])}"[:60],
                "CUR": self.config["currency"],
                "GACCENTRYD": [{"LIN": n, "ACC": acc, "CCE": cce, "SNS": sense, "AMTCUR": Decimal(str(value)),
                                "DES": words} for n, (acc, cce, sense, value, words) in enumerate(lines, start=1)]}

    def supplier_invoice(self, bill: dict[str, Any], supplier: dict[str, Any], center: dict[str, Any],
                         order: dict[str, str], x3_lines: dict[str, list[tuple[str, str]]],
                         account: dict[str, str]) -> dict[str, Any]:
        """The bill's PINVOICE: its items against the order's lines (by sku), then tax and freight."""
        cost_center = center[_text((bill.get("businessUnit") or {}).get("id"))]
        po = order[_text(bill["purchaseOrderId"])] if bill.get("purchaseOrderId") else ""
        free = list(x3_lines.get(po, []))
        lines: list[dict[str, Any]] = []
        for item in bill.get("items") or []:
            quantity, cost = _money(item.get("quantity")), _money(item.get("cost"))
            sku = _text(item.get("name")).strip()
            po_line = next((n for code, n in free if code == sku), "")
            free = [entry for entry in free if entry[1] != po_line]
            line: dict[str, Any] = {"PIDLIN": len(lines) + 1, "AMTNOTLIN": (quantity * cost).quantize(CENT),
                                    "ACC": account[_text((item.get("generalLedgerAccount") or {}).get("number")).strip()]}
            if po:
                line["POHNUM"] = po
            if sku:
                line["ITMREF"] = sku
            if cost_center:
                line["CCE"] = cost_center
            if po_line:
                line["POPLIN"] = int(po_line)
            line["QTYUOM"], line["NETPRI"] = quantity, cost
            lines.append(line)
        tax = _money(bill.get("taxAmount"))
        for what, value, setting in (("tax", tax, "bill_tax_account"),
                                     ("freight", _money(bill.get("shippingAmount")), "bill_freight_account")):
            if value:
                line = {"PIDLIN": len(lines) + 1, "AMTNOTLIN": value, "ACC": self.config[setting], "ITMREF": what}
                if cost_center:
                    line["CCE"] = cost_center
                lines.append(line)
        total = _money(bill.get("billAmount"))
        date = _text(bill.get("billDate")).strip()[:10]
        return {"BPR": supplier[_text((bill.get("vendor") or {}).get("id"))],
                "BPRVCR": _text(bill.get("referenceNumber")).strip() or f"ST-BILL-{bill['id']}",
                "BPRDAT": date, "ACCDAT": date, "CUR": self.config["currency"], "AMTNOT": total - tax,
                "AMTATI": total, "PINVOICED": lines}


def main(argv: list[str] | None = None) -> int:
    return run_bare(BareRun, argv)


if __name__ == "__main__":
    sys.exit(main())
