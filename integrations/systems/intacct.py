"""Sage Intacct client: one XML gateway, API sessions, readByQuery paging, uniqueid writes.

Facts followed (API_FACTS section 4):

- Every request is ``POST`` of ``<request><control>…</control><operation>…</operation>
  </request>`` to the gateway; the control block carries the sender id and password, a
  control id, ``uniqueid`` and ``dtdversion`` 3.0, the operation its authentication.
- ``getAPISession`` exchanges sender + user credentials for a session id and the endpoint to
  use from then on. The session is a :class:`~integrations.systems.auth.Token` (access token =
  session id, ``extra["endpoint"]``), cached encrypted by the token store for at most 50
  minutes, refreshed before it runs out, and refreshed once when a call is refused at the
  authentication level (an expired session). ``extra`` also names the sender, company and
  user it belongs to; a cached session for anyone else is discarded, never reused.
- Every response is parsed whatever its HTTP status, because Intacct answers HTTP 200 with
  ``<errormessage>`` at control, authentication or function level. Those become classified
  errors (:class:`IntacctErrorItem`: errorno, description, description2, correction).
- ``readByQuery`` has no ORDER BY: :meth:`IntacctClient.iter_changed` turns one scan into pages
  in (WHENMODIFIED, key) order with bounded memory, so the engine's checkpoints stay safe.
- Creates and updates go out with ``uniqueid=true`` and a function ``controlid`` derived from
  the record and its content; a repeat is refused with "A successful transaction has already
  been recorded with the control id …", which :meth:`IntacctClient.write` resolves to the
  existing record instead of failing (or creating a second bill).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import requests

from integrations.systems.auth import Token, TokenManager, TokenStore, utcnow
from integrations.systems.errors import AuthError, SessionExpired, SyncError, SystemicError
from integrations.systems.external_sort import sorted_pages
from integrations.systems.http import CallCounter, HttpClient, HttpPolicy, new_session
from integrations.systems.intacct_envelope import (
    XML_HEADERS,
    Credentials,
    Function,
    FunctionResult,
    IntacctAuthError,
    IntacctDataError,
    IntacctSystemicError,
    IntacctTransientError,
    classify,
    control_error,
    error_from,
    fn_get_api_session,
    fn_read,
    fn_read_by_query,
    fn_read_more,
    parse_response,
    quote,
    request_xml,
)
from integrations.systems.intacct_xml import child_text, element
from integrations.systems.schema import INT, ConnectionFields, ConnectionSchema, Problems, Setting
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event

GATEWAY_URL = "https://api.intacct.com/ia/xml/xmlgw.phtml"
SESSION_MAX_AGE = timedelta(minutes=50)
MAX_PAGE_SIZE = 1000
DEFAULT_SCAN_WINDOW = 5000
DEFAULT_WRITE_BATCH = 50

# The settings a Sage Intacct connection accepts (validated wherever they are entered).
SETTINGS = (
    Setting("page_size", INT, default=MAX_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE,
            help="Records per readByQuery page (Intacct allows 1,000)."),
    Setting("write_batch", INT, default=DEFAULT_WRITE_BATCH, minimum=1, maximum=100,
            help="Functions per write request (Intacct allows 100)."),
    Setting("scan_window", INT, default=DEFAULT_SCAN_WINDOW, minimum=1, maximum=100_000,
            help="Changed records sorted in memory at a time (readByQuery cannot sort; more are "
                 "sorted on disk)."),
)


def _intacct_checks(fields: ConnectionFields) -> Problems:
    """Intacct signs in per sender, company and user: the company id once, one entity."""
    found: Problems = {}
    settings = fields.settings if isinstance(fields.settings, dict) else {}
    company, in_settings = fields.company, settings.get("company_id")
    if not (company or in_settings):
        found["company"] = ["required for Sage Intacct: the company id (or the company_id setting)"]
    elif company and in_settings and company != in_settings:
        found["settings"] = [f"company_id: {in_settings!r} differs from the company {company!r}"]
    entity, location = settings.get("entity_id"), settings.get("location_id")
    if entity and location and entity != location:
        found.setdefault("settings", []).append(f"location_id: {location!r} differs from entity_id {entity!r} (give one)")
    return found


SCHEMA = ConnectionSchema(
    system="sage_intacct",
    label="Sage Intacct",
    auth_methods=("session",),
    settings=SETTINGS,
    help="Sage Intacct's XML gateway: a Web Services sender plus an API user of the company.",
    url_help="The XML gateway, e.g. https://api.intacct.com/ia/xml/xmlgw.phtml.",
    company_label="the Intacct company id",
    key_help={"sender_id": "The Web Services sender id (Sage issues it with the Web Services licence).",
              "user_id": "The Web Services user of the company (not a person's login).",
              "entity_id": "The entity to work in, for a multi-entity company (leave empty for top level)."},
    extra_checks=_intacct_checks,
)
WHEN_FORMAT = "%m/%d/%Y %H:%M:%S"  # WHENMODIFIED on the wire [C]; its time zone is [U]
CURSOR_FORMAT = "%Y-%m-%d %H:%M:%S"  # how we store it: sortable


# Timestamps and dates repeat across a page (one per bill, many per batch): parse each once.
@lru_cache(maxsize=8192)
def to_cursor(when: str) -> str:
    """``MM/DD/YYYY HH:MM:SS`` (WHENMODIFIED) → sortable ``YYYY-MM-DD HH:MM:SS``."""
    return datetime.strptime(when.strip(), WHEN_FORMAT).strftime(CURSOR_FORMAT) if when else ""


def from_cursor(cursor: str) -> str:
    return datetime.strptime(cursor, CURSOR_FORMAT).strftime(WHEN_FORMAT)


@lru_cache(maxsize=8192)
def iso_date(value: str) -> str:
    """An Intacct date ``MM/DD/YYYY`` (optionally with a time) → ``YYYY-MM-DD``."""
    if not value:
        return ""
    return datetime.strptime(value.strip()[:10], "%m/%d/%Y").strftime("%Y-%m-%d")


@lru_cache(maxsize=8192)
def intacct_date(value: str) -> str:
    """``YYYY-MM-DD`` (optionally with a time) → Intacct's ``MM/DD/YYYY``."""
    if not value:
        return ""
    return datetime.strptime(value.strip()[:10], "%Y-%m-%d").strftime("%m/%d/%Y")


def derived_controlid(*parts: str) -> str:
    """A function controlid derived from the record and its content: same post, same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:24]
    return f"mlc-{digest}"


@dataclass
class WriteOp:
    """One create or update. ``identity`` finds the record a refused duplicate create made."""

    key: str
    action: str  # "create" | "update"
    obj: str
    values: dict[str, Any]
    controlid: str
    identity: dict[str, str] = field(default_factory=dict)


@dataclass
class WriteOutcome:
    record_no: str = ""
    duplicate: bool = False
    error: SyncError | None = None


# --- sessions ---------------------------------------------------------------------------------
class SessionKeyedStore:
    """A token store that only hands out a session of these sender, company and user.

    The Connection already holds one cache per sender/company/user; checking the key inside
    the token as well means a changed credential or a copied cache can never borrow a session.
    """

    def __init__(self, inner: TokenStore, key: dict[str, str]) -> None:
        self.inner = inner
        self.key = key

    def _matching(self, token: Token | None) -> Token | None:
        if token is None or not token.access_token:
            return token
        if any(str(token.extra.get(k, "")) != v for k, v in self.key.items()):
            return None
        return token

    def load(self) -> Token | None:
        return self._matching(self.inner.load())

    def save(self, token: Token | None) -> None:
        self.inner.save(token)

    @contextmanager
    def locked(self) -> Iterator[Token | None]:
        with self.inner.locked() as token:
            yield self._matching(token)


def _allowed_endpoint(endpoint: str, gateway: str) -> bool:
    """The session's endpoint must be the gateway's host or an https Intacct host."""
    try:
        got, base = urlsplit(endpoint), urlsplit(gateway)
    except ValueError:  # e.g. an unclosed IPv6 bracket: not an address at all
        return False
    if got.scheme not in ("http", "https") or not got.hostname:
        return False
    if (got.hostname, got.scheme) == (base.hostname, base.scheme):
        return True
    return got.scheme == "https" and (got.hostname == "intacct.com" or got.hostname.endswith(".intacct.com"))


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url[:80]
    except ValueError:
        return url[:80]


def session_fetcher(http: HttpClient, gateway: str, creds: Credentials,
                    clock: Callable[[], datetime] = utcnow) -> Callable[[Token | None], Token]:
    """``getAPISession`` with the sender and user credentials (in its own request, as documented)."""

    def fetch(current: Token | None) -> Token:
        login = element("login", {"userid": creds.user_id, "companyid": creds.company_id,
                                  "password": creds.user_password, "locationid": creds.location_id or None})
        body = request_xml(creds, login, [fn_get_api_session(creds.location_id)])
        response = http.request("POST", gateway, data=body, headers=XML_HEADERS, idempotent=True)
        parsed = parse_response(response.content, response.status_code)
        if parsed.control_status != "success" or parsed.control_errors:
            raise control_error(parsed.control_errors, response.status_code)
        if parsed.auth_failed:
            raise error_from(IntacctAuthError, "authentication", parsed.auth_errors, fallback="sign-in refused")
        if not parsed.results:
            raise IntacctTransientError("getAPISession returned no result", ambiguous=False)
        result = parsed.results[0]
        if result.error is not None:
            error = result.error
            raise error if error.kind == "transient" else error_from(IntacctAuthError, "function", result.errors)
        api = result.data.find("api") if result.data is not None else None
        session_id, endpoint = child_text(api, "sessionid"), child_text(api, "endpoint") or gateway
        if not session_id:
            raise IntacctAuthError("getAPISession returned no session id")
        if not _allowed_endpoint(endpoint, gateway):
            raise IntacctSystemicError(f"getAPISession pointed at an unexpected endpoint host {_host(endpoint)!r}")
        now = clock()
        expires = now + SESSION_MAX_AGE
        if parsed.session_timeout is not None:
            expires = min(expires, parsed.session_timeout)
        return Token(access_token=session_id, expires_at=expires, issued_at=now,
                     extra={"endpoint": endpoint, **creds.session_key()})

    return fetch


# --- the client -------------------------------------------------------------------------------
class SessionAuth:
    """The API session as :class:`HttpClient`'s auth: taken (or renewed) before each attempt, and
    dropped when Intacct refused it, so the retry signs in again."""

    def __init__(self, tokens: TokenManager) -> None:
        self.tokens = tokens
        self.token: Token = Token(access_token="")

    def apply(self, headers: dict[str, str]) -> None:
        self.token = self.tokens.token()

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        self.tokens.invalidate(self.token.access_token)
        return True


def classify_body(response: requests.Response) -> SyncError | None:
    """Errors inside the gateway's answer (HTTP 200): a failed request as a whole (``control``:
    nothing ran, so even a write may be sent again, e.g. after GW-0010's rate limit), or a refused
    session (sign in again once). The parsed answer is kept on the response for the caller."""
    try:
        parsed = parse_response(response.content, response.status_code)
    except SyncError as exc:
        return exc
    response.intacct = parsed  # type: ignore[attr-defined]
    if parsed.control_status != "success" or parsed.control_errors:
        error = control_error(parsed.control_errors, response.status_code)
        error.not_processed = True
        return error
    if parsed.auth_failed:
        refused = error_from(IntacctAuthError, "authentication", parsed.auth_errors, fallback="session refused")
        return SessionExpired(f"Intacct refused the session: {refused}", detail=refused.detail)
    return None


class IntacctClient:
    """One Intacct company (optionally one entity) as one connection sees it."""

    def __init__(self, spec: ConnectionSpec, http: HttpClient, tokens: TokenManager, creds: Credentials,
                 on_event: EventSink = ignore_event) -> None:
        self.spec = spec
        self.http = http
        self.session_auth = http.auth
        self.tokens = tokens
        self.creds = creds
        self.on_event = on_event
        self.gateway = http.base_url
        self.page_size = _bounded(spec.setting("page_size", MAX_PAGE_SIZE), "page_size", 1, MAX_PAGE_SIZE)
        self.write_batch = _bounded(spec.setting("write_batch", DEFAULT_WRITE_BATCH), "write_batch", 1, 100)
        self.scan_window = _bounded(spec.setting("scan_window", DEFAULT_SCAN_WINDOW), "scan_window", 1, 100_000)

    def close(self) -> None:
        """End of the cycle: release the HTTP connections. The Intacct API session stays cached for
        the connection's next cycle: it holds no seat."""
        self.http.close()

    @property
    def location_id(self) -> str:
        return self.creds.location_id

    # --- the gateway ------------------------------------------------------------------------
    def execute(self, functions: Sequence[Function], *, unique: bool = False,
                transaction: bool = False) -> list[FunctionResult]:
        """Send functions in one request with the cached session.

        The session id travels inside the XML, so the body (and the session's endpoint) is built
        for each attempt from the session :class:`SessionAuth` holds then: a refused session (an
        ``authentication`` failure in the answer, or HTTP 401) is signed in again once by
        :class:`HttpClient`, like any other client's token.
        """
        idempotent = unique or all(f.read_only for f in functions)
        session = self.session_auth

        def endpoint() -> str:
            return str(session.token.extra.get("endpoint") or self.gateway)

        def body() -> bytes:
            return request_xml(self.creds, element("sessionid", session.token.access_token), functions,
                               unique=unique, transaction=transaction)

        response = self.http.request("POST", endpoint, data=body, headers=XML_HEADERS, idempotent=idempotent)
        parsed = getattr(response, "intacct", None) or parse_response(response.content, response.status_code)
        return self._match(functions, parsed.results)

    def _match(self, functions: Sequence[Function], results: list[FunctionResult]) -> list[FunctionResult]:
        by_id = {r.controlid: r for r in results if r.controlid}
        matched = []
        for index, function in enumerate(functions):
            result = by_id.get(function.controlid) or (results[index] if index < len(results) else None)
            if result is None:
                result = FunctionResult(function.name, function.controlid, "failure",
                                        error=IntacctTransientError("No result for this function", ambiguous=True))
            matched.append(result)
        return matched

    def call(self, function: Function, *, unique: bool = False) -> FunctionResult:
        return self.execute([function], unique=unique)[0].raise_for_error()

    # --- reading ----------------------------------------------------------------------------
    def iter_query(self, obj: str, query: str = "", fields: Sequence[str] = ("*",),
                   page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """``readByQuery`` then ``readMore`` by ``resultId`` until ``numremaining`` is 0."""
        size = _bounded(page_size or self.page_size, "page_size", 1, MAX_PAGE_SIZE)
        result = self.call(fn_read_by_query(obj, query, fields, size))
        while True:
            records = result.records()
            if records:
                yield records
            remaining = _count(result.attr("numremaining", "0"))
            result_id = result.attr("resultId")
            if remaining <= 0 or not result_id or not records:
                return
            result = self.call(fn_read_more(result_id))

    def iter_changed(self, obj: str, since: str, *, after_key: str = "", key_field: str = "RECORDNO",
                     fields: Sequence[str] = ("*",), extra_query: str = "") -> Iterator[list[dict[str, Any]]]:
        """Records with WHENMODIFIED >= ``since`` (a cursor), in (WHENMODIFIED, key) order; with
        ``after_key``, only those after (``since``, ``after_key``).

        readByQuery cannot sort, and a checkpoint after an unsorted page could skip records.
        So the matching records are scanned once and handed out sorted by (WHENMODIFIED, key):
        up to ``scan_window`` of them are sorted in memory, and beyond that they are set aside in
        sorted runs on disk that are merged as the pages are handed out
        (:func:`~integrations.systems.external_sort.sorted_spilling`). Memory stays bounded by
        the window and the calls by one scan, whatever the number of changed records.
        """
        after = _natural(after_key) if since and after_key else None
        wanted = list(fields) if "*" in fields else sorted({*fields, key_field, "WHENMODIFIED"})
        conditions = [f"WHENMODIFIED >= {quote(from_cursor(since))}"] if since else []
        if extra_query:
            conditions.append(f"({extra_query})")

        def scanned() -> Iterator[tuple[tuple[str, int, str], dict[str, Any]]]:
            for page in self.iter_query(obj, " AND ".join(conditions), wanted):
                for row in page:
                    cursor, key = _when(obj, row, key_field), str(row.get(key_field) or "")
                    natural = _natural(key)
                    if after is not None and cursor == since and natural <= after:
                        continue  # done by the run that stopped there
                    yield (cursor, *natural), row

        yield from sorted_pages(scanned(), self.scan_window, self.page_size)

    def read(self, obj: str, keys: Sequence[str], fields: Sequence[str] = ("*",)) -> list[dict[str, Any]]:
        """Whole records (with their lines) by RECORDNO, up to 100 keys per function."""
        keys = [k for k in dict.fromkeys(keys) if k]
        functions = [fn_read(obj, keys[i:i + 100], fields) for i in range(0, len(keys), 100)]
        records: list[dict[str, Any]] = []
        for start in range(0, len(functions), 10):
            for result in self.execute(functions[start:start + 10]):
                records.extend(result.raise_for_error().records())
        return records

    def find(self, obj: str, identities: Sequence[dict[str, str]], fields: Sequence[str] = ("RECORDNO",)
             ) -> dict[int, dict[str, Any]]:
        """Records matching each identity (field → value), by the identity's index."""
        found: dict[int, dict[str, Any]] = {}
        indexed = [(i, ident) for i, ident in enumerate(identities) if ident]
        for start in range(0, len(indexed), 40):
            chunk = indexed[start:start + 40]
            query = " OR ".join(
                "(" + " AND ".join(f"{name} = {quote(value)}" for name, value in sorted(ident.items())) + ")"
                for _, ident in chunk
            )
            names = ["*"] if "*" in fields else sorted({*fields, "RECORDNO", *(n for _, ident in chunk for n in ident)})
            for page in self.iter_query(obj, query, names):
                for row in page:
                    for index, ident in chunk:
                        if all(str(row.get(name, "")) == value for name, value in ident.items()):
                            found.setdefault(index, row)
        return found

    # --- writing ----------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> dict[str, WriteOutcome]:
        """Creates and updates with ``uniqueid=true``, ``write_batch`` functions per request.

        A function refused as already recorded is resolved to the existing record (an
        update's own RECORDNO; a create's record found by its identity). A request that fails
        as a whole raises, so the engine can retry the page: the repeats are refused the same
        way, so nothing is written twice.
        """
        outcomes: dict[str, WriteOutcome] = {}
        unresolved: list[WriteOp] = []
        for start in range(0, len(ops), self.write_batch):
            chunk = list(ops[start:start + self.write_batch])
            functions = [Function(op.action, element(op.action, element(op.obj, op.values)), op.controlid)
                         for op in chunk]
            for op, result in zip(chunk, self.execute(functions, unique=True), strict=True):
                if result.ok:
                    records = result.records()
                    record_no = str(records[0].get("RECORDNO", "")) if records else ""
                    outcomes[op.key] = WriteOutcome(record_no or str(op.values.get("RECORDNO", "")))
                elif result.duplicate:
                    outcomes[op.key] = WriteOutcome(str(op.values.get("RECORDNO", "")), duplicate=True)
                    if not outcomes[op.key].record_no:
                        unresolved.append(op)
                else:
                    outcomes[op.key] = WriteOutcome(error=result.error)
        if unresolved:
            found = self.find(unresolved[0].obj, [op.identity for op in unresolved])
            for index, op in enumerate(unresolved):
                row = found.get(index)
                if row is None:
                    outcomes[op.key].error = IntacctTransientError(
                        f"Intacct refused {op.controlid} as already recorded, but the record was not found yet")
                else:
                    outcomes[op.key].record_no = str(row.get("RECORDNO", ""))
        return outcomes

    # --- connection test --------------------------------------------------------------------
    def check(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        try:
            token = self.tokens.token()
            lines.append({"check": "credentials", "ok": True,
                          "message": f"Signed in to company {self.creds.company_id} as {self.creds.user_id}; "
                                     f"endpoint {token.extra.get('endpoint')}"})
        except SyncError as exc:
            lines.append({"check": "credentials", "ok": False, "message": f"Sign-in failed: {exc}"})
            return lines
        for obj in ("GLACCOUNT", "DEPARTMENT", "VENDOR", "APBILL"):
            try:
                self.call(fn_read_by_query(obj, "", ["RECORDNO"], 1))
                lines.append({"check": f"object:{obj}", "ok": True, "message": f"Read {obj}"})
            except SyncError as exc:
                lines.append({"check": f"object:{obj}", "ok": False, "message": f"Cannot read {obj}: {exc}"})
                if isinstance(exc, AuthError):  # nothing else will work either
                    break
        return lines


def _count(value: str) -> int:
    """``numremaining``: a count, or an answer we cannot page on."""
    value = value.strip() or "0"
    if not (value.isascii() and value.isdigit()):
        raise IntacctTransientError(f"Intacct answered a numremaining that is not a count: {value[:40]!r}")
    return int(value[:12])


def _when(obj: str, row: dict[str, Any], key_field: str) -> str:
    """A row's WHENMODIFIED as a cursor; one that is no time cannot be ordered, so the page cannot be read."""
    value = str(row.get("WHENMODIFIED") or "")
    try:
        return to_cursor(value)
    except ValueError:
        raise IntacctDataError(f"Intacct answered {obj} {str(row.get(key_field) or '')[:40]!r} with a WHENMODIFIED "
                               f"that is not MM/DD/YYYY HH:MM:SS: {value[:40]!r}") from None


def _natural(key: str) -> tuple[int, str]:
    """RECORDNOs sort as numbers, other keys as text."""
    return (0, key.zfill(20)) if key.isdigit() else (1, key)


def _bounded(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SystemicError(f"Intacct setting {name} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise SystemicError(f"Intacct setting {name} must be between {low} and {high}, not {number}")
    return number


def credentials(spec: ConnectionSpec) -> Credentials:
    creds = Credentials(
        sender_id=str(spec.setting("sender_id")), sender_password=spec.secret("sender_password"),
        company_id=str(spec.company or spec.setting("company_id")), user_id=str(spec.setting("user_id")),
        user_password=spec.secret("user_password"),
        location_id=str(spec.setting("entity_id") or spec.setting("location_id")),
    )
    missing = [name for name in ("sender_id", "sender_password", "company_id", "user_id", "user_password")
               if not getattr(creds, name)]
    if missing:
        raise SystemicError(f"Intacct connection is missing {', '.join(missing)}")
    return creds


def build_client(spec: ConnectionSpec, store: TokenStore, counter: CallCounter | None = None,
                 policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
                 session: requests.Session | None = None) -> IntacctClient:
    gateway = (spec.url or GATEWAY_URL).rstrip("/")
    creds = credentials(spec)
    session = session or new_session()
    # getAPISession goes out on its own (no session to put in it); every other call carries one.
    login = HttpClient(gateway, policy=policy, counter=counter, session=session, error_classifier=classify,
                       secrets=spec.secret_values(), on_event=on_event)
    tokens = TokenManager(session_fetcher(login, gateway, creds), SessionKeyedStore(store, creds.session_key()))
    http = HttpClient(gateway, auth=SessionAuth(tokens), policy=policy, counter=counter, session=session,
                      error_classifier=classify, body_classifier=classify_body, secrets=spec.secret_values(),
                      on_event=on_event)
    return IntacctClient(spec, http, tokens, creds, on_event)
