"""Sage X3 simulator state: records per folder and class, the clock, seeding helpers.

Kept apart from the HTTP side (:mod:`.sage_x3`) so tests and the demo can arrange data
directly. Records are stored typed (see :mod:`.sage_x3_schema`); every change bumps a
per-class version so the query side can cache sorted views between pages.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .clock import ManualClock  # noqa: F401 - re-exported for the X3 simulator's users
from .sage_x3_schema import CLASSES, coerce_record
from .sage_x3_seed import bulk_data, demo_data


class X3Store:
    """Mixin holding the simulator's data; the simulator supplies ``lock`` and credentials."""

    lock: threading.RLock
    _clock: Callable[[], datetime | float]
    _data: dict[str, dict[str, dict[str, dict[str, Any]]]]
    _versions: dict[tuple[str, str], int]

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
        self.add_folder(folder)
        self.add_user("admin", "x3-demo-pass")
        self.add_oauth_client("ml-connector", "x3-demo-secret")
        with self.lock:
            for klass, rows in demo_data().items():
                store = self._store(folder, klass)
                for row in rows:
                    store[CLASSES[klass].key_of(row)] = row
                self._changed(folder, klass)

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

