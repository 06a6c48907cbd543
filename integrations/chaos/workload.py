"""What people do to the outside systems while the chaos runs, on a seeded timeline.

Per tenant, half the records are seeded at start (``--benchmark`` data of the sandbox server)
and the rest are entered while workers are being killed:

- Sage X3 → ServiceNow: an ERP user enters a purchase order and its invoice (two lines) per
  record, edits some invoices (a quantity changes, a line is added) and renames a supplier.
  One new invoice in six books a line on GL account 61200, whose mapping the approver leaves
  undecided: those invoices are held, and must be listed as held (not lost, not posted).
- Sage Intacct ↔ ServiceNow: an ERP user enters AP bills and edits some; an AP clerk approves
  some staged invoices in ServiceNow (posted back to Intacct) and enters a few invoices in
  ServiceNow directly, approved (each must become exactly one Intacct bill).

Every action is idempotent under retries (see :mod:`.outside`); an action whose precondition is
not met yet (the invoice to approve is not in ServiceNow yet) is put back a little later.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from integrations.chaos.outside import X3, Intacct, OutsideError, ServiceNow
from integrations.flows.base import bare_key

VAT = Decimal("1.2")
X3_ACCOUNTS = ["60100", "60200", "60300", "60400", "60500", "60600", "60700", "60800", "60900", "61000", "61100"]
WITHHELD_ACCOUNT = "61200"  # the approver leaves this X3 GL mapping undecided: its invoices stay held
X3_COST_CENTERS = ["CC100", "CC200", "CC300", "CC400", "CC500", "CC600"]
INTACCT_ACCOUNTS = X3_ACCOUNTS + ["61200"]
INTACCT_DEPARTMENTS = ["100", "200", "300", "400", "500", "600"]
SUPPLIERS = 5  # suppliers / vendors seeded per tenant
LINES = 2  # lines per seeded invoice / bill


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


@dataclass
class TenantSpec:
    """One tenant of the run: its pair, its own sandbox servers and how many records it gets."""

    slug: str
    pair: str  # "x3" or "intacct"
    source_url: str
    sn_url: str
    records: int
    initial: int

    @property
    def integration(self) -> str:
        return "x3-to-sn" if self.pair == "x3" else "intacct-sn"

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(order=True)
class Action:
    at: float
    name: str = field(compare=False)
    args: tuple = field(compare=False, default=())
    tries: int = field(compare=False, default=0)


@dataclass
class WorkloadStats:
    done: dict[str, int] = field(default_factory=dict)
    postponed: int = 0
    errors: list[str] = field(default_factory=list)


class Person:
    """Plays one tenant's timeline in its own thread."""

    def __init__(self, spec: TenantSpec, rng: random.Random, duration: float,
                 ready: Callable[[str, str], bool]) -> None:
        self.spec = spec
        self.rng = rng
        self.duration = duration
        self.ready = ready  # ready(tenant slug, what) -> the portal is there (vendor synced, mappings approved)
        self.sn = ServiceNow(spec.sn_url)
        self.stats = WorkloadStats()
        self.actions = sorted(self.plan())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def at(self) -> float:
        return self.rng.uniform(0.03, 0.75) * self.duration

    def plan(self) -> list[Action]:
        raise NotImplementedError

    # --- running --------------------------------------------------------------------------------
    def start(self, t0: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(t0,), name=f"person-{self.spec.slug}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    @property
    def pending(self) -> int:
        return len(self.actions)

    def _run(self, t0: float) -> None:
        try:
            while self.actions and not self._stop.is_set():
                action = self.actions[0]
                wait = t0 + action.at - time.monotonic()
                if wait > 0:
                    self._stop.wait(min(wait, 0.5))
                    continue
                self.actions.pop(0)
                try:
                    done = getattr(self, action.name)(*action.args)
                except Exception as exc:  # noqa: BLE001 - a person's failure is a figure, not a crash
                    self.stats.errors.append(f"{self.spec.slug} {action.name}{action.args}: {exc!r}"[:500])
                    continue
                if done is False:  # not possible yet: try again a little later
                    action.tries += 1
                    self.stats.postponed += 1
                    if action.tries < 400:
                        action.at += 1.0
                        self.actions.append(action)
                        self.actions.sort()
                    else:
                        self.stats.errors.append(f"{self.spec.slug} {action.name}{action.args}: gave up waiting")
                    continue
                self.stats.done[action.name] = self.stats.done.get(action.name, 0) + 1
        finally:
            from django.db import connections

            connections.close_all()

    def finish_now(self) -> None:
        """Run whatever is left at once (the chaos phase is over)."""
        for action in self.actions:
            action.at = 0.0


class X3User(Person):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.x3 = X3(self.spec.source_url)

    def plan(self) -> list[Action]:
        spec = self.spec
        actions = [Action(self.at(), "create", (number,)) for number in range(spec.initial + 1, spec.records + 1)]
        edits = self.rng.sample(range(1, spec.initial + 1), k=min(spec.initial, max(1, spec.records // 6)))
        actions += [Action(self.at(), "edit_invoice", (number,)) for number in edits]
        actions.append(Action(self.at(), "rename_supplier", (self.rng.randint(1, SUPPLIERS),)))
        return actions

    def create(self, number: int) -> bool:
        supplier = f"BSUP{(number % SUPPLIERS) + 1:05d}"
        today = datetime.now(UTC).date().isoformat()
        po = f"CPO{number:07d}"
        po_lines, invoice_lines = [], []
        for line_no in range(1, LINES + 1):
            qty = Decimal(self.rng.randint(1, 20))
            price = cents(Decimal(self.rng.randint(500, 90_000)) / 100)
            amount = cents(qty * price)
            account = WITHHELD_ACCOUNT if number % 6 == 0 and line_no == 2 else self.rng.choice(X3_ACCOUNTS)
            po_lines.append({"POPLIN": line_no * 1000, "ITMREF": f"CH-{line_no:03d}", "ITMDES": f"Chaos item {line_no}",
                             "QTYUOM": qty, "PUU": "UN", "GROPRI": price, "LINAMT": amount})
            invoice_lines.append({"PIDLIN": line_no * 1000, "POHNUM": po, "POPLIN": line_no * 1000,
                                  "ITMREF": f"CH-{line_no:03d}", "QTYUOM": qty, "NETPRI": price, "AMTNOTLIN": amount,
                                  "ACC": account, "CCE": self.rng.choice(X3_COST_CENTERS)})
        total = sum((line["AMTNOTLIN"] for line in invoice_lines), Decimal("0.00"))
        self.x3.create("PORDER", po, {"POHNUM": po, "BPSNUM": supplier, "ORDDAT": today, "CUR": "EUR",
                                      "TOTAMTNOT": total, "PORDERP": po_lines})
        key = f"CPI{number:07d}"
        self.x3.create("PINVOICE", key, {"NUM": key, "BPR": supplier, "BPRVCR": f"C-{number:07d}", "BPRDAT": today,
                                         "ACCDAT": today, "CUR": "EUR", "AMTNOT": total, "AMTATI": cents(total * VAT),
                                         "PINVOICED": invoice_lines})
        return True

    def edit_invoice(self, number: int) -> bool:
        key = f"BPI{number:07d}"
        invoice = self.x3.get("PINVOICE", key)
        if invoice is None:
            raise OutsideError(f"X3 invoice {key} is missing")
        lines = [dict(line) for line in invoice.get("PINVOICED") or []]
        first = lines[0]
        first["QTYUOM"] = Decimal(str(first["QTYUOM"])) + 1
        first["AMTNOTLIN"] = cents(first["QTYUOM"] * Decimal(str(first["NETPRI"])))
        if not any(int(line["PIDLIN"]) == 9000 for line in lines):
            lines.append({"PIDLIN": 9000, "POHNUM": "", "POPLIN": 0, "ITMREF": "CH-EXTRA", "QTYUOM": Decimal(1),
                          "NETPRI": Decimal("42.50"), "AMTNOTLIN": Decimal("42.50"), "ACC": X3_ACCOUNTS[0],
                          "CCE": X3_COST_CENTERS[0]})
        total = sum((Decimal(str(line["AMTNOTLIN"])) for line in lines), Decimal("0.00"))
        self.x3.update("PINVOICE", key, {"AMTNOT": total, "AMTATI": cents(total * VAT), "PINVOICED": lines})
        return True

    def rename_supplier(self, number: int) -> bool:
        key = f"BSUP{number:05d}"
        self.x3.update("BPSUPPLIER", key, {"BPSNAM": f"Renamed supplier {number} ({self.spec.slug})"})
        return True


class IntacctUser(Person):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from integrations.sandbox.intacct_seed import COMPANY_ID, SENDER_ID, SENDER_PASSWORD, USER_ID, USER_PASSWORD

        gateway = self.spec.source_url.rstrip("/") + "/ia/xml/xmlgw.phtml"
        self.intacct = Intacct(gateway, sender=(SENDER_ID, SENDER_PASSWORD), company=COMPANY_ID,
                               user=(USER_ID, USER_PASSWORD))
        self.edits = 0

    def plan(self) -> list[Action]:
        spec = self.spec
        actions = [Action(self.at(), "create", (number,)) for number in range(spec.initial + 1, spec.records + 1)]
        seeded = list(range(1, spec.initial + 1))
        self.rng.shuffle(seeded)
        edits = seeded[:max(1, spec.records // 6)]
        approvals = seeded[len(edits):len(edits) + max(1, spec.records // 10)]
        actions += [Action(self.at(), "edit_bill", (number,)) for number in edits]
        actions += [Action(self.at(), "approve", (number,)) for number in approvals]
        actions += [Action(self.at(), "enter_in_servicenow", (number,))
                    for number in range(1, max(1, spec.records // 15) + 1)]
        return actions

    def _bill(self, record_id: str) -> dict[str, Any] | None:
        found = [row for row in self.intacct.query("APBILL", "RECORDNO,RECORDID") if row.get("RECORDID") == record_id]
        if not found:
            return None
        rows = self.intacct.read("APBILL", [found[0]["RECORDNO"]])
        return rows[0] if rows else None

    def create(self, number: int) -> bool:
        today = datetime.now(UTC).strftime("%m/%d/%Y")
        lines = []
        for line_no in range(1, LINES + 1):
            lines.append({"ACCOUNTNO": self.rng.choice(INTACCT_ACCOUNTS),
                          "TRX_AMOUNT": format(cents(Decimal(self.rng.randint(1_000, 250_000)) / 100), "f"),
                          "DEPARTMENTID": self.rng.choice(INTACCT_DEPARTMENTS), "LOCATIONID": "E100",
                          "ENTRYDESCRIPTION": f"Chaos line {line_no} of bill {number}"})
        values = {"RECORDID": f"CB-{number:07d}", "VENDORID": f"BV{(number % SUPPLIERS) + 1:05d}",
                  "WHENCREATED": today, "DOCNUMBER": f"CHAOS-{number}", "DESCRIPTION": f"Chaos bill {number}",
                  "CURRENCY": "USD", "APBILLITEMS": {"APBILLITEM": lines}}
        self.intacct.write("create", "APBILL", values, f"chaos-create-{self.spec.slug}-{number}")
        return True

    def edit_bill(self, number: int) -> bool:
        bill = self._bill(f"BB-{number:07d}")
        if bill is None:
            raise OutsideError(f"Intacct bill BB-{number:07d} is missing")
        items = []
        for position, line in enumerate(bill.get("APBILLITEMS") or [], start=1):
            amount = Decimal(line["TRX_AMOUNT"]) + (Decimal("10.00") if position == 1 else 0)
            items.append({"ACCOUNTNO": line["ACCOUNTNO"], "TRX_AMOUNT": format(amount, "f"),
                          "DEPARTMENTID": line.get("DEPARTMENTID") or "", "LOCATIONID": line.get("LOCATIONID") or "",
                          "ENTRYDESCRIPTION": line.get("ENTRYDESCRIPTION") or ""})
        self.edits += 1
        self.intacct.write("update", "APBILL", {"RECORDNO": bill["RECORDNO"], "APBILLITEMS": {"APBILLITEM": items}},
                           f"chaos-edit-{self.spec.slug}-{number}")
        return True

    def approve(self, number: int) -> bool:
        """The AP clerk approves a staged invoice once it is in ServiceNow with its lines."""
        bill = self._bill(f"BB-{number:07d}")
        if bill is None:
            raise OutsideError(f"Intacct bill BB-{number:07d} is missing")
        staged = [row for row in self.sn.rows("sn_apo_invoice", f"u_source_keyENDSWITH:{bill['RECORDNO']}",
                                              ["sys_id", "approval", "u_source_key"])
                  if bare_key(row.get("u_source_key") or "") == bill["RECORDNO"]]
        if not staged:
            return False
        lines = self.sn.rows("sn_apo_invoice_line", f"invoice={staged[0]['sys_id']}", ["sys_id"])
        if len(lines) < len(bill.get("APBILLITEMS") or []):
            return False
        self.sn.patch("sn_apo_invoice", staged[0]["sys_id"], {"approval": "approved"})
        return True

    def enter_in_servicenow(self, number: int) -> bool:
        """An invoice keyed in ServiceNow (not from Intacct), approved: it must become one Intacct bill."""
        vendor = f"BV{(number % SUPPLIERS) + 1:05d}"
        if not self.ready(self.spec.slug, f"vendor:{vendor}"):
            return False
        supplier = self.sn.rows("proc_vendor", f"supplier_number={vendor}", ["sys_id"])
        account = self.sn.rows("itfm_gl_accounts", "account_number=60100", ["sys_id"])
        center = self.sn.rows("cmn_cost_center", "code=CC100", ["sys_id"])
        if not (supplier and account and center):
            return False
        reference = f"CHAOS-{self.spec.slug}-SN{number}"
        amounts = [cents(Decimal(self.rng.randint(1_000, 90_000)) / 100) for _ in range(LINES)]
        invoice = self.sn.create("sn_apo_invoice", {
            "supplier": supplier[0]["sys_id"], "supplier_invoice_number": reference,
            "invoice_date": datetime.now(UTC).date().isoformat(), "currency": "USD",
            "amount_invoiced": str(sum(amounts, Decimal("0.00"))), "subtotal": str(sum(amounts, Decimal("0.00"))),
            "short_description": f"Keyed in ServiceNow ({reference})",
        }, identity=f"supplier_invoice_number={reference}")
        for line_no, amount in enumerate(amounts, start=1):
            self.sn.create("sn_apo_invoice_line", {
                "invoice": invoice, "line_number": str(line_no), "line_amount_invoiced": str(amount),
                "gl_account": account[0]["sys_id"], "cost_center": center[0]["sys_id"],
                "line_description": f"{reference} line {line_no}",
            }, identity=f"invoice={invoice}^line_number={line_no}")
        self.sn.patch("sn_apo_invoice", invoice, {"approval": "approved"})
        return True


def person_for(spec: TenantSpec, rng: random.Random, duration: float, ready: Callable[[str, str], bool]) -> Person:
    return (X3User if spec.pair == "x3" else IntacctUser)(spec, rng, duration, ready)
