"""What a flow declares: its streams, how they read, transform and write.

Flows know their vendors (through ``systems/``) but not the database: the engine hands each
stream a :class:`StreamContext` with the clients, the approved mappings and a lineage lookup,
and persists what the stream returns. A new pair is one new module beside this one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from integrations.systems.errors import SyncError
from integrations.systems.schema import BOOL, INT, MAP, Setting, settings_errors

# A namespaced source identity: ``<system>.<8 hex of the connection id>:<key>``.
NAMESPACED = re.compile(r"[a-z][a-z0-9_]*\.[0-9a-f]{8}:")


def bare_key(identity: str) -> str:
    """A target row's source identity without its namespace (for reports that span connections)."""
    match = NAMESPACED.match(identity)
    return identity[match.end():] if match else identity


class NeedsMapping(Exception):
    """The record cannot be written until these mapping keys (``kind:code``) are approved."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = sorted(set(missing))
        super().__init__("Waiting for mapping: " + ", ".join(self.missing))


class Conflict(Exception):
    """Both sides changed the same record since the last sync: a person must decide."""

    def __init__(self, message: str) -> None:
        self.missing = ["conflict:review"]
        super().__init__(message)


class InvalidRecord(Exception):
    """The source record cannot be sent as it is (a data error of this record only)."""


class SkipRecord(Exception):
    """Nothing to do for this record (e.g. the echo of our own write in the other direction)."""


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def canonical_hash(data: Any) -> str:
    """A stable hash of a source snapshot: unchanged records are skipped by comparing it."""
    encoded = json.dumps(data, sort_keys=True, default=_default, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()



class EncodedJSON(dict):
    """A JSON object that remembers the text it was decoded from, so it is stored as is."""

    __slots__ = ("json",)


def snapshot_and_hash(data: Any) -> tuple[Any, str]:
    """``(data as JSON types, Decimals as strings; canonical_hash(data))`` from one serialisation instead of three.

    The snapshot keeps its encoding (:class:`EncodedJSON`): writing it needs no fourth.
    """
    encoded = json.dumps(data, sort_keys=True, default=_default, separators=(",", ":"))
    snapshot = json.loads(encoded)
    if isinstance(snapshot, dict):
        snapshot = EncodedJSON(snapshot)
        snapshot.json = encoded
    return snapshot, hashlib.sha256(encoded.encode("utf-8")).hexdigest()


# A checkpoint remembers at most this many keys processed at its cursor; past it, records
# re-read at that cursor are recognised by their hash instead (still written only if changed).
MAX_SEEN_AT_CURSOR = 1000


@dataclass(frozen=True)
class Checkpoint:
    """Where a stream resumes. The engine stores it; only the stream interprets it.

    - ``cursor``/``key``: the last record fully processed, in the stream's (cursor, key) order
      (``key`` is the record's :func:`position`: its ``order_key`` or its key).
      While a read is unfinished (cut by a call budget, a crash, a systemic error) the stream
      *seeks*: it reads strictly after (cursor, key) and downloads nothing it already processed.
    - ``complete``: the last read reached the end. The next one reads again from ``cursor``
      inclusive, because a record changed later within the same second (or, for sources that
      only keep dates, the same day) keeps that cursor but may sort before ``key``.
    - ``seen``: keys processed at ``cursor`` (at most :data:`MAX_SEEN_AT_CURSOR`; empty past
      that or when the cursor is only a date), skipped by the engine when read again.
    - ``token``: a vendor's own continuation token (e.g. an export API's ``continueFrom``),
      as long as the vendor makes it.
    """

    cursor: str = ""
    key: str = ""
    complete: bool = False
    seen: tuple[str, ...] = ()
    token: str = ""

    @property
    def seek(self) -> bool:
        """True when the stream should read strictly after (cursor, key)."""
        return bool(self.key) and not self.complete

    @property
    def after_key(self) -> str:
        """The key to read strictly after at ``cursor``; empty when the read starts at ``cursor`` inclusive."""
        return self.key if self.seek else ""

    def already_done(self, cursor: str, key: str) -> bool:
        """A record read again at the checkpoint that needs no second pass."""
        return bool(self.cursor) and cursor == self.cursor and (key == self.key or key in self.seen)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"cursor": self.cursor, "key": self.key, "complete": self.complete}
        if self.seen:
            data["seen"] = list(self.seen)
        if self.token:
            data["token"] = self.token
        return data

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint:
        if not isinstance(data, dict):
            return cls()
        seen = data.get("seen") or ()
        return cls(cursor=str(data.get("cursor") or ""), key=str(data.get("key") or ""),
                   complete=bool(data.get("complete")),
                   seen=tuple(str(k) for k in seen) if isinstance(seen, list | tuple) else (),
                   token=str(data.get("token") or ""))

    def after(self, page: list[Any], token: str = "", coarse: bool = False) -> Checkpoint:
        """The checkpoint once every record of ``page`` (in read order) is processed."""
        if not page:
            return self if not token else Checkpoint(self.cursor, self.key, False, self.seen, token)
        last = page[-1]
        cursor, key = last.cursor, position(last)
        ties = {position(r) for r in page if r.cursor == cursor}
        overflowed = False
        if cursor == self.cursor:
            ties |= set(self.seen)
            overflowed = bool(self.key) and not self.seen  # this cursor's keys already passed the bound
        seen = tuple(sorted(ties)) if not (coarse or overflowed) and len(ties) <= MAX_SEEN_AT_CURSOR else ()
        return Checkpoint(cursor, key, False, seen, token or self.token)

    def completed(self) -> Checkpoint:
        return Checkpoint(self.cursor, self.key, True, self.seen, self.token)


class Page(list):
    """A page of records that also carries the vendor's continuation token after it."""

    token: str = ""

    def __init__(self, records: Iterable[Any] = (), token: str = "") -> None:
        super().__init__(records)
        self.token = token


def position(record: Any) -> str:
    """Where a record or reference row sorts among those sharing its cursor: its ``order_key``,
    else its key (records) or code (reference rows)."""
    return record.order_key or (record.key if isinstance(record, SourceRecord) else record.code)


@dataclass
class SourceRecord:
    """One record read from a source page, in (cursor, key) order."""

    key: str
    cursor: str
    data: dict[str, Any]
    business_key: str = ""
    # the source's order among records sharing a cursor, when that is not ``key`` (e.g. sys_id)
    order_key: str = ""
    # what ``prepare_page`` looked up for the record's write, on the page's thread, so that a write
    # running beside the next page's plan need not ask that thread (not part of the snapshot)
    notes: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class RefItem:
    """One reference row (GL account, cost center...) read from one side."""

    code: str
    label: str = ""
    external_id: str = ""
    cursor: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # the source's order among rows sharing a cursor, when that is not ``code``
    order_key: str = ""


@dataclass
class WriteItem:
    """A transformed record for ``write_page``.

    ``target_id``/``target_refs`` are what we know the target holds for it; ``uncertain``
    says an earlier write may have committed without our seeing the answer, so the stream must
    look the row up by source identity before creating it.
    """

    key: str
    payload: Any
    record: SourceRecord
    target_id: str = ""
    target_refs: dict[str, str] = field(default_factory=dict)
    uncertain: bool = False


@dataclass
class WriteResult:
    action: str  # created | updated | unchanged
    target_id: str = ""
    target_url: str = ""
    target_refs: dict[str, str] = field(default_factory=dict)
    error: SyncError | None = None


MappingReader = Callable[[str, set[str]], dict[str, tuple[str, str]]]


class MappingLookup:
    """Approved mappings of one integration: (kind, source_code) → (target_code, target_external_id).

    ``approved`` holds them whole, but for the ``paged`` kinds: document numbers (purchase orders,
    :attr:`MappingKind.by_number`), as many as the documents, are read a page at a time by ``read``
    (kind, codes → {code: (target, external id)}). A stream resolving one of those prefetches its
    page's codes in ``prepare_page`` (one query); a code not prefetched is read on its own.
    """

    def __init__(self, approved: dict[tuple[str, str], tuple[str, str]], paged: Iterable[str] = (),
                 read: MappingReader | None = None) -> None:
        self.approved = approved
        self.paged = frozenset(paged)
        self._read = read
        self._page: dict[tuple[str, str], tuple[str, str] | None] = {}

    def get(self, kind: str, code: str) -> tuple[str, str] | None:
        """The target (code, external id) approved for ``kind:code``, or ``None``."""
        if kind not in self.paged:
            return self.approved.get((kind, code))
        if (kind, code) not in self._page:
            self.prefetch(kind, [code])
        return self._page.get((kind, code))

    def prefetch(self, kind: str, codes: Iterable[str]) -> None:
        """Read the approved targets of many codes of a paged kind in one query (``prepare_page``)."""
        if kind not in self.paged or self._read is None:
            return
        wanted = {code for code in codes if code and (kind, code) not in self._page}
        if wanted:
            found = self._read(kind, wanted)
            for code in wanted:
                self._page[(kind, code)] = found.get(code)

    def read(self, kind: str, codes: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The approved targets of ``codes``, read now and not kept: for a stream's
        :meth:`RecordStream.look_ahead`, on another thread than the page's (its read goes to the
        thread that owns the database)."""
        wanted = {code for code in codes if code}
        if kind not in self.paged:
            return {code: self.approved[(kind, code)] for code in wanted if (kind, code) in self.approved}
        return self._read(kind, wanted) if wanted and self._read is not None else {}

    def forget_page(self) -> None:
        self._page.clear()

    def resolve(self, kind: str, code: str | None, missing: list[str]) -> tuple[str, str]:
        """Return the target (code, external id), or note ``kind:code`` in ``missing``."""
        if code in (None, ""):
            return "", ""
        found = self.get(kind, str(code))
        if found is None:
            missing.append(f"{kind}:{code}")
            return "", ""
        return found


LineageFn = Callable[[str, Iterable[str]], dict[str, tuple[str, dict[str, str]]]]


@dataclass
class StreamContext:
    """What a stream may use during one run."""

    integration_settings: dict[str, Any]
    source: Any
    target: Any
    mappings: MappingLookup
    lineage: LineageFn
    # (stream, target ids) -> (the ids that stream created, whether any of its writes is unaccounted for)
    written: Callable[[str, Iterable[str]], tuple[set[str], bool]] = lambda stream, ids: (set(), True)
    # (reference kind, system ids) -> system id -> code, as that kind's reference stream last stored
    # them (a ServiceTitan purchase order's number by its id); ids it never stored, or stored under
    # two codes (renumbered at the source), are left out
    references: Callable[[str, Iterable[str]], dict[str, str]] = lambda kind, ids: {}
    force: bool = False
    # prefix of the identity the target knows a record by (see ``identity``)
    namespace: str = ""
    _lineage_cache: dict[tuple[str, str], tuple[str, dict[str, str]] | None] = field(default_factory=dict)

    def setting(self, name: str, default: Any) -> Any:
        return self.integration_settings.get(name, default)

    def identity(self, key: str) -> str:
        """The source identity a target row carries for the record ``key``: namespaced by the
        integration's ERP system and connection, so two ERPs never collide on one bare key.
        Rows written before identities were namespaced carry the bare key; lookups accept both."""
        return f"{self.namespace}:{key}" if self.namespace else key

    def key_of(self, identity: str) -> str | None:
        """The record key in a target row's source identity: ours (namespaced by this integration's
        connection, or a bare key written before namespaces), or ``None`` for another source's."""
        if NAMESPACED.match(identity):
            prefix = f"{self.namespace}:"
            return identity[len(prefix):] if self.namespace and identity.startswith(prefix) else None
        return identity

    def prefetch(self, stream: str, keys: Iterable[str]) -> None:
        """Load the lineage of many keys in one query (call from ``prepare_page``)."""
        wanted = {k for k in keys if k and (stream, k) not in self._lineage_cache}
        if not wanted:
            return
        found = self.lineage(stream, wanted)
        for key in wanted:
            self._lineage_cache[(stream, key)] = found.get(key)

    def lineage_of(self, stream: str, key: str) -> tuple[str, dict[str, str]] | None:
        """(target id, target refs) of a record another stream synced, or ``None``."""
        if (stream, key) not in self._lineage_cache:
            self.prefetch(stream, [key])
        return self._lineage_cache.get((stream, key))

    def forget_page(self) -> None:
        """Drop what the last page read of lineage and paged mappings (memory follows the page)."""
        self._lineage_cache.clear()
        self.mappings.forget_page()


# --- what month-end reconciliation counts --------------------------------------------------------
@dataclass(frozen=True)
class Money:
    """One money document (an invoice, a bill) as a reconciliation counts it, on either side.

    ``day`` is the document date that puts it in a period; ``number`` and ``supplier`` are what
    people know it by; ``void``: cancelled in the source, so a target row of it is extra.
    """

    day: date | None
    currency: str
    amount: Decimal | None
    number: str = ""
    supplier: str = ""
    void: bool = False


@dataclass(frozen=True)
class Ledger:
    """Where a money stream's documents land in the target, to be read back by source identity.

    ``table`` is a logical target table; the columns are the payload's names, before an
    integration's ``field_names`` renames them.
    """

    table: str
    date: str
    currency: str
    amount: str
    number: str = ""

    def column(self, integration_settings: dict[str, Any], name: str) -> str:
        renames = ((integration_settings or {}).get("field_names") or {}).get(self.table) or {}
        return renames.get(name, name) if name else ""


@dataclass(frozen=True)
class TargetDocument:
    """A target row read back: the record key its source identity names, its id and its money."""

    key: str
    target_id: str
    money: Money


def as_day(value: Any) -> date | None:
    """``2026-01-25`` (or the date part of an ISO date-time) as a date; ``None`` when it is not one."""
    try:
        return date.fromisoformat(str(value or "").strip()[:10])
    except ValueError:
        return None


def as_decimal(value: Any) -> Decimal | None:
    """An amount as stored (text or number) as a Decimal; ``None`` when there is none."""
    if value in (None, ""):
        return None
    try:
        found = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return found if found.is_finite() else None


class Stream:
    """Base of every stream. Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str]
    label: ClassVar[str] = ""
    # which connection of the integration is read ("source" or "target")
    reads: ClassVar[str] = "source"
    depends_on: ClassVar[tuple[str, ...]] = ()
    default_schedule: ClassVar[str] = "daily"
    is_reference: ClassVar[bool] = False
    # The source keeps only a date (no time) for changes: records re-read at the checkpoint's
    # date are compared by hash, never skipped by key (one may have changed later that day).
    coarse_cursor: ClassVar[bool] = False

    @classmethod
    def enabled_by_default(cls, integration_settings: dict[str, Any]) -> bool:
        return True

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        """Pages of records ordered by (cursor, key), from the checkpoint on.

        Strictly after (``checkpoint.cursor``, ``checkpoint.key``) when ``checkpoint.seek``,
        else with cursor >= ``checkpoint.cursor``. A vendor token travels in :class:`Page`.
        """
        raise NotImplementedError

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        """Re-read one record for a replay; ``None`` when the source cannot (use the snapshot)."""
        return None


class RecordStream(Stream):
    """Reads records from one side and writes them to the other."""

    # When set, each record this stream syncs is its own approved mapping of this kind: source
    # key → the row written (code from ``WriteResult.target_refs["code"]``), e.g. a GL account
    # pushed to the target is the account its invoice lines are coded to.
    mapping_kind: ClassVar[str] = ""
    # Money streams (invoices, bills...) declare where their documents land in the target: the
    # month-end reconciliation counts and totals them on both sides (:meth:`money`, :meth:`read_back`).
    ledger: ClassVar[Ledger | None] = None
    # The engine reads the next page on a helper thread while this one is transformed and
    # written (``systems.concurrency.read_ahead``). Only for a stream whose page work never calls
    # the client it reads from (that client is then used by one thread at a time), or only calls
    # one that may be called from two threads at once, as a pipelined stream's target is.
    read_ahead: ClassVar[bool] = False
    # The engine writes a page on a helper thread while it transforms the next one and books the
    # one before (``engine.pipeline``). Only for a stream whose transforms never depend on what an
    # earlier page of the same stream wrote (pages sharing a record are not overlapped anyway),
    # whose ``write_page`` keeps no state of ``prepare_page``, and whose clients may be called
    # from two threads (the write on the target, the next page's look-ups).
    pipelined: ClassVar[bool] = False

    def money(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The money of a source record as the portal recorded it (its snapshot), read with the
        source connection's settings (field names); ``None``: nothing to count."""
        return None

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The record's document as the console shows and searches it (number, supplier, date,
        amount), from its snapshot: a money stream's :meth:`money`. Streams of documents that
        reconciliation does not count (purchase orders, journal entries, payments) say it here
        rather than declare a ``ledger``, which would make month-end count them.

        ``None``: not a document (master data), or a snapshot too old or partial to read. Callers
        also treat an exception as ``None``, but implementations should not raise.
        """
        return self.money(snapshot, source_settings) if self.ledger is not None else None

    def target_money(self, row: dict[str, Any], integration_settings: dict[str, Any]) -> Money:
        """The money of a target row read back, from the ledger's columns."""
        ledger = self.ledger
        assert ledger is not None, f"{self.name} declares no ledger"

        def value(name: str) -> Any:
            return row.get(ledger.column(integration_settings, name)) if name else None

        currency = value(ledger.currency)
        number = value(ledger.number)
        return Money(as_day(value(ledger.date)), str(currency or ""), as_decimal(value(ledger.amount)),
                     number=str(number or ""))

    def read_back(self, ctx: StreamContext, first: date, last: date, keys: list[str]) -> Iterator[list[TargetDocument]]:
        """Pages of the target's documents of ours: every one dated ``first``..``last``, and those of
        ``keys`` (our records of the period) wherever they are dated. Reads only, never writes."""
        raise NotImplementedError

    def write_chunk(self, ctx: StreamContext) -> int:
        """For a pipelined stream: the records one write call of the target takes (or, where each
        record is a call of its own, a part small enough that the first calls leave early). A
        larger page is worked in parts of this size, each written while the next is transformed
        (the checkpoint still moves once per page); 0 keeps pages whole."""
        return 0

    def look_ahead(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        """Make calls the page's :meth:`prepare_page` will need, as soon as the page is read.

        A sync calls it for each page it reads, on the thread that reads it: with :attr:`read_ahead`,
        the helper, while the page before is planned and written, so the wait for the answers
        overlaps that work. What it finds it keeps for ``prepare_page`` (guarded: the two run on two
        threads), which must still do without it: a record retried from its snapshot is not read,
        and a look-up here may fail. It may call the clients :attr:`read_ahead` allows, and read
        the database only through the context's look-ups (``references``, ``mappings.read``), which
        the owning thread answers. An error here is logged and dropped: ``prepare_page`` makes the
        call again and meets it there.
        """
        return None

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        """Load what the page's transforms look up, in as few queries as possible."""
        return None

    def transform(self, ctx: StreamContext, record: SourceRecord) -> Any:
        """Build the target payload; raise NeedsMapping / InvalidRecord / SkipRecord / Conflict."""
        raise NotImplementedError

    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        """Write idempotently; return a result (or an error inside it) for every item's key."""
        raise NotImplementedError


class ReferenceStream(Stream):
    """Reads reference data of one kind from one side into the portal's reference table."""

    is_reference = True
    kind: ClassVar[str]
    default_schedule = "hourly"
    read_ahead = True  # a page is only stored (no call): the next one is read meanwhile

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[RefItem]]:  # type: ignore[override]
        raise NotImplementedError


# Integration settings every pair accepts: the engine's, and the clients' sizes they override.
ENGINE_SETTINGS = (
    Setting("page_size", INT, minimum=1, maximum=10_000, help="Records per source page; overrides the connection's."),
    Setting("batch_size", INT, minimum=1, maximum=1_000, help="Items per target batch call; overrides the connection's."),
    Setting("call_budget", INT, default=0, minimum=0, maximum=10_000_000,
            help="API calls each connection may make per sync cycle, unless the connection sets its own (0: no limit)."),
    Setting("continue_after_seconds", INT, minimum=0, maximum=7 * 24 * 3600,
            help="How long after reaching a call budget the run continues by itself."),
    Setting("suggest_at", INT, default=85, minimum=50, maximum=100,
            help="Confidence (0-100) from which a mapping candidate is suggested for approval."),
)
# Settings shared by the pairs that stage into ServiceNow.
FIELD_NAMES = Setting("field_names", MAP, nested=True, max_length=80,
                      help="Target column names renamed per table, e.g. {\"invoice\": {\"subtotal\": \"u_net\"}}.")
WRITEBACK = Setting("supplier_writeback", BOOL, default=False, help="Also write supplier changes back to the ERP.")


@dataclass(frozen=True)
class MappingKind:
    """What a flow's records are coded through: the source side's reference rows of one kind onto
    the target side's rows of another (or the same) kind, e.g. a job type → a GL account, a GL
    account → a cost center. Records wait ("held") on ``<name>:<source code>`` until it is approved.

    ``match`` gives the (code, label) a source row is suggested a target by (exact code first, then
    name); by default its own. A department segment, say, for a GL account → cost center mapping.

    ``by_number``: the codes are document numbers (purchase orders), suggested only where the
    other side has the same number: two orders a digit apart are different orders, not names
    alike. Only the numbers of the codes being suggested are read, however long the list.
    """

    name: str
    source: str = ""
    target: str = ""
    match: Callable[[Any], tuple[str, str]] | None = None
    by_number: bool = False

    @property
    def source_kind(self) -> str:
        return self.source or self.name

    @property
    def target_kind(self) -> str:
        return self.target or self.name

    def match_of(self, row: Any) -> tuple[str, str]:
        return self.match(row) if self.match else (row.code, row.label)


class Flow:
    """One pair from the seeds: its kind, the systems it joins and its streams in order."""

    kind: ClassVar[str]
    label: ClassVar[str]
    source_system: ClassVar[str]
    target_system: ClassVar[str]
    streams: ClassVar[tuple[type[Stream], ...]]
    # the pair's own integration settings, besides ENGINE_SETTINGS
    settings: ClassVar[tuple[Setting, ...]] = ()
    # The logical ServiceNow tables (table profile names: "invoice", "supplier"...) the flow reads
    # or writes on its target side. The connection test checks only these, with their columns: a
    # table only a target-side reference stream reads (GL accounts, cost centers for mapping
    # suggestions) needs its code and name columns, every other one the source-id column too.
    target_tables: ClassVar[tuple[str, ...]] = ()
    # Integration settings that name a column of a target table, by logical table (e.g. the
    # column saying which system an invoice came from): the connection test checks they exist.
    target_column_settings: ClassVar[dict[str, tuple[str, ...]]] = {}

    # Columns a stream reads from a target table besides its code and name (e.g. a payment's amount),
    # by logical table: the connection test checks them wherever the table is in use.
    target_read_columns: ClassVar[dict[str, tuple[str, ...]]] = {}

    def tables_in_use(self, integration_settings: dict[str, Any]) -> tuple[str, ...]:
        """The target tables an integration with these settings uses: ``target_tables``, and any
        table a stream that a setting turns on reads (see the Intacct pair's payments)."""
        return self.target_tables

    def target_writes(self) -> tuple[str, ...]:
        """The target tables the flow writes: all but those only its target-side reference streams read."""
        read_only = {getattr(s, "kind", "") for s in self.streams if s.is_reference and s.reads == "target"}
        return tuple(table for table in self.target_tables if table not in read_only)
    # mappings between reference kinds; none declared: each reference kind maps onto itself
    mapping_kinds: ClassVar[tuple[MappingKind, ...]] = ()

    def mapping_kind(self, name: str) -> MappingKind:
        """The mapping kind records are held by as ``<name>:<code>``."""
        return next((kind for kind in self.mapping_kinds if kind.name == name), MappingKind(name))

    def mapping_kinds_reading(self, reference_kind: str) -> list[MappingKind]:
        """The mapping kinds whose suggestions change when reference rows of this kind change."""
        if not self.mapping_kinds:
            return [MappingKind(reference_kind)]
        return [kind for kind in self.mapping_kinds if reference_kind in (kind.source_kind, kind.target_kind)]

    def settings_errors(self, value: Any) -> list[str]:
        """Every problem of an integration's settings document; empty when valid."""
        return settings_errors(value, ENGINE_SETTINGS, extra=self.settings)

    def stream(self, name: str) -> Stream:
        for cls in self.streams:
            if cls.name == name:
                return cls()
        raise KeyError(f"{self.kind} has no stream {name!r}; streams: {', '.join(self.stream_names())}")

    def stream_names(self) -> list[str]:
        return [cls.name for cls in self.streams]

    def webhook_records(self, event_type: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
        """(stream, source key) of the records a pushed event says changed; none by default.

        An event is only a hint: each record is read again from the source and goes through its
        stream like a polled one (mapping gate included); polling stays the checkpoint."""
        return []
