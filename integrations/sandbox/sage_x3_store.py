"""Sage X3 simulator state: records per folder and class, the clock, seeding helpers.

Kept apart from the HTTP side (:mod:`.sage_x3`) so tests and the demo can arrange data
directly. Records are stored typed (see :mod:`.sage_x3_schema`); every change bumps a
per-class version so the query side can cache sorted views between pages.

It also holds what X3 checks against the folder's data when a document is created (journal
entries, supplier invoices) and the per-folder counters that number them.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .clock import ManualClock  # noqa: F401 - re-exported for the X3 simulator's users
from .sage_x3_schema import CLASSES, coerce_record
from .sage_x3_seed import FIELD_SERVICE_FOLDER, bulk_data, demo_data, field_service_bulk, field_service_data

# Journal types the folder knows [U]: X3 journal codes are set up per folder; "ODT" (the portal's
# job cost journal), "OD" (miscellaneous operations) and "ACH" (purchases) follow X3's usual codes.
JOURNAL_TYPES = ("ODT", "OD", "ACH")
# Classes whose documents X3 numbers itself when the payload carries no key. The formats are [U]
# (real folders define them as sequence counters): a journal entry is its journal type followed
# by six digits ("ODT000001"), a supplier invoice "PI" and six digits ("PI000001").
NUMBERED = {"GACCENTRY": None, "PINVOICE": "PI"}


class X3Store:
    """Mixin holding the simulator's data; the simulator supplies ``lock`` and credentials."""

    lock: threading.RLock
    _clock: Callable[[], datetime | float]
    _data: dict[str, dict[str, dict[str, dict[str, Any]]]]
    _versions: dict[tuple[str, str], int]
    journal_types: frozenset[str]
    unique_supplier_invoice: bool
    _counters: dict[tuple[str, str, str], int]
    _invoice_index: dict[str, tuple[int, dict[tuple[str, str], str]]]

    def add_user(self, username: str, password: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def add_oauth_client(self, client_id: str, secret: str) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def set_clock(self, clock: Callable[[], datetime | float]) -> None:
        """Replace the clock (a callable returning an aware datetime or epoch seconds)."""
        self._clock = clock

    def now(self) -> datetime:
        """The simulator's time, whole seconds, UTC: X3 stamps ``UPDDATTIM`` to the second."""
        value = self._clock()
        if not isinstance(value, datetime):
            value = datetime.fromtimestamp(float(value), UTC)
        elif value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).replace(microsecond=0)

    def add_folder(self, folder: str) -> None:
        with self.lock:
            self._data.setdefault(folder, {name: {} for name in CLASSES})

    # === data helpers ===========================================================================
    def _store(self, folder: str | None, klass: str) -> dict[str, dict[str, Any]]:
        folder = folder or next(iter(self._data))
        if klass not in CLASSES:
            raise ValueError(f"unknown class {klass}")
        if folder not in self._data:
            raise ValueError(f"unknown folder {folder}")
        return self._data[folder][klass]

    def _changed(self, folder: str | None, klass: str) -> None:
        folder = folder or next(iter(self._data))
        self._versions[(folder, klass)] = self._versions.get((folder, klass), 0) + 1

    def upsert(self, klass: str, record: dict[str, Any], folder: str | None = None) -> dict[str, Any]:
        """Insert or replace a record directly (no HTTP); ``UPDDATTIM`` defaults to now."""
        spec = CLASSES[klass]
        typed = coerce_record(spec, record)
        if typed.get("UPDDATTIM") is None:
            typed["UPDDATTIM"] = self.now()
        if spec.lines_name:
            typed.setdefault(spec.lines_name, [])
        with self.lock:
            self._store(folder, klass)[spec.key_of(typed)] = typed
            self._changed(folder, klass)
        return copy.deepcopy(typed)

    def records(self, klass: str, folder: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored (typed) records, in key order."""
        with self.lock:
            store = self._store(folder, klass)
            return [copy.deepcopy(store[key]) for key in sorted(store)]

    def get(self, klass: str, key: str, folder: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            record = self._store(folder, klass).get(key)
            return copy.deepcopy(record) if record is not None else None

    def remove(self, klass: str, key: str, folder: str | None = None) -> bool:
        with self.lock:
            removed = self._store(folder, klass).pop(key, None) is not None
            self._changed(folder, klass)
            return removed

    def touch(self, klass: str, key: str, folder: str | None = None, at: datetime | None = None) -> datetime:
        """Set ``UPDDATTIM`` to now (or ``at``), as any change in X3 would; returns the new stamp."""
        with self.lock:
            store = self._store(folder, klass)
            record = dict(store[key])
            record["UPDDATTIM"] = (at or self.now()).astimezone(UTC).replace(microsecond=0)
            store[key] = record
            self._changed(folder, klass)
            return record["UPDDATTIM"]

    def seed_demo(self, folder: str = "SEED") -> None:
        """The deterministic demo ledger plus ``admin``/``x3-demo-pass`` and ``ml-connector``/``x3-demo-secret``."""
        self._load(folder, demo_data())

    def seed_bulk(
        self,
        n_invoices: int,
        lines_per_invoice: int = 3,
        suppliers: int = 50,
        same_timestamp_groups: int | None = None,
        folder: str | None = None,
        start: datetime | None = None,
    ) -> dict[str, int]:
        """Benchmark volume: ``n_invoices`` invoices (each with its own PO), GL accounts, cost centers."""
        counts: dict[str, int] = {}
        with self.lock:
            accounts = self._store(folder, "GACCOUNT")
            if not accounts:
                demo = demo_data()
                for klass in ("GACCOUNT", "CACCE"):
                    for row in demo[klass]:
                        self._store(folder, klass)[CLASSES[klass].key_of(row)] = row
                    self._changed(folder, klass)
            for klass, row in bulk_data(n_invoices, lines_per_invoice, suppliers, same_timestamp_groups, start):
                self._store(folder, klass)[CLASSES[klass].key_of(row)] = row
                counts[klass] = counts.get(klass, 0) + 1
            for klass in counts:
                self._changed(folder, klass)
        return counts


    def seed_field_service(self, folder: str = FIELD_SERVICE_FOLDER) -> None:
        """The X3 folder of the ServiceTitan demo contractor (:func:`.sage_x3_seed.field_service_data`),
        with the same demo credentials as :meth:`seed_demo`."""
        self._load(folder, field_service_data())

    def seed_field_service_bulk(
        self, jobs: int, bills: int, lines: int = 5, vendors: int = 50, folder: str = FIELD_SERVICE_FOLDER
    ) -> dict[str, int]:
        """Benchmark volume coherent with ``servicetitan_seed.bulk_data`` (:func:`.sage_x3_seed.field_service_bulk`)."""
        data = field_service_bulk(jobs, bills, lines, vendors)
        self._load(folder, data)
        return {klass: len(rows) for klass, rows in data.items()}

    def _load(self, folder: str, data: dict[str, list[dict[str, Any]]]) -> None:
        self.add_folder(folder)
        self.add_user("admin", "x3-demo-pass")
        self.add_oauth_client("ml-connector", "x3-demo-secret")
        with self.lock:
            for klass, rows in data.items():
                store = self._store(folder, klass)
                key_of = CLASSES[klass].key_of
                for row in rows:
                    store[key_of(row)] = row
                self._changed(folder, klass)

    # === documents: the checks X3 makes on create, and their numbers ==============================
    def document_problems(self, folder: str, klass: str, record: dict[str, Any]) -> list[str]:
        """What X3 would refuse in a new journal entry or supplier invoice, in an operator's words."""
        if klass == "GACCENTRY":
            return self._entry_problems(folder, record)
        if klass == "PINVOICE":
            return self._invoice_problems(folder, record)
        return []

    def _reference_problems(self, folder: str, where: str, line: dict[str, Any]) -> list[str]:
        problems = []
        account, center = line.get("ACC"), line.get("CCE")
        if account and account not in self._data[folder]["GACCOUNT"]:
            problems.append(f"{where}: account {account} does not exist")
        if center and center not in self._data[folder]["CACCE"]:
            problems.append(f"{where}: cost center {center} does not exist")
        return problems

    def _entry_problems(self, folder: str, record: dict[str, Any]) -> list[str]:
        problems = []
        journal = record.get("TYP")
        if not journal:
            problems.append("The journal type is required")
        elif journal not in self.journal_types:
            problems.append(f"Journal type {journal} does not exist in this folder")
        if record.get("ACCDAT") is None:
            problems.append("The accounting date is required")
        lines = record.get("GACCENTRYD") or []
        if len(lines) < 2:
            problems.append(f"An entry needs at least two lines, this one has {len(lines)}")
        debits = credits = Decimal("0.00")
        sums_known = True
        for n, line in enumerate(lines, start=1):
            where = f"Line {n}"
            if not line.get("ACC"):
                problems.append(f"{where}: the account is required")
            problems += self._reference_problems(folder, where, line)
            sense, amount = line.get("SNS"), line.get("AMTCUR")
            if sense not in (1, -1):
                problems.append(f"{where}: the sense must be 1 (debit) or -1 (credit), not {sense}")
                sums_known = False
            if amount is None:
                problems.append(f"{where}: the amount is required")
                sums_known = False
            elif amount < 0:
                # [U] X3 carries the side in the sense; a negative amount ("red ink" reversal) is a
                # per-legislation option, off here: the client must flip the sense instead.
                problems.append(f"{where}: the amount {amount:f} is negative; post it on the other side")
                sums_known = False
            elif sense == 1:
                debits += amount
            elif sense == -1:
                credits += amount
        if sums_known and lines and debits != credits:
            problems.append(f"The entry is not balanced: debits {debits:f}, credits {credits:f}")
        return problems

    def _invoice_problems(self, folder: str, record: dict[str, Any]) -> list[str]:
        problems = []
        supplier, reference = record.get("BPR"), record.get("BPRVCR")
        if not supplier:
            problems.append("The supplier is required")
        elif supplier not in self._data[folder]["BPSUPPLIER"]:
            problems.append(f"Supplier {supplier} does not exist")
        if record.get("AMTATI") is None:
            problems.append("The amount including tax is required")
        orders = self._data[folder]["PORDER"]
        for n, line in enumerate(record.get("PINVOICED") or [], start=1):
            where = f"Line {n}"
            number, order_line = line.get("POHNUM"), line.get("POPLIN")
            order = orders.get(number) if number else None
            if number and order is None:
                problems.append(f"{where}: purchase order {number} does not exist")
            # a blank X3 integer is 0: POPLIN 0 means "no order line given"
            elif order is not None and order_line and order_line not in {p["POPLIN"] for p in order.get("PORDERP") or []}:
                problems.append(f"{where}: purchase order {number} has no line {order_line}")
            problems += self._reference_problems(folder, where, line)
        if self.unique_supplier_invoice and supplier and reference:
            existing = self._supplier_invoices(folder).get((supplier, reference))
            if existing is not None:
                problems.append(f"Supplier invoice {reference} of supplier {supplier} already exists as {existing}")
        return problems

    def _supplier_invoices(self, folder: str) -> dict[tuple[str, str], str]:
        """(supplier, supplier's invoice number) -> invoice number, rebuilt only when something else
        changed the invoices (each create adds itself, so a benchmark's posts stay linear)."""
        version = self._versions.get((folder, "PINVOICE"), 0)
        cached = self._invoice_index.get(folder)
        if cached is None or cached[0] != version:
            index: dict[tuple[str, str], str] = {}
            for number, invoice in self._data[folder]["PINVOICE"].items():
                if invoice.get("BPR") and invoice.get("BPRVCR"):
                    index.setdefault((invoice["BPR"], invoice["BPRVCR"]), number)
            cached = self._invoice_index[folder] = (version, index)
        return cached[1]

    def next_number(self, folder: str, klass: str, record: dict[str, Any]) -> str:
        """The next free document number of ``klass`` in ``folder`` (see ``NUMBERED``)."""
        prefix = NUMBERED[klass] or str(record.get("TYP") or "")
        store = self._data[folder][klass]
        counter = self._counters.get((folder, klass, prefix), 0)
        while True:
            counter += 1
            number = f"{prefix}{counter:06d}"
            if number not in store:  # seeded or caller-numbered documents keep their numbers
                self._counters[(folder, klass, prefix)] = counter
                return number

    def commit_created(self, folder: str, klass: str, record: dict[str, Any]) -> None:
        """Store a new record and keep the supplier invoice index current."""
        spec = CLASSES[klass]
        if klass == "GACCENTRY":  # X3 numbers the entry lines the client left unnumbered
            for n, line in enumerate(record.get("GACCENTRYD") or [], start=1):
                if line.get("LIN") is None:
                    line["LIN"] = n
        before = self._versions.get((folder, klass), 0)
        self._data[folder][klass][spec.key_of(record)] = record
        self._changed(folder, klass)
        cached = self._invoice_index.get(folder)
        if klass == "PINVOICE" and cached is not None and cached[0] == before:
            if record.get("BPR") and record.get("BPRVCR"):
                cached[1].setdefault((record["BPR"], record["BPRVCR"]), spec.key_of(record))
            self._invoice_index[folder] = (before + 1, cached[1])
