"""A vendor-free pair for the engine's own rules: a tiny ledger (source) and a tiny row store (target).

Everything a real pair has, and nothing more: two simulators served over HTTP through
``responses`` callbacks (the HTTP boundary), a :class:`ConnectionSchema`, a client and a
``build_client`` per system on the portal's one HTTP policy, and a :class:`Flow` with one
:class:`RecordStream`. :func:`install` registers all of it from a test with ``monkeypatch``:
no file outside this package knows these systems exist.

The store is deliberately naive: it has no unique constraint on the source key, so a flow that
creates a row twice leaves two rows (a real target's coalesce would hide the bug). Its faults
come from the sandbox's :class:`~integrations.sandbox.base.Faults`: 503s before processing and
"commit, then drop the connection" on batch writes.

The broken variants at the bottom are how the conformance suite proves it can fail.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from integrations.flows import _REGISTRY
from integrations.flows.base import (
    Checkpoint,
    Flow,
    Page,
    RecordStream,
    SourceRecord,
    StreamContext,
    WriteItem,
    WriteResult,
)
from integrations.sandbox.base import Faults, SimRequest, SimResponse, Simulator
from integrations.systems import registry
from integrations.systems.errors import DataError, TransientError
from integrations.systems.http import BasicAuth, CallCounter, HttpClient, HttpPolicy, decode_json
from integrations.systems.schema import INT, ConnectionSchema, Setting
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event

SOURCE_SYSTEM = "conformance_ledger"
TARGET_SYSTEM = "conformance_store"
KIND = "conformance_ledger__store"
USERNAME, PASSWORD = "conformance", "conformance-pass"
EPOCH = datetime(2026, 3, 1, tzinfo=UTC)
LOOKUP_CHUNK = 50


def stamp(second: int) -> str:
    """The ledger's update time: ISO 8601 to the second, so many entries can share one."""
    return f"{EPOCH + timedelta(seconds=second):%Y-%m-%dT%H:%M:%SZ}"


def _json(status: int, payload: Any) -> SimResponse:
    return SimResponse.json(status, payload)


def _signed_in(request: SimRequest) -> bool:
    header = request.header("Authorization") or ""
    if not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return (user, password) == (USERNAME, PASSWORD)


# --- the source: a ledger of entries ------------------------------------------------------------
class LedgerSimulator(Simulator):
    """``GET /api/v1/entries?since=&after=&limit=``: entries in (updated, key) order, keyset paged."""

    name = SOURCE_SYSTEM

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.entries: dict[str, dict[str, Any]] = {}

    def put(self, key: str, name: str, updated: str, amount: str = "10.00") -> None:
        """An entry added or edited in the ledger (``updated`` is its new update time)."""
        with self.lock:
            self.entries[key] = {"key": key, "name": name, "amount": amount, "updated": updated}

    def dispatch(self, request: SimRequest) -> SimResponse:
        if not _signed_in(request):
            return _json(401, {"error": "sign in first"})
        path = request.path.rstrip("/")
        if request.method == "GET" and path == "/api/v1/entries":
            since, after = request.param("since") or "", request.param("after") or ""
            limit = max(1, min(int(request.param("limit") or 100), 1000))
            rows = sorted(self.entries.values(), key=lambda e: (e["updated"], e["key"]))
            if after:
                rows = [e for e in rows if (e["updated"], e["key"]) > (since, after)]
            elif since:
                rows = [e for e in rows if e["updated"] >= since]
            return _json(200, {"entries": [dict(e) for e in rows[:limit]]})
        if request.method == "GET" and path == "/api/v1/export":
            # An export API: from an opaque continuation token (or the start), with the token to go
            # on from, on the last page too (like ServiceTitan's export endpoints).
            since, after = _position(request.param("from") or "")
            limit = max(1, min(int(request.param("limit") or 100), 1000))
            rows = sorted(self.entries.values(), key=lambda e: (e["updated"], e["key"]))
            rows = [e for e in rows if (e["updated"], e["key"]) > (since, after)]
            page = [dict(e) for e in rows[:limit]]
            last = (page[-1]["updated"], page[-1]["key"]) if page else (since, after)
            return _json(200, {"entries": page, "hasMore": len(rows) > limit, "continueFrom": _token(*last)})
        if request.method == "GET" and path.startswith("/api/v1/entries/"):
            entry = self.entries.get(path.rsplit("/", 1)[1])
            return _json(200, {"entry": dict(entry)}) if entry else _json(404, {"error": "no such entry"})
        return _json(404, {"error": f"no route {request.method} {path}"})


def _token(updated: str, key: str) -> str:
    """An opaque, long continuation token (longer than any column a cursor used to fit in)."""
    raw = json.dumps({"position": [updated, key], "shard": "ledger-export-0001", "v": 2}).encode()
    return base64.urlsafe_b64encode(raw).decode() + "~" + "0" * 40


def _position(token: str) -> tuple[str, str]:
    if not token:
        return "", ""
    updated, key = json.loads(base64.urlsafe_b64decode(token.split("~")[0]))["position"]
    return str(updated), str(key)


class LedgerClient:
    def __init__(self, spec: ConnectionSpec, http: HttpClient) -> None:
        self.http = http
        self.page_size = int(spec.setting("page_size", 100))

    def close(self) -> None:
        self.http.close()

    def iter_changed(self, since: str, after: str = "") -> Iterator[list[dict[str, Any]]]:
        """Entries updated at or after ``since`` (or after (``since``, ``after``)), in (updated, key)
        order; each next page seeks past the last."""
        params: dict[str, Any] = {"limit": self.page_size, **({"since": since} if since else {}),
                                  **({"after": after} if since and after else {})}
        while True:
            body = decode_json(self.http.request("GET", "/api/v1/entries", params=params), "ledger")
            rows = body["entries"]
            if rows:
                yield rows
            if len(rows) < self.page_size:
                return
            params = {"limit": self.page_size, "since": rows[-1]["updated"], "after": rows[-1]["key"]}

    def iter_export(self, token: str) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """(entries, token to continue from) per page of the export, until it has no more."""
        while True:
            body = decode_json(self.http.request("GET", "/api/v1/export",
                                                 params={"limit": self.page_size, "from": token}), "ledger")
            token = body["continueFrom"]
            yield body["entries"], token
            if not body["hasMore"]:
                return

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            response = self.http.request("GET", f"/api/v1/entries/{key}")
        except DataError as exc:
            if exc.status == 404:
                return None
            raise
        return decode_json(response, "ledger")["entry"]


# --- the target: a store of rows ----------------------------------------------------------------
class StoreSimulator(Simulator):
    """``GET /api/v1/rows?source_key=a,b`` and ``POST /api/v1/rows/batch`` (create or update by id).

    A batch is committed whole, then its answer may be lost (``Faults.drop_rate``).
    """

    name = TARGET_SYSTEM

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.rows: dict[str, dict[str, Any]] = {}

    def dispatch(self, request: SimRequest) -> SimResponse:
        if not _signed_in(request):
            return _json(401, {"error": "sign in first"})
        path = request.path.rstrip("/")
        if request.method == "GET" and path == "/api/v1/rows":
            wanted = set(filter(None, (request.param("source_key") or "").split(",")))
            return _json(200, {"rows": [dict(r) for r in self.rows.values() if r["source_key"] in wanted]})
        if request.method == "POST" and path == "/api/v1/rows/batch":
            try:
                ops = request.json()["ops"]
            except (ValueError, KeyError, TypeError):
                return _json(400, {"error": "a batch is {\"ops\": [...]}"})
            results = [self._apply(op) for op in ops]
            response = _json(200, {"results": results})
            self.maybe_drop()  # committed: the answer may still never arrive
            return response
        return _json(404, {"error": f"no route {request.method} {path}"})

    def _apply(self, op: dict[str, Any]) -> dict[str, Any]:
        ref, row_id = str(op.get("ref", "")), str(op.get("id") or "")
        if row_id:
            row = self.rows.get(row_id)
            if row is None:
                return {"ref": ref, "status": 404, "error": f"no row {row_id}"}
            row.update(op["values"], version=row["version"] + 1)
            return {"ref": ref, "status": 200, "id": row_id, "version": row["version"]}
        row_id = f"row{len(self.rows) + 1:05d}"
        self.rows[row_id] = {**op["values"], "id": row_id, "source_key": op["source_key"], "version": 0}
        return {"ref": ref, "status": 201, "id": row_id, "version": 0}


class StoreClient:
    def __init__(self, spec: ConnectionSpec, http: HttpClient) -> None:
        self.http = http
        self.batch_size = int(spec.setting("batch_size", 100))

    def close(self) -> None:
        self.http.close()

    def lookup(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Rows by source key (the store's own identity of what we wrote)."""
        found: dict[str, dict[str, Any]] = {}
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start:start + LOOKUP_CHUNK]
            response = self.http.request("GET", "/api/v1/rows", params={"source_key": ",".join(chunk)})
            for row in decode_json(response, "store")["rows"]:
                if row["source_key"] in chunk:
                    found[row["source_key"]] = row
        return found

    def write(self, ops: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Each op's answer by its ``ref``, ``batch_size`` ops per call."""
        answers: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ops), self.batch_size):
            response = self.http.request("POST", "/api/v1/rows/batch", json={"ops": ops[start:start + self.batch_size]},
                                         idempotent=False)
            answers.update({str(a["ref"]): a for a in decode_json(response, "store")["results"]})
        return answers


# --- schemas and builders, as a module of systems/ would declare them ----------------------------
SIZES = (Setting("page_size", INT, minimum=1, maximum=1000, help="Entries per read."),
         Setting("batch_size", INT, minimum=1, maximum=1000, help="Rows per batch write."))
LEDGER_SCHEMA = ConnectionSchema(system=SOURCE_SYSTEM, label="Conformance ledger", auth_methods=("basic",),
                                 settings=SIZES)
STORE_SCHEMA = ConnectionSchema(system=TARGET_SYSTEM, label="Conformance store", auth_methods=("basic",),
                                settings=SIZES)


def _http(spec: ConnectionSpec, counter: CallCounter | None, policy: HttpPolicy | None,
          on_event: EventSink) -> HttpClient:
    return HttpClient(spec.url, auth=BasicAuth(spec.setting("username"), spec.secret("password")), policy=policy,
                      counter=counter, secrets=spec.secret_values(), on_event=on_event)


def build_ledger_client(spec: ConnectionSpec, store: Any, counter: CallCounter | None = None,
                        policy: HttpPolicy | None = None, on_event: EventSink = ignore_event) -> LedgerClient:
    return LedgerClient(spec, _http(spec, counter, policy, on_event))


def build_store_client(spec: ConnectionSpec, store: Any, counter: CallCounter | None = None,
                       policy: HttpPolicy | None = None, on_event: EventSink = ignore_event) -> StoreClient:
    return StoreClient(spec, _http(spec, counter, policy, on_event))


# --- the flow -----------------------------------------------------------------------------------
class Entries(RecordStream):
    """Ledger entries → store rows, keyed by the entry key, cursored by its update time."""

    name = "entries"
    label = "Entries (ledger → store)"

    @staticmethod
    def _record(row: dict[str, Any]) -> SourceRecord:
        return SourceRecord(key=row["key"], cursor=row["updated"], data=row, business_key=row["key"])

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for page in ctx.source.iter_changed(checkpoint.cursor, checkpoint.after_key):
            yield [self._record(row) for row in page]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        row = ctx.source.get(key)
        return self._record(row) if row else None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        return {"name": record.data["name"], "amount": record.data["amount"]}

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        store = ctx.target
        # An earlier write of these may have committed behind a lost answer: find them first.
        unsure = [item.key for item in items if item.uncertain and not item.target_id]
        found = store.lookup(unsure) if unsure else {}
        ops = [{"ref": str(n), "id": item.target_id or str(found.get(item.key, {}).get("id", "")),
                "source_key": item.key, "values": item.payload} for n, item in enumerate(items)]
        answers = store.write(ops)
        results: dict[str, WriteResult] = {}
        for op, item in zip(ops, items, strict=True):
            answer = answers.get(op["ref"])
            if answer is None:
                results[item.key] = WriteResult("", error=TransientError("The store did not answer for this row"))
            elif answer["status"] >= 400:
                results[item.key] = WriteResult("", error=DataError(answer.get("error", "refused"),
                                                                    status=answer["status"]))
            else:
                results[item.key] = WriteResult("updated" if op["id"] else "created", target_id=answer["id"],
                                                target_refs={"version": str(answer["version"])})
        return results


class LedgerToStore(Flow):
    kind = KIND
    label = "Conformance ledger → store"
    source_system = SOURCE_SYSTEM
    target_system = TARGET_SYSTEM
    streams = (Entries,)


def install(monkeypatch: pytest.MonkeyPatch, flow: type[Flow] = LedgerToStore) -> None:
    """Register both systems and the flow for the current test only (monkeypatch undoes it)."""
    monkeypatch.setitem(registry.SCHEMAS, SOURCE_SYSTEM, LEDGER_SCHEMA)
    monkeypatch.setitem(registry.SCHEMAS, TARGET_SYSTEM, STORE_SCHEMA)
    monkeypatch.setitem(registry.BUILDERS, SOURCE_SYSTEM, build_ledger_client)
    monkeypatch.setitem(registry.BUILDERS, TARGET_SYSTEM, build_store_client)
    monkeypatch.setitem(_REGISTRY, KIND, flow)


# --- a correct variant that resumes from the vendor's own token ---------------------------------
class ExportEntries(Entries):
    """Reads the ledger's export API: the checkpoint is its continuation token, not a cursor."""

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        for rows, token in ctx.source.iter_export(checkpoint.token):
            yield Page([self._record(row) for row in rows], token=token)


class ExportLedgerToStore(LedgerToStore):
    streams = (ExportEntries,)


# --- broken variants: the suite must fail each of them --------------------------------------------
class CheckpointAheadEntries(Entries):
    """BROKEN: the checkpoint runs ahead of what was committed.

    It reads one page ahead and stamps each page with the reader's high-water mark (the last
    cursor it has fetched, i.e. the next page's) instead of the records' own cursors. The engine
    checkpoints "after the page", but the checkpoint now covers records no run has written: a run
    that stops there (budget, failure) leaves them behind for good.
    """

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        pages = super().read(ctx, checkpoint)
        page = next(pages, None)
        while page is not None:
            following = next(pages, None)
            high_water = following[-1].cursor if following else page[-1].cursor
            yield [replace(record, cursor=high_water) for record in page]
            page = following


class BlindRetryEntries(Entries):
    """BROKEN: no lookup after a lost answer; an uncertain write is simply created again."""

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        for item in items:
            item.uncertain = False
        return super().write_page(ctx, items)


class OptimisticEntries(Entries):
    """BROKEN: a write whose answer never came back is reported written (acknowledged before commit)."""

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        try:
            return super().write_page(ctx, items)
        except TransientError:
            return {item.key: WriteResult("created") for item in items}


class CheckpointAheadFlow(LedgerToStore):
    streams = (CheckpointAheadEntries,)


class BlindRetryFlow(LedgerToStore):
    streams = (BlindRetryEntries,)


class OptimisticFlow(LedgerToStore):
    streams = (OptimisticEntries,)


BROKEN_FLOWS: dict[str, type[Flow]] = {
    "checkpoint stamped before commit": CheckpointAheadFlow,
    "no lookup after a lost answer": BlindRetryFlow,
    "success reported for an unanswered write": OptimisticFlow,
}
