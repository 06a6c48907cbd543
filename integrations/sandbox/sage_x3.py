"""A Sage X3 simulator: the Syracuse "api1" REST web API plus the cloud token service.

What it plays (API_FACTS section 2 and the "Sage X3" decisions at its top):

- ``GET /api1/x3/erp/{FOLDER}/{CLASS}?representation={REPR}.$query`` lists records, 20 per page
  by default (``count=N``), with SData ``where``, ``orderBy``, ``key=gt.<key>`` key paging and
  SData's ``startIndex`` (1-based); the answer is ``{"$itemsPerPage", "$totalResults",
  "$startIndex", "$resources", "$links": {"$next": {"$url"}}}``, ``$next`` absent on the last
  page (``omit_links``/``lose_next_link_after`` play feeds without ``$links`` or with a lost
  ``$next``). ``$totalResults`` counts what ``where`` selects; ``$startIndex`` is where the page
  starts among those [U: SData 2.0's meaning, X3's own use of them is not documented]. An
  unknown property in ``where`` is answered HTTP 500 (API_FACTS 9). Next links are absolute, built from the request's own host, and
  resume *after* the last record returned (keyset), so records sharing one ``UPDDATTIM``
  second are never skipped or repeated at a page boundary.
- ``GET …/{CLASS}('{KEY}')?representation={REPR}.$details`` returns one record with its lines,
  ``$uuid`` and ``$etag``. With ``lines_in_query=False`` the ``$query`` facet leaves the line
  arrays out, as on installs whose query representation has no child collections.
- ``PUT …/{CLASS}('{KEY}')?representation={CLASS}.$edit`` (partial payload) and
  ``POST …/{CLASS}?representation={CLASS}.$create`` for the classes in ``writable``: by default
  ``BPSUPPLIER`` and the documents the portal posts into X3, ``GACCENTRY`` (journal entries) and
  ``PINVOICE`` (supplier invoices). Other classes, or all but the named ones with ``writable=``,
  answer 405 like a representation without those facets [U: which facets a customer's
  representation enables]; naming ``PORDER`` plays an ERP user entering orders in a chaos test.
  Both writes call :meth:`maybe_drop` after committing ("commit then drop").
- Creating a journal entry or supplier invoice without its key (``NUM``) lets X3 number it from a
  per-folder counter: the journal type and six digits (``ODT000001``), ``PI`` and six digits
  (``PI000001``) [U: real folders configure these sequences]; a given key that exists is a 409.
  X3's checks answer 400 with one ``$diagnoses`` message per problem, in an operator's words
  (see :meth:`X3Store.document_problems`): an entry needs two lines or more, senses ``SNS`` of
  +1/-1 on non-negative amounts whose debits equal the credits exactly, known accounts, cost centers and a
  journal type among ``journal_types`` [U: ``ODT``, ``OD``, ``ACH``], an accounting date; an
  invoice a known supplier, known orders and order lines, accounts and cost centers, ``AMTATI``,
  and (``unique_supplier_invoice``, on by default) a supplier document number ``BPRVCR`` not yet
  held for that supplier. The ``GACCENTRY`` field names are [U], chosen like the others
  (API_FACTS "Sage X3 record shapes"); the portal finds an entry again by ``where=REF eq '…'``.
- Data: ``seed_demo()`` fills folder ``SEED`` with a purchasing ledger (ServiceNow pair);
  ``seed_field_service()`` fills folder ``FIELD`` with the X3 side of the ServiceTitan demo
  contractor (chart, cost centers, suppliers, purchase orders; see :mod:`.sage_x3_seed`).
- ``POST /xtrem/api``: the GraphQL (Xtrem) API over the same store (:mod:`.sage_x3_graphql`),
  schema variant ``graphql_root`` (``x3MasterData`` or ``sage``), mutations unless
  ``graphql_mutations=False``; an outage there is an ``errors`` array in a 200.
- HTTP Basic and/or OAuth2 bearer on api1; ``POST /token`` (and ``/v1/token``) issue tokens
  with a rotating refresh token (see :mod:`.sage_x3_auth`).

Error bodies are ``{"$diagnoses": [{"$severity": "error", "$message": …}]}`` with a 4xx/5xx
status [U: X3's exact error JSON is not documented]. Amounts are ``Decimal`` in memory and
exact number literals on the wire.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .base import Faults, SimRequest, SimResponse, Simulator
from .sage_x3_auth import X3TokenService
from .sage_x3_graphql import GRAPHQL_PATH, X3GraphQL
from .sage_x3_graphql import unavailable as graphql_unavailable
from .sage_x3_query import (
    QueryError,
    UnknownProperty,
    decode_cursor,
    encode_cursor,
    parse_key_param,
    parse_order_by,
    parse_where,
    sort_key,
)
from .sage_x3_schema import CLASSES, ClassSpec, ValueProblem, coerce_record, dumps, format_datetime
from .sage_x3_store import JOURNAL_TYPES, NUMBERED, ManualClock, X3Store

API_PREFIX = "/api1/x3/erp/"
# Classes whose representations have $create/$edit facets by default: suppliers, and the documents
# the portal posts into X3 (journal entries, supplier invoices). Which facets a customer's
# representation enables is [U] (API_FACTS 2.4): `writable=` narrows or widens the set.
WRITABLE = frozenset({"BPSUPPLIER", "GACCENTRY", "PINVOICE"})
_RESOURCE = re.compile(r"^(?P<cls>[A-Za-z0-9_]+)(?:\((?P<key>.*)\))?$")


def diagnoses(status: int, message: str | list[str], headers: dict[str, str] | None = None) -> SimResponse:
    """X3-style error body [U]: one ``$diagnoses`` entry of severity ``error`` per message."""
    messages = [message] if isinstance(message, str) else message
    body = {"$diagnoses": [{"$severity": "error", "$message": text} for text in messages]}
    return SimResponse.json(status, body, headers)


class SageX3Simulator(X3Store, Simulator):
    """In-memory Sage X3 (api1 REST + token service) with seedable data and fault injection."""

    name = "sage_x3"

    def __init__(
        self,
        faults: Faults | None = None,
        folders: Iterable[str] = ("SEED",),
        page_default: int = 20,
        page_max: int | None = None,
        clock: Callable[[], datetime | float] | None = None,
        *,
        lines_in_query: bool = True,
        auth_modes: Iterable[str] = ("basic", "oauth2"),
        allow_client_credentials: bool = False,
        token_path: str = "/token",  # noqa: S107 - a URL path, not a secret
        access_token_lifetime: int = 300,
        refresh_token_lifetime: int = 30 * 86400,
        strict_representations: bool = False,
        writable: Iterable[str] = WRITABLE,
        omit_links: bool = False,
        lose_next_link_after: int | None = None,
        journal_types: Iterable[str] = JOURNAL_TYPES,
        unique_supplier_invoice: bool = True,
        graphql_root: str = "x3MasterData",
        graphql_mutations: bool = True,
    ) -> None:
        super().__init__(faults)
        self.writable = frozenset(writable)
        self.journal_types = frozenset(journal_types)
        # X3 refuses a supplier invoice whose supplier document number it already holds for that
        # supplier (a per-folder setting in real installs [U]); off plays folders that allow it.
        self.unique_supplier_invoice = unique_supplier_invoice
        self._counters: dict[tuple[str, str, str], int] = {}
        self._invoice_index: dict[str, tuple[int, dict[tuple[str, str], str]]] = {}
        # Feed variants (API_FACTS 9): no `$links` at all, the next page left to the client
        # (SData 2.0); or a `$next` missing once a page ends at or past this many records although
        # `$totalResults` says more exist (a broken feed).
        self.omit_links = omit_links
        self.lose_next_link_after = lose_next_link_after
        self.page_default = page_default
        self.page_max = page_max
        self.lines_in_query = lines_in_query
        self.auth_modes = set(auth_modes)
        self.token_path = token_path
        self.access_token_lifetime = access_token_lifetime
        self.strict_representations = strict_representations
        self.users: dict[str, str] = {}
        # representation name -> (class, canonical field name -> name on the wire)
        self.representations: dict[str, tuple[str, dict[str, str]]] = {name: (name, {}) for name in CLASSES}
        self._clock: Callable[[], datetime | float] = clock or (lambda: datetime.now(UTC))
        self._data: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._versions: dict[tuple[str, str], int] = {}
        self._sorted: dict[tuple[Any, ...], tuple[int, list[Any], list[dict[str, Any]]]] = {}
        for folder in folders:
            self.add_folder(folder)
        self.oauth = X3TokenService(
            self.now,
            lambda: self.token_lifetime(self.access_token_lifetime),
            refresh_token_lifetime,
            allow_client_credentials,
        )
        # The GraphQL (Xtrem) API over the same store: a schema variant, with or without mutations.
        self.graphql = X3GraphQL(self, graphql_root, graphql_mutations)

    # === configuration helpers ==================================================================
    def add_user(self, username: str, password: str) -> None:
        with self.lock:
            self.users[username] = password

    def add_oauth_client(self, client_id: str, secret: str) -> None:
        with self.lock:
            self.oauth.state.clients[client_id] = secret

    def add_representation(self, name: str, klass: str, rename: dict[str, str] | None = None) -> None:
        """Register a customer representation for ``klass``, optionally renaming fields on the wire.

        Customers rename representations (and may expose fields under other names), which is why
        the client keeps both as per-connection settings.
        """
        if klass not in CLASSES:
            raise ValueError(f"unknown class {klass}")
        with self.lock:
            self.representations[name] = (klass, dict(rename or {}))

    @property
    def allow_client_credentials(self) -> bool:
        return self.oauth.allow_client_credentials

    @allow_client_credentials.setter
    def allow_client_credentials(self, value: bool) -> None:
        self.oauth.allow_client_credentials = value

    @property
    def grant_counts(self) -> dict[str, int]:
        """Token grants issued through the endpoint, by grant type."""
        return dict(self.oauth.state.grant_counts)

    def issue_authorization_code(self, client_id: str, redirect_uri: str | None = None) -> str:
        """A pairing code, as if the customer admin had approved the application."""
        with self.lock:
            return self.oauth.issue_code(client_id, redirect_uri)

    def issue_refresh_token(self, client_id: str) -> str:
        """Bootstrap a connection with a fresh refresh token (what pairing would have produced)."""
        with self.lock:
            if client_id not in self.oauth.state.clients:
                raise ValueError(f"unknown OAuth client {client_id}")
            return self.oauth.mint_refresh(client_id)

    def valid_refresh_tokens(self, client_id: str | None = None) -> list[str]:
        with self.lock:
            return self.oauth.valid_refresh_tokens(client_id)

    def revoke_refresh_tokens(self, client_id: str | None = None) -> int:
        """The customer deletes the pairing; the client must then ask for a new one."""
        with self.lock:
            return self.oauth.revoke(client_id)

    # === faults in X3's shape ===================================================================
    def rate_limited_response(self, request: SimRequest) -> SimResponse:
        return diagnoses(429, "Too many requests, retry later", {"Retry-After": str(self.faults.retry_after)})

    def transient_response(self, request: SimRequest) -> SimResponse:
        if request.path.rstrip("/") == GRAPHQL_PATH:
            return graphql_unavailable()
        return diagnoses(503, "Service temporarily unavailable")

    # === routing =================================================================================
    def dispatch(self, request: SimRequest) -> SimResponse:
        path = request.path.rstrip("/") or "/"
        if path in (self.token_path, "/v1/token"):
            return self.oauth.token_endpoint(request)
        if path in (self.token_path + "/authorise", "/v1/token/authorise"):
            return self.oauth.authorise_endpoint(request)
        if path == GRAPHQL_PATH:
            return self.graphql.handle(request)
        if not path.startswith(API_PREFIX):
            return diagnoses(404, f"Not found: {path}")
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        parts = unquote(path[len(API_PREFIX):]).split("/", 1)
        if len(parts) != 2 or parts[0] not in self._data:
            return diagnoses(404, f"Endpoint {parts[0]} not found")
        folder, resource = parts
        match = _RESOURCE.match(resource)
        if not match or match["cls"] not in CLASSES:
            return diagnoses(404, f"Class {resource} not found")
        klass, key = match["cls"], match["key"]
        if key is not None:
            key = key[1:-1].replace("''", "'") if len(key) >= 2 and key[0] == key[-1] == "'" else key
        representation = request.param("representation")
        if not representation:
            return diagnoses(400, "The representation parameter is mandatory")
        repr_name, dot, facet = representation.partition(".")
        target = self.representations.get(repr_name)
        if target is None and self.strict_representations:
            return diagnoses(400, f"Representation {repr_name} not found")
        repr_class, rename = target or (klass, {})
        if repr_class != klass:
            return diagnoses(400, f"Representation {repr_name} does not belong to class {klass}")
        expected = {("GET", False): "$query", ("GET", True): "$details", ("PUT", True): "$edit", ("POST", False): "$create"}
        wanted = expected.get((request.method, key is not None))
        if wanted is None:
            return diagnoses(405, f"Method {request.method} not allowed here")
        if not dot or facet != wanted:
            return diagnoses(400, f"Facet {facet or '(none)'} not allowed for {request.method}; expected {wanted}")
        spec = CLASSES[klass]
        if request.method in ("PUT", "POST") and klass not in self.writable:
            return diagnoses(405, f"Representation {repr_name} is read-only: no {wanted} facet")
        if wanted == "$query":
            return self._query(request, folder, spec, rename)
        if wanted == "$details":
            record = self._data[folder][klass].get(key or "")
            if record is None:
                return diagnoses(404, f"Record {key} not found in {klass}")
            return self._json(200, self._render(folder, spec, record, rename, details=True))
        return self._write(request, folder, spec, rename, key)

    def _authenticate(self, request: SimRequest) -> SimResponse | None:
        """Basic against ``users`` and/or bearer against the token service, per ``auth_modes``."""
        header = request.header("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        challenges = []
        if "basic" in self.auth_modes:
            challenges.append('Basic realm="Sage X3"')
        if "oauth2" in self.auth_modes:
            challenges.append('Bearer realm="Sage X3"')
        if scheme.lower() == "basic" and "basic" in self.auth_modes:
            try:
                user, _, password = base64.b64decode(credentials.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            expected = self.users.get(user)
            if expected is not None and hmac.compare_digest(expected, password):
                return None
            return diagnoses(401, "Invalid user name or password", {"WWW-Authenticate": ", ".join(challenges)})
        if scheme.lower() == "bearer" and "oauth2" in self.auth_modes:
            problem = self.oauth.check_bearer(credentials.strip())
            if problem is None:
                return None
            return diagnoses(401, problem, {"WWW-Authenticate": f'Bearer realm="Sage X3", error="invalid_token", error_description="{problem}"'})
        return diagnoses(401, "Authentication required", {"WWW-Authenticate": ", ".join(challenges)})

    # === rendering ===============================================================================
    def _json(self, status: int, payload: Any) -> SimResponse:
        return SimResponse(status, dumps(payload).encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"})

    def _render(
        self, folder: str, spec: ClassSpec, record: dict[str, Any], rename: dict[str, str], details: bool
    ) -> dict[str, Any]:
        key = spec.key_of(record)
        out: dict[str, Any] = {"$uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"x3:{folder}:{spec.name}:{key}"))}
        if details:
            out["$etag"] = format_datetime(record["UPDDATTIM"])
        for name in spec.fields:
            out[rename.get(name, name)] = record.get(name)
        if spec.lines_name and (details or self.lines_in_query):
            out[rename.get(spec.lines_name, spec.lines_name)] = [
                {rename.get(name, name): line.get(name) for name in spec.line_fields}
                for line in record.get(spec.lines_name, [])
            ]
        return out

    # === $query ==================================================================================
    def _ordered(self, folder: str, klass: str, order: list[tuple[str, bool]]) -> tuple[list[Any], list[dict[str, Any]]]:
        """Records sorted by ``order``, cached until the class changes (pages are cheap to serve)."""
        cache_key = (folder, klass, tuple(order))
        version = self._versions.get((folder, klass), 0)
        cached = self._sorted.get(cache_key)
        if cached and cached[0] == version:
            return cached[1], cached[2]
        pairs = sorted(((sort_key(r, order), r) for r in self._data[folder][klass].values()), key=lambda p: p[0])
        keys, recs = [p[0] for p in pairs], [p[1] for p in pairs]
        if len(self._sorted) > 32:
            self._sorted.clear()
        self._sorted[cache_key] = (version, keys, recs)
        return keys, recs

    def _matching(self, folder: str, klass: str, order: list[tuple[str, bool]], where: tuple[Any, ...],
                  predicate: Callable[[dict[str, Any]], bool], recs: list[dict[str, Any]]) -> list[int]:
        """Positions in ``recs`` of the records ``where`` selects, cached like the order itself."""
        cache_key = ("where", folder, klass, tuple(order), where)
        version = self._versions.get((folder, klass), 0)
        cached = self._sorted.get(cache_key)
        if cached and cached[0] == version:
            return cached[1]
        wanted = _key_lookup(where[0], CLASSES[klass], dict(where[1]))
        if wanted is not None:  # a look-up by key answers from the key, as a database's index would
            positions = self._positions(folder, klass, order, recs)
            matches = sorted(positions[key] for key in wanted if key in positions)
        else:
            matches = [index for index, record in enumerate(recs) if predicate(record)]
        if len(self._sorted) > 32:
            self._sorted.clear()
        self._sorted[cache_key] = (version, matches, [])
        return matches

    def _positions(self, folder: str, klass: str, order: list[tuple[str, bool]],
                   recs: list[dict[str, Any]]) -> dict[str, int]:
        """Each record's position in ``recs`` by its key, cached like the order itself."""
        cache_key = ("positions", folder, klass, tuple(order))
        version = self._versions.get((folder, klass), 0)
        cached = self._sorted.get(cache_key)
        if cached and cached[0] == version:
            return cached[1]
        key_of = CLASSES[klass].key_of
        positions = {key_of(record): index for index, record in enumerate(recs)}
        self._sorted[cache_key] = (version, positions, [])
        return positions

    def _query(self, request: SimRequest, folder: str, spec: ClassSpec, rename: dict[str, str]) -> SimResponse:
        wire_fields = {rename.get(name, name): kind for name, kind in spec.fields.items()}
        canonical = {rename.get(name, name): name for name in spec.fields}
        where = request.param("where") or ""
        try:
            count_text = request.param("count")
            count = int(count_text) if count_text not in (None, "") else self.page_default
            if count < 1:
                raise QueryError("count must be a positive integer")
            if self.page_max is not None:
                count = min(count, self.page_max)
            start_text = request.param("startIndex")  # SData 2.0 paging by the client, 1-based
            if start_text not in (None, "") and not (start_text.isdigit() and int(start_text) >= 1):
                raise QueryError("startIndex must be a positive integer")
            skip = int(start_text) - 1 if start_text else 0
            predicate = parse_where(where, wire_fields, canonical)
            order = [(canonical[name], desc) for name, desc in
                     parse_order_by(request.param("orderBy"), wire_fields, tuple(rename.get(k, k) for k in spec.key))]
            key_param = request.param("key")
            key_op, key_value = parse_key_param(key_param) if key_param else (None, "")
            token = request.param("$token")
            keys, recs = self._ordered(folder, spec.name, order)
            default_order = order == [(name, False) for name in spec.key]
            start = 0
            if token:
                start = bisect_right(keys, decode_cursor(token, order))
            elif default_order and key_op in ("gt", "ge") and len(spec.key) == 1:
                probe = sort_key({spec.key[0]: key_value}, order)
                start = (bisect_right if key_op == "gt" else bisect_left)(keys, probe)
        except UnknownProperty as exc:
            # [U] the wording; the status and the property's name in it are what X3 is known for
            representation = (request.param("representation") or "").partition(".")[0]
            return diagnoses(500, f"The property {exc.name} does not exist in representation {representation}")
        except ValueError as exc:  # QueryError, a bad count
            return diagnoses(400, str(exc) if isinstance(exc, QueryError) else "count must be a positive integer")
        key_test = _key_predicate(spec, key_op, key_value) if key_op else None
        matches = self._matching(folder, spec.name, order, (where, tuple(sorted(rename.items()))), predicate, recs)
        first = bisect_left(matches, start) + skip
        page: list[dict[str, Any]] = []
        for index in matches[first:]:
            record = recs[index]
            if key_test and not key_test(record):
                continue
            page.append(record)
            if len(page) > count:
                break
        has_more = len(page) > count
        page = page[:count]
        # SData feed counts: the records the query selects, and where this page starts among them.
        body: dict[str, Any] = {
            "$itemsPerPage": count,
            "$totalResults": len(matches),
            "$startIndex": first + 1,
            "$resources": [self._render(folder, spec, r, rename, details=False) for r in page],
        }
        link_lost = self.lose_next_link_after is not None and first + len(page) >= self.lose_next_link_after
        if not self.omit_links:
            body["$links"] = {}
            if has_more and not link_lost:
                body["$links"]["$next"] = {"$url": self._next_url(request, spec, order, page[-1], default_order,
                                                                  key_op)}
        return self._json(200, body)

    def _next_url(
        self, request: SimRequest, spec: ClassSpec, order: list[tuple[str, bool]], last: dict[str, Any],
        default_order: bool, key_op: str | None,
    ) -> str:
        """Same parameters, resumed after ``last``: ``key=gt.<KEY>`` in key order, else ``$token``."""
        parts = urlsplit(request.url)
        scheme = parts.scheme or "http"
        netloc = parts.netloc or request.header("Host") or "localhost"
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "$token"]
        if default_order and key_op in (None, "gt", "ge"):
            params = [(k, v) for k, v in params if k != "key"]
            params.append(("key", f"gt.{spec.key_of(last)}"))
        else:
            params.append(("$token", encode_cursor(last, order)))
        query = urlencode(params, quote_via=quote, safe="$.,~'@:()")
        return f"{scheme}://{netloc}{parts.path}?{query}"

    # === $edit / $create =========================================================================
    def _write(
        self, request: SimRequest, folder: str, spec: ClassSpec, rename: dict[str, str], key: str | None
    ) -> SimResponse:
        try:
            payload = json.loads(request.body or b"null", parse_float=Decimal)
        except ValueError:
            return diagnoses(400, "The request body is not valid JSON")
        if not isinstance(payload, dict):
            return diagnoses(400, "The request body must be a JSON object")
        canonical = {rename.get(name, name): name for name in spec.fields}
        payload = {canonical.get(name, name): value for name, value in payload.items()}
        payload.pop("UPDDATTIM", None)  # server-managed audit stamp
        try:
            changes = coerce_record(spec, payload, partial=True)
        except ValueProblem as exc:
            return diagnoses(400, str(exc))
        if request.method == "PUT":
            return self._edit(request, folder, spec, rename, key, changes)
        return self._create(folder, spec, rename, changes)

    def _edit(self, request: SimRequest, folder: str, spec: ClassSpec, rename: dict[str, str], key: str | None,
              changes: dict[str, Any]) -> SimResponse:
        store = self._data[folder][spec.name]
        current = store.get(key or "")
        if current is None:
            return diagnoses(404, f"Record {key} not found in {spec.name}")
        if_match = request.header("If-Match")
        if if_match and if_match.strip('"') != format_datetime(current["UPDDATTIM"]):
            return diagnoses(412, "The record was modified by another user")  # [U] optimistic lock
        for name in spec.key:
            if name in changes and changes[name] != current[name]:
                return diagnoses(400, f"The key field {name} cannot be modified")
        record = {**current, **changes, "UPDDATTIM": self.now()}
        store[spec.key_of(record)] = record
        self._changed(folder, spec.name)
        response = self._json(200, self._render(folder, spec, record, rename, details=True))
        self.maybe_drop()  # committed: the answer may still be lost
        return response

    def _create(self, folder: str, spec: ClassSpec, rename: dict[str, str], changes: dict[str, Any]) -> SimResponse:
        # Journal entries and supplier invoices posted without a number get one from X3.
        numbered = spec.name in NUMBERED and not changes.get(spec.key[0])
        try:
            record = coerce_record(spec, changes, partial=numbered)
        except ValueProblem as exc:
            return diagnoses(400, str(exc))
        if not numbered and spec.key_of(record) in self._data[folder][spec.name]:
            return diagnoses(409, f"Record {spec.key_of(record)} already exists")  # [U] status
        problems = self.document_problems(folder, spec.name, record)
        if problems:
            return diagnoses(400, problems)
        if numbered:
            record[spec.key[0]] = self.next_number(folder, spec.name, record)
        lines = {spec.lines_name: record.get(spec.lines_name) or []} if spec.lines_name else {}
        record = {name: record.get(name) for name in spec.fields} | lines | {"UPDDATTIM": self.now()}
        self.commit_created(folder, spec.name, record)
        response = self._json(201, self._render(folder, spec, record, rename, details=True))
        self.maybe_drop()  # committed: the answer may still be lost
        return response


_LITERAL = r"'(?:[^']|'')*'"
_KEY_LOOKUP = re.compile(rf"^\s*\(?\s*([A-Za-z_][A-Za-z0-9_]*)\s+(?:eq\s+({_LITERAL})|in\s*\(\s*({_LITERAL}(?:\s*,\s*{_LITERAL})*)\s*\))\s*\)?\s*$")


def _key_lookup(where: str, spec: ClassSpec, rename: dict[str, str]) -> list[str] | None:
    """The keys a ``where`` of the form ``KEY eq 'a'`` or ``KEY in ('a', 'b')`` asks for (a
    single-key class), else ``None``: the general predicate then decides."""
    match = _KEY_LOOKUP.match(where)
    if not match or len(spec.key) != 1 or match[1] != rename.get(spec.key[0], spec.key[0]):
        return None
    literals = re.findall(_LITERAL, match[2] or match[3])
    return [literal[1:-1].replace("''", "'") for literal in literals]


def _key_predicate(spec: ClassSpec, op: str, value: str) -> Callable[[dict[str, Any]], bool]:
    """``key=op.value`` compares the printed key (composite keys joined with ``~``)."""
    tests: dict[str, Callable[[str], bool]] = {
        "eq": lambda k: k == value, "ne": lambda k: k != value, "lt": lambda k: k < value,
        "le": lambda k: k <= value, "gt": lambda k: k > value, "ge": lambda k: k >= value,
    }
    test = tests[op]
    return lambda record: test(spec.key_of(record))


__all__ = ["ManualClock", "SageX3Simulator", "diagnoses"]
