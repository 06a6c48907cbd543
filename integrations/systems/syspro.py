"""SYSPRO client: e.net Solutions over WCF REST, read only (COMFND queries).

Facts followed (API_FACTS sections 5 and 9): every call is a GET under
``{server}/SYSPROWCFService/Rest`` with its parameters in the query string, answered HTTP 200
``application/octet-stream`` even on failure, a failure being a body that starts with
``ERROR``. ``Logon`` answers the UserId with two trailing spaces; it goes back verbatim
(``%20%20``). ``ERROR: The supplied UserID is invalid.`` means SYSPRO ended the session
(inactivity timeout, bumped from a full licence): the client logs on again once and retries
the call once. Each session holds a licence seat, so one client holds at most one session and
:meth:`SysproClient.close` always logs off. COMFND answers are XML declared Windows-1252; they
are decoded by their declaration and parsed without DTDs or entities; element names may come
back in another case than sent, so they are compared case-insensitively.

The UserId and the passwords travel in query strings: the redaction helper masks the
``UserId``/``…Password`` parameters wherever a URL is logged, and their values are masked
verbatim in any text the HTTP client builds (the UserId as soon as it is known).

Which tables hold distribution lines, cost centres and GL postings, and several column names,
are not in public sources ([U]); the defaults in :data:`TABLES` follow SYSPRO's naming and
every name can be changed per connection (``tables`` and ``columns`` settings). Conditions
beyond EQ are [U] too: with ``seek_mode`` ``"by_day"`` the client reads with EQ only, one
posting date at a time (see :meth:`SysproClient.iter_changed`).

With ``odata_url`` set, :meth:`SysproClient.read_changed` and :meth:`SysproClient.read_for` read
through SYSPRO's OData feed instead (:mod:`integrations.systems.syspro_odata`: Basic auth with the
operator's credentials, no e.net session, the same rows as COMFND gives); without it every read
is a COMFND query. The e.net session and COMFND's XML live in :mod:`integrations.systems.syspro_enet`.

SYSPRO is never written to: no method here calls a Transaction or Setup business object,
:meth:`SysproClient._call` is the only way out besides Logon and Logoff, and the OData reader
sends only GET.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import requests

from integrations.systems.errors import AuthError, SyncError, SystemicError
from integrations.systems.http import BasicAuth, CallCounter, HttpClient, HttpPolicy, new_session
from integrations.systems.schema import INT, MAP, TEXT, ConnectionFields, ConnectionSchema, Problems, Setting
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event
from integrations.systems.syspro_enet import (  # noqa: F401 - re-exported: the client's public names
    REST_PATH,
    SYSTEM,
    Condition,
    EnetSession,
    classify_status,
    comfnd_xml,
    decode_xml,
    encode,
    parse_rows,
    rest_base,
)
from integrations.systems.syspro_odata import MAX_PAGE as ODATA_PAGE
from integrations.systems.syspro_odata import SETTINGS as ODATA_SETTINGS
from integrations.systems.syspro_odata import ODataReader, basic_token, url_problem

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 500  # [U] rows per COMFND query; SYSPRO documents no maximum


@dataclass(frozen=True)
class TableDef:
    """A table the flows read, by its default (SYSPRO-style) names; ``date`` is "" when none."""

    table: str
    key: tuple[str, ...]
    date: str
    columns: tuple[str, ...]
    amounts: tuple[str, ...] = ()


# Logical name -> defaults. [C]: ApSupplier, ApInvoice (Supplier, Invoice, OrigInvValue,
# MthInvBal1), GenMaster (AccountType), PorMasterHdr, PorMasterDetail. Everything else [U].
TABLES: dict[str, TableDef] = {
    "supplier": TableDef("ApSupplier", ("Supplier",), "DateLastModified", (
        "Supplier", "SupplierName", "SupShortName", "Currency", "TermsCode", "SupAddr1", "SupAddr2",
        "SupPostalCode", "Telephone", "Email", "OnHold", "DateLastModified")),
    "invoice": TableDef("ApInvoice", ("Supplier", "Invoice"), "PostDate", (
        "Supplier", "Invoice", "InvoiceDate", "PostDate", "DueDate", "Currency", "OrigInvValue", "MthInvBal1",
        "PurchaseOrder", "Reference"), ("OrigInvValue", "MthInvBal1")),
    "invoice_line": TableDef("ApInvoiceDistr", ("Supplier", "Invoice", "DistrLine"), "PostDate", (
        "Supplier", "Invoice", "DistrLine", "GlCode", "CostCentre", "DistrValue", "Description", "PostDate"),
        ("DistrValue",)),
    "gl_account": TableDef("GenMaster", ("GlCode",), "DateLastModified", (
        "GlCode", "Description", "AccountType", "DateLastModified")),
    "cost_center": TableDef("GenCostCentre", ("CostCentre",), "DateLastModified", (
        "CostCentre", "Description", "DateLastModified")),
    "po": TableDef("PorMasterHdr", ("PurchaseOrder",), "DateLastModified", (
        "PurchaseOrder", "Supplier", "OrderEntryDate", "OrderStatus", "Currency", "DateLastModified")),
    "po_line": TableDef("PorMasterDetail", ("PurchaseOrder", "Line"), "", (
        "PurchaseOrder", "Line", "MStockCode", "MStockDes", "MOrderQty", "MPrice", "MGlCode"),
        ("MOrderQty", "MPrice")),
    "gl_posting": TableDef("GenJournalDetail", ("Journal", "EntryNumber"), "EntryDate", (
        "Journal", "EntryNumber", "GlCode", "CostCentre", "EntryType", "EntryValue", "EntryDate", "Supplier",
        "Invoice", "Comment"), ("EntryValue",)),
}

SETTINGS = (
    Setting("page_size", INT, default=DEFAULT_PAGE_SIZE, minimum=1, maximum=10_000,
            help="Rows asked from SYSPRO per query (ReturnRows)."),
    Setting("timeout", INT, default=60, minimum=5, maximum=900, help="Seconds to wait for one SYSPRO answer."),
    Setting("seek_mode", TEXT, default="range", choices=("range", "by_day"),
            help="'range' reads changes with 'later than' conditions (the usual case). 'by_day' is for SYSPRO "
                 "installs that refuse them: changes are read one posting date at a time."),
    Setting("max_day_rows", INT, default=10_000, minimum=1, maximum=100_000,
            help="With seek_mode 'by_day': the most rows one date may hold in one table (asked in one go)."),
    Setting("parents_per_query", INT, default=10, minimum=1, maximum=50,
            help="How many invoices' or orders' lines are asked in one query."),
    Setting("max_url_chars", INT, default=8000, minimum=1000, maximum=65_000,
            help="The longest request SYSPRO's web server takes; longer queries are split."),
    Setting("tables", MAP, help="SYSPRO table names that differ from the defaults, e.g. "
                                "{\"invoice_line\": \"ApGlDisRec\"}. Names: " + ", ".join(TABLES) + "."),
    Setting("columns", MAP, nested=True,
            help="SYSPRO column names that differ from the defaults, per table, e.g. "
                 "{\"invoice\": {\"PostDate\": \"JnlDate\"}}; an empty name means this SYSPRO has no such column."),
    *ODATA_SETTINGS,
)


def _checks(fields: ConnectionFields) -> Problems:
    problems: Problems = {}
    path = urlsplit(fields.url or "").path.rstrip("/").lower()
    if path and not path.endswith(("/sysprowcfservice", "/sysprowcfservice/rest")):
        problems["url"] = ["must be the server with its REST port (http://syspro.acme.local:20000) or the REST "
                           "root (…/SYSPROWCFService/Rest)"]
    settings = fields.settings if isinstance(fields.settings, dict) else {}
    if (problem := url_problem(settings.get("odata_url"))):
        problems.setdefault("settings", []).append(problem)
    for name in ("tables", "columns", "odata_entity_sets"):
        unknown = sorted(set(settings.get(name) or {}) - set(TABLES)) if isinstance(settings.get(name), dict) else []
        if unknown:
            problems.setdefault("settings", []).append(
                f"{name}: {', '.join(unknown)} not known (known: {', '.join(TABLES)})")
    return problems


# "enet" (operator, operator_password, company_password) once the schema knows the method;
# until then the operator signs in through "basic" (username = operator, no company password).
AUTH_METHOD = "enet"

SCHEMA = ConnectionSchema(
    system="syspro",
    label=SYSTEM,
    auth_methods=(AUTH_METHOD,),
    settings=SETTINGS,
    help="SYSPRO through e.net Solutions (WCF REST): read only; every session is logged off after use.",
    url_help="The SYSPRO application server with its e.net REST port, e.g. http://syspro.acme.local:20000, "
             "or the REST root (…/SYSPROWCFService/Rest).",
    company_label="the SYSPRO company id, e.g. EDU1",
    company_required=True,
    key_help={"operator": "A SYSPRO operator allowed to use e.net; each session takes one of its licence seats.",
              "username": "The SYSPRO operator code; each session takes one e.net licence seat.",
              "operator_password": "The operator's SYSPRO password.",
              "company_password": "The company's password, if SYSPRO has one set (often blank)."},
    extra_checks=_checks,
)


# --- values -------------------------------------------------------------------------------------------
def cursor_key(row: dict[str, Any], key: Sequence[str]) -> str:
    """A row's key as one text for a checkpoint: the value itself, or a JSON list for a compound key."""
    values = [str(row.get(k) or "") for k in key]
    return values[0] if len(values) == 1 else json.dumps(values, ensure_ascii=False)


def _key_values(after_key: str | Sequence[str], size: int) -> list[str]:
    if isinstance(after_key, str):
        if size == 1:
            return [after_key]
        values = json.loads(after_key)
    else:
        values = list(after_key)
    if not 1 <= len(values) <= size:
        raise ValueError(f"a key of 1 to {size} parts was expected, got {len(values)}")
    return [str(v) for v in values]


def day_of(value: str) -> str:
    """A SYSPRO date (``2026-01-05``, perhaps with a time of midnight) as ``YYYY-MM-DD``."""
    value = (value or "").strip()
    return value[:10] if re.match(r"^\d{4}-\d{2}-\d{2}", value) else value


class SysproClient:
    """One SYSPRO company as one connection sees it: one e.net session at most, reads only."""

    def __init__(self, spec: ConnectionSpec, http: HttpClient, session: EnetSession,
                 on_event: EventSink = ignore_event, today: Callable[[], date] = date.today) -> None:
        self.spec = spec
        self.http = http
        self.session = session
        self.on_event = on_event
        self.today = today
        self.page_size = int(spec.setting("page_size", DEFAULT_PAGE_SIZE))
        self.seek_mode = spec.setting("seek_mode", "range")
        self.max_day_rows = int(spec.setting("max_day_rows", 10_000))
        self.parents_per_query = int(spec.setting("parents_per_query", 10))
        self.max_url_chars = int(spec.setting("max_url_chars", 8000))
        self._tables = dict(spec.setting("tables", {}) or {})
        self._columns = dict(spec.setting("columns", {}) or {})
        self._entity_sets = dict(spec.setting("odata_entity_sets", {}) or {})
        # set by build_client when the connection has an odata_url: every read goes there, none to e.net
        self.odata: ODataReader | None = None

    # --- the session ----------------------------------------------------------------------------
    @property
    def logged_on(self) -> bool:
        return self.session.user_id is not None

    def logon(self) -> None:
        if not self.logged_on:
            self.session.logon()

    def logoff(self) -> None:
        """End the session if one is open (the client may log on again afterwards)."""
        self.session.logoff()

    def close(self) -> None:
        """Log off and release the HTTP connections; safe to call more than once."""
        try:
            self.logoff()
        finally:
            self.http.close()
            if self.odata is not None:
                self.odata.http.close()

    @property
    def holds_seat(self) -> bool:
        """An e.net session takes a licence seat, and the portal's must be enough: the engine gives
        each connection's session to one cycle at a time. The OData path logs on to nothing."""
        return self.odata is None

    def release_leftover(self) -> bool:
        """Log off a session a killed run left in the token store; True when one was ended.

        Call it only when no other run of this connection is active: it cannot tell a dead
        run's session from a live one.
        """
        stored = self.session.store.load() if self.session.store is not None else None
        if not stored or not stored.access_token or stored.access_token == self.session.user_id:
            return False
        gone = self.session.logoff(stored.access_token)
        if gone:
            self.on_event("connection.leftover_logged_off", {"reason": f"Logged off a {SYSTEM} session that an "
                                                                       "interrupted run had left open"})
        return gone

    def _call(self, operation: str, params: dict[str, str]) -> requests.Response:
        self.logon()
        self.session.relogged_in_call = False
        return self.http.request("GET", f"{operation}?{encode(params)}")

    # --- COMFND -----------------------------------------------------------------------------------
    def query(self, table: str, columns: Sequence[str], where: Sequence[Condition] = (),
              order_by: Sequence[str] = (), rows: int | None = None,
              any_of: Sequence[Sequence[Condition]] = ()) -> list[dict[str, str]]:
        """Rows of ``table`` (text values keyed by ``columns`` as given). ``where`` conditions are
        ANDed; ``any_of`` groups (each ANDed with ``where``) are ORed."""
        return self._query(table, columns, [[*where, *g] for g in any_of] or [list(where)], order_by, rows)[0]

    def _query(self, table: str, columns: Sequence[str], groups: list[list[Condition]], order_by: Sequence[str],
               rows: int | None) -> tuple[list[dict[str, str]], set[str]]:
        xml = comfnd_xml(table, columns, groups, order_by, rows)
        try:
            response = self._call("Query/Query", {"BusinessObject": "COMFND", "XmlIn": xml})
        except SystemicError as exc:
            if exc.code in ("query_refused", "condition_refused"):
                exc.message = f"{exc.message} (table {table}; check the connection's table and column names)" \
                    if exc.code == "query_refused" else f"{exc.message} (table {table})"
            raise
        return parse_rows(response, columns)

    def _fits(self, table: str, columns: Sequence[str], groups: list[list[Condition]]) -> bool:
        xml = comfnd_xml(table, columns, groups, columns[:1], self.page_size)
        return len(self.http.base_url) + len(quote(xml, safe="")) + 200 <= self.max_url_chars

    def iter_changed(self, table: str, date_column: str, key_column: str | Sequence[str], since_date: str = "",
                     after_key: str | Sequence[str] | None = None, columns: Sequence[str] = (), *,
                     until_date: str = "", where: Sequence[Condition] = ()) -> Iterator[list[dict[str, str]]]:
        """Pages of rows in (date, key) order from ``since_date`` on, as text.

        With ``after_key`` the read resumes strictly after (since_date, after_key): first that
        day's rows with a greater key, then later days (``after_key`` may be a prefix of the key:
        the rows that start with it are passed over too). Without it the whole of ``since_date`` is
        read again: a date has no time, so a row changed later on the same day cannot be told
        apart and the caller skips unchanged rows by their content. Each page continues from the
        last row of the one before (a seek, never an offset). A server that ignores ReturnRows
        and sends more rows is fine: the next seek starts after the last row it sent. A page that
        does not move the position forward stops with an error instead of looping.

        ``date_column`` "" pages by key alone. With ``seek_mode`` "by_day" (installs that take
        only EQ conditions) see :meth:`_by_day`.
        """
        keys = [key_column] if isinstance(key_column, str) else list(key_column)
        order = [date_column, *keys] if date_column else keys
        wanted = list(dict.fromkeys([*columns, *order]))
        if self.seek_mode == "by_day":
            yield from self._by_day(table, date_column, keys, wanted, since_date, until_date, where)
            return
        base = list(where) + ([(date_column, "LE", until_date)] if until_date and date_column else [])
        if after_key not in (None, "") and (since_date or not date_column):
            cursor: tuple[str, list[str]] | None = (since_date, _key_values(after_key, len(keys)))  # type: ignore[arg-type]
        else:
            cursor = None
        first = [[*base, (date_column, "GE", since_date)]] if since_date and date_column else [base]
        while True:
            groups = self._seek(date_column, keys, cursor, base) if cursor else first
            rows, _ = self._query(table, wanted, groups, order, self.page_size)
            if rows:
                yield rows
            if len(rows) < self.page_size:
                return
            last = rows[-1]
            moved = (last[date_column] if date_column else "", [last[k] for k in keys])
            if moved == cursor:
                raise SystemicError(f"{SYSTEM} answered {table} from the same position twice; it may ignore "
                                    "OrderBy. Stopped rather than loop")
            cursor = moved

    @staticmethod
    def _seek(date_column: str, keys: list[str], cursor: tuple[str, list[str]], base: list[Condition]
              ) -> list[list[Condition]]:
        """Strictly after (date, k1..kn): one bracketed group per key position, then later dates.

        ``values`` may be a prefix of the key (k1..km, m < n): then every row that starts with it
        is passed over too (all the lines of the invoice a checkpoint names)."""
        day, values = cursor
        same_day = [(date_column, "EQ", day)] if date_column else []
        groups = []
        for n in range(len(values)):
            equal = [(keys[i], "EQ", values[i]) for i in range(n)]
            groups.append([*base, *same_day, *equal, (keys[n], "GT", values[n])])
        if date_column:
            groups.append([*base, (date_column, "GT", day)])
        return groups

    def _by_day(self, table: str, date_column: str, keys: list[str], columns: list[str], since_date: str,
                until_date: str, where: Sequence[Condition]) -> Iterator[list[dict[str, str]]]:
        """EQ-only reads: one query per date from ``since_date`` to tomorrow (or ``until_date``), each
        asking ``max_day_rows``. A date (or, without ``since_date``, a whole table) that fills the
        answer cannot be paged without GT, so it stops with an error naming it."""
        limit = self.max_day_rows

        def one(groups: list[list[Condition]], what: str) -> list[dict[str, str]]:
            rows, _ = self._query(table, columns, groups, [date_column, *keys] if date_column else keys, limit)
            if len(rows) == limit:
                raise SystemicError(f"{SYSTEM} holds {limit:,} or more rows of {table} {what}; with seek_mode "
                                    "'by_day' they must fit one answer: raise max_day_rows")
            return rows

        if not date_column or not since_date:
            rows = one([list(where)], "in all")
            if rows:
                yield rows
            return
        day = date.fromisoformat(day_of(since_date))
        last = date.fromisoformat(day_of(until_date)) if until_date else self.today() + timedelta(days=1)
        while day <= last:
            rows = one([[*where, (date_column, "EQ", day.isoformat())]], f"on {day.isoformat()}")
            if rows:
                yield rows
            day += timedelta(days=1)

    # --- logical tables (what the flows read) -------------------------------------------------------
    def table_def(self, logical: str) -> TableDef:
        """The table as this connection names it (settings ``tables``/``columns`` over the defaults)."""
        default = TABLES[logical]
        names = {**{c: c for c in default.columns}, **(self._columns.get(logical) or {})}

        def name(column: str) -> str:
            return str(names.get(column, column))

        return TableDef(table=str(self._tables.get(logical) or default.table), key=tuple(name(k) for k in default.key),
                        date=name(default.date) if default.date else "",
                        columns=tuple(name(c) for c in default.columns), amounts=default.amounts)

    def _logical_rows(self, logical: str, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
        default, physical = TABLES[logical], self.table_def(logical)
        pairs = list(zip(default.columns, physical.columns, strict=True))
        amounts = [(name, column) for name, column in pairs if name in default.amounts]
        dates = [(name, column) for name, column in pairs if name not in default.amounts and "Date" in name]
        plain = [pair for pair in pairs if pair not in amounts and pair not in dates]
        days: dict[str, str] = {}  # many rows share a date: each distinct text is looked at once
        out = []
        for row in rows:
            item: dict[str, Any] = {name: row.get(column, "") if column else "" for name, column in plain}
            for name, column in dates:
                value = row.get(column, "") if column else ""
                day = days.get(value)
                if day is None:
                    day = days[value] = day_of(value)
                item[name] = day
            for name, column in amounts:
                item[name] = self._amount(row.get(column, "") if column else "", physical.table, column)
            out.append(item)
        return out

    @staticmethod
    def _amount(value: str, table: str, column: str) -> Decimal | None:
        if not value.strip():
            return None
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise SystemicError(f"{SYSTEM} sent {value[:40]!r} in {table}.{column}, which is not a plain decimal "
                                "number (check SYSPRO's decimal format for e.net)") from None

    def read_changed(self, logical: str, since_date: str = "", after_key: str | Sequence[str] | None = None, *,
                     until_date: str = "") -> Iterator[list[dict[str, Any]]]:
        """Pages of a logical table (``invoice``, ``supplier``…) in (date, key) order, keyed by the
        default column names whatever this SYSPRO calls them; amounts as Decimal, dates as
        ``YYYY-MM-DD``. ``cursor_key(row, TABLES[logical].key)`` gives the checkpoint's key."""
        physical = self.table_def(logical)
        if not all(physical.key):
            raise SystemicError(f"The connection's columns setting leaves {logical} without a key column")
        columns = [c for c in physical.columns if c]
        if self.odata is not None:
            after = _key_values(after_key, len(physical.key)) if after_key not in (None, "") else None
            for rows in self.odata.iter_rows(self.entity_set(logical), columns, physical.date, physical.key,
                                             since_date=since_date if physical.date else "", after=after,
                                             until_date=until_date):
                yield self._logical_rows(logical, rows)
            return
        for rows in self.iter_changed(physical.table, physical.date, physical.key, since_date if physical.date else "",
                                      after_key, columns, until_date=until_date):
            yield self._logical_rows(logical, rows)

    def read_for(self, logical: str, by: Sequence[str], parents: Sequence[Sequence[str]]
                 ) -> Iterator[list[dict[str, Any]]]:
        """Pages of a logical table's rows whose ``by`` columns (default names) equal one of
        ``parents``, e.g. ``read_for("po_line", ["PurchaseOrder"], [["000101"], ["000102"]])``.

        ``parents_per_query`` parents go in one query (fewer when the request would be too long);
        a full answer is split until each parent's rows are paged by key on their own.
        """
        physical, default = self.table_def(logical), TABLES[logical]
        columns = [c for c in physical.columns if c]
        by_physical = [physical.columns[default.columns.index(b)] for b in by]
        order = list(physical.key)
        pending = [list(parents[i:i + self.parents_per_query]) for i in range(0, len(parents), self.parents_per_query)]
        while pending:
            chunk = pending.pop(0)
            groups = [[(c, "EQ", str(v)) for c, v in zip(by_physical, parent, strict=True)] for parent in chunk]
            if self.odata is not None:
                # one read per chunk, paged by key: OData answers any number of parents' rows in order
                where, entity = self.odata.any_of(groups), self.entity_set(logical)
                if len(chunk) > 1 and not self.odata.fits(entity, columns, where, order):
                    half = len(chunk) // 2
                    pending[:0] = [chunk[:half], chunk[half:]]
                    continue
                for rows in self.odata.iter_rows(entity, columns, "", order, where=where):
                    yield self._logical_rows(logical, rows)
                continue
            if len(chunk) > 1 and not self._fits(physical.table, columns, groups):
                half = len(chunk) // 2
                pending[:0] = [chunk[:half], chunk[half:]]
                continue
            if len(chunk) == 1:
                for rows in self.iter_changed(physical.table, "", order, columns=columns, where=groups[0]):
                    yield self._logical_rows(logical, rows)
                continue
            limit = self.max_day_rows if self.seek_mode == "by_day" else self.page_size
            rows, _ = self._query(physical.table, columns, groups, order, limit)
            if len(rows) >= limit:  # perhaps more: split until one parent pages by key
                half = len(chunk) // 2
                pending[:0] = [chunk[:half], chunk[half:]]
                continue
            if rows:
                yield self._logical_rows(logical, rows)

    def entity_set(self, logical: str) -> str:
        """The OData entity set of a logical table: the ``odata_entity_sets`` setting, else the table's name."""
        return str(self._entity_sets.get(logical) or self.table_def(logical).table)

    # --- connection test ------------------------------------------------------------------------------
    def check(self) -> list[dict[str, Any]]:
        """Logon, then one row of each table with every column the flows read; always logs off.

        With ``odata_url`` the tables are read through OData instead (no e.net session is opened)."""
        if self.odata is not None:
            return self._check_odata(self.odata)
        lines: list[dict[str, Any]] = []
        company = self.session.company
        try:
            self.logon()
        except SyncError as exc:
            return [{"check": "logon", "ok": False, "message": f"Cannot log on to {SYSTEM} company {company}: {exc}"}]
        lines.append({"check": "logon", "ok": True,
                      "message": f"Logged on to {SYSTEM} company {company} as operator {self.session.operator}"})
        try:
            for logical in TABLES:
                physical = self.table_def(logical)
                columns = [c for c in physical.columns if c]
                try:
                    _, missing = self._query(physical.table, columns, [[]], list(physical.key), 1)
                except SyncError as exc:
                    lines.append({"check": f"table:{physical.table}", "ok": False,
                                  "message": f"Cannot read {physical.table} ({logical}): {exc}"})
                    if exc.kind == "systemic" and exc.code not in ("query_refused", "condition_refused"):
                        break
                    continue
                if missing:
                    lines.append({"check": f"table:{physical.table}", "ok": False,
                                  "message": f"{physical.table} ({logical}) has no column "
                                             f"{', '.join(sorted(missing))}: set its name in the columns setting"})
                else:
                    lines.append({"check": f"table:{physical.table}", "ok": True,
                                  "message": f"Read {physical.table} ({logical})"})
            if self.seek_mode == "range":
                lines.append(self._check_range())
        finally:
            self.logoff()
        return lines

    def _check_odata(self, odata: ODataReader) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for logical in TABLES:
            physical, entity = self.table_def(logical), self.entity_set(logical)
            columns = [c for c in physical.columns if c]
            try:
                odata.get(entity, columns, "", list(physical.key), top=1)
            except SyncError as exc:
                lines.append({"check": f"odata:{entity}", "ok": False,
                              "message": f"Cannot read {entity} ({logical}) through OData: {exc}"})
                if isinstance(exc, AuthError) or exc.status in (None, 401):
                    break
                continue
            lines.append({"check": f"odata:{entity}", "ok": True, "message": f"Read {entity} ({logical}) through OData"})
        return lines

    def _check_range(self) -> dict[str, Any]:
        invoice = self.table_def("invoice")
        try:
            self._query(invoice.table, list(invoice.key[:1]), [[(invoice.date, "GT", "1900-01-01")]],
                        list(invoice.key[:1]), 1)
        except SyncError as exc:
            return {"check": "conditions", "ok": False, "message": f"Reading changes needs 'later than' conditions: "
                                                                   f"{exc}"}
        return {"check": "conditions", "ok": True, "message": "SYSPRO takes 'later than' conditions"}


def build_client(spec: ConnectionSpec, store: Any = None, counter: CallCounter | None = None,
                 policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
                 session: requests.Session | None = None) -> SysproClient:
    policy = replace(policy or HttpPolicy(), timeout=float(spec.setting("timeout", 60)))
    operator = str(spec.setting("operator") or spec.setting("username"))
    operator_password = spec.secret("operator_password") or spec.secret("password")
    company_password = spec.secret("company_password")
    secrets = []
    for value in spec.secret_values():
        secrets.extend({value, quote(value, safe=""), quote_plus(value)})
    enet = EnetSession(operator, operator_password, spec.company, company_password, store=store, on_event=on_event)
    http_session = session or new_session()
    http_session.auth = enet  # puts the current UserId into every call's URL
    http = HttpClient(rest_base(spec.url), auth=enet, policy=policy, counter=counter, session=http_session,
                      error_classifier=classify_status, body_classifier=enet.classify, secrets=tuple(secrets),
                      on_event=on_event)
    enet.http = http
    client = SysproClient(spec, http, enet, on_event)
    odata_url = str(spec.setting("odata_url") or "").rstrip("/")
    if odata_url:
        token = basic_token(operator, operator_password)
        odata_http = HttpClient(odata_url, auth=BasicAuth(operator, operator_password), policy=policy, counter=counter,
                                session=new_session(), default_headers={"Accept": "application/json"},
                                secrets=(*secrets, token), on_event=on_event)
        client.odata = ODataReader(odata_http, operator=operator,
                                   page_size=int(spec.setting("odata_page_size", ODATA_PAGE)),
                                   dates=str(spec.setting("odata_dates", "date")),
                                   numbers=list(spec.setting("odata_number_columns", []) or []),
                                   max_url_chars=client.max_url_chars)
        odata_http.error_classifier = client.odata.classify
    return client
