"""Sage X3 client: api1 REST queries with ``$links.$next`` paging, Basic or OAuth2 auth.

Facts followed (API_FACTS section 2 and "Decisions"): ``/api1/x3/erp/{FOLDER}/{CLASS}?
representation={REPR}.$query``; default page 20, ``count=`` for more; ``where=`` in the SData
language with ``@...@`` date-time literals; records in ``$resources``; the next page's URL in
``$links.$next.$url``, checked against SData's ``$totalResults`` (a feed may leave the next page
to the client, API_FACTS 9); amounts are JSON numbers parsed straight to ``Decimal``; a 500
naming an unknown ``where`` property is a configuration error. Representation and field names
are customer-configurable, so every name comes from :class:`X3Shape`.
OAuth2 (X3 cloud): 5-minute access tokens from a rotating 30-day refresh token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from integrations.systems.auth import BearerAuth, TokenManager, TokenStore, oauth2_fetcher
from integrations.systems.errors import DataError, SyncError, SystemicError, TransientError
from integrations.systems.http import (
    BasicAuth,
    CallCounter,
    HttpClient,
    HttpPolicy,
    decode_json,
    default_classifier,
    exact_json,
    unexpected_answer,
)
from integrations.systems.schema import INT, MAP, TEXT, ConnectionSchema, Setting
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event

REFRESH_TOKEN_LIFETIME = timedelta(days=30)

# Logical field → X3 field, per class. Overridable per connection with settings["x3_fields"] =
# {"PINVOICE": {"gl_account": "ACCNUM"}}, and the representation per class with
# settings["representations"] = {"PINVOICE": "ZPINV"}.
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "BPSUPPLIER": {
        "key": "BPSNUM", "name": "BPSNAM", "short_name": "BPSSHO", "country": "CRY", "currency": "CUR",
        "payment_terms": "PTE", "address": "BPAADDLIG", "city": "CTY", "postal_code": "POSCOD",
        "phone": "TEL", "web": "WEB", "contact": "CNTNAM", "updated": "UPDDATTIM",
    },
    "PORDER": {
        "key": "POHNUM", "supplier": "BPSNUM", "order_date": "ORDDAT", "currency": "CUR", "total": "TOTAMTNOT",
        "updated": "UPDDATTIM", "lines": "PORDERP", "line_no": "POPLIN", "item": "ITMREF",
        "description": "ITMDES", "quantity": "QTYUOM", "unit_price": "GROPRI", "amount": "LINAMT", "uom": "PUU",
    },
    "PINVOICE": {
        "key": "NUM", "supplier": "BPR", "supplier_invoice": "BPRVCR", "invoice_date": "BPRDAT",
        "accounting_date": "ACCDAT", "currency": "CUR", "total_excl": "AMTNOT", "total_incl": "AMTATI",
        "updated": "UPDDATTIM", "lines": "PINVOICED", "line_no": "PIDLIN", "po": "POHNUM", "po_line": "POPLIN",
        "item": "ITMREF", "quantity": "QTYUOM", "unit_price": "NETPRI", "amount": "AMTNOTLIN",
        "gl_account": "ACC", "cost_center": "CCE",
    },
    "GACCOUNT": {"key": "ACC", "label": "DES", "chart": "COA", "updated": "UPDDATTIM"},
    "CACCE": {"key": "CCE", "label": "DES", "dimension": "DIE", "updated": "UPDDATTIM"},
    # GL journal entries, written by the ServiceTitan pair [U: names follow X3's GACCENTRY/GACCENTRYD tables]
    "GACCENTRY": {
        "key": "NUM", "journal_type": "TYP", "accounting_date": "ACCDAT", "reference": "REF",
        "description": "DESVCR", "currency": "CUR", "updated": "UPDDATTIM", "lines": "GACCENTRYD",
        "line_no": "LIN", "gl_account": "ACC", "cost_center": "CCE", "sense": "SNS", "amount": "AMTCUR",
        "line_description": "DES",
    },
}
# [U] The date-time literal form of `where` is not documented; configurable per connection.
DEFAULT_WHERE = "{field} ge @{since}@"
# Resuming inside a group of records sharing one update time: strictly after (time, key).
DEFAULT_SEEK = "({field} gt @{since}@) or ({field} eq @{since}@ and {key} gt '{after}')"

# The settings a Sage X3 connection accepts (validated wherever they are entered).
SETTINGS = (
    Setting("folder", TEXT, max_length=30, help="The X3 folder (endpoint), e.g. SEED; the connection's company field wins."),
    Setting("page_size", INT, default=200, minimum=1, maximum=10_000, help="Records per api1 page (count=)."),
    Setting("where_template", TEXT, default=DEFAULT_WHERE, max_length=200,
            help="The incremental filter; {field} and {since} are filled in."),
    Setting("seek_template", TEXT, default=DEFAULT_SEEK, max_length=300,
            help="The filter that resumes after a record; {field}, {since}, {key} and {after} are filled in. "
                 "Empty: resume from the update time and skip what was done."),
    Setting("x3_fields", MAP, nested=True, max_length=80, help="X3 field names by class and logical field."),
    Setting("representations", MAP, max_length=80, help="Representation names by class, e.g. {\"PINVOICE\": \"ZPINV\"}."),
    Setting("token_validity", INT, default=600, minimum=30, maximum=86_400,
            help="jwt_connected_app: the connected application's token validity in seconds (600 by default)."),
    Setting("transport", TEXT, default="rest", choices=("rest", "graphql"),
            help="rest: the api1 web services; graphql: the Xtrem API at /xtrem/api (same records, same flows)."),
    Setting("graphql_types", MAP, max_length=80,
            help="GraphQL: the node type of an X3 class where descriptions do not name it, e.g. {\"PINVOICE\": \"ZInvoice\"}."),
    Setting("graphql_fields", MAP, nested=True, max_length=80,
            help="GraphQL: the field of an X3 column by class, e.g. {\"BPSUPPLIER\": {\"BPSNAM\": \"companyName1\"}}."),
)

SCHEMA = ConnectionSchema(
    system="sage_x3",
    label="Sage X3",
    auth_methods=("basic", "oauth2_refresh_token", "oauth2_client_credentials", "jwt_connected_app"),
    settings=SETTINGS,
    help="Sage X3 through its api1 REST interface (Syracuse web server) or its GraphQL API (transport graphql).",
    url_help="The X3 web server, e.g. http://x3.acme.local:8124 (the port may also be given on its own).",
    company_label="the X3 folder (endpoint) name, e.g. SEED",
    company_required=True,
    company_key="folder",
    required_settings={"oauth2_refresh_token": ("token_url",)},
    key_help={"username": "An X3 user allowed to use the web services.",
              "client_id": "Client id of the connected application registered in X3.",
              "token_url": "Where tokens are issued, e.g. https://x3.acme.example/token.",
              "user": "The connected application's allowed X3 user (the token's sub).",
              "audience": "The URL registered for the connected application, exactly (the token's aud).",
              "token_validity": "The connected application's token validity in seconds (600 by default)."},
)


class X3Shape:
    """Names of one class on one customer's X3: representation and fields."""

    def __init__(self, klass: str, representation: str, fields: dict[str, str]) -> None:
        self.klass = klass
        self.representation = representation
        self.fields = fields

    def __getitem__(self, logical: str) -> str:
        return self.fields[logical]

    def get(self, record: dict[str, Any], logical: str, default: Any = None) -> Any:
        return record.get(self.fields[logical], default)


def classify(response: requests.Response) -> SyncError | None:
    """X3 errors: ``$diagnoses`` messages when present ([U] shape), else the status.

    A 500 whose message names a property of the request's ``where`` as unknown is the query's
    fault, not the server's (API_FACTS 9): a configuration error naming the field, never retried.
    """
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None
    diagnoses = body.get("$diagnoses") if isinstance(body, dict) else None
    if not diagnoses or not isinstance(diagnoses, list):
        return None
    message = "; ".join(str(d.get("$message", "")) for d in diagnoses if isinstance(d, dict))
    unknown = _unknown_where_property(response, message)
    if unknown:
        return SystemicError(
            f"Sage X3 does not know the property {unknown} used in the query's where filter: check the connection's "
            "x3_fields, where_template and seek_template against the representation's properties",
            status=response.status_code, detail=message[:300], code="unknown_property")
    error = default_classifier(response)
    error.message = message or error.message
    return error


_UNKNOWN = re.compile(r"unknown|not found|does not exist|doesn't exist|not exist|invalid|undefined|not defined", re.I)


def _unknown_where_property(response: requests.Response, message: str) -> str:
    """The property of the request's ``where`` that a 5xx answer calls unknown, or ""."""
    if response.status_code < 500 or not _UNKNOWN.search(message) or "propert" not in message.lower():
        return ""
    url = response.request.url if response.request is not None else None
    where = parse_qs(urlsplit(url or "").query).get("where", [""])[0]
    names = re.findall(r"[A-Za-z_$][A-Za-z0-9_$.]*", re.sub(r"'(?:[^']|'')*'|@[^@]*@", " ", where))
    return next((name for name in names if re.search(rf"(?<![A-Za-z0-9_$]){re.escape(name)}(?![A-Za-z0-9_$])",
                                                     message) and name.lower() not in _SDATA_WORDS), "")


_SDATA_WORDS = {"and", "or", "not", "eq", "ne", "lt", "le", "gt", "ge", "between", "in", "like", "null", "mod", "mul",
                "div", "left", "right", "upper", "lower", "length"}


JSON_BODY = {"Content-Type": "application/json"}
# Values per ``in (…)`` lookup: a URL stays short enough for any web server.
LOOKUP_CHUNK = 40


def _literal(value: str) -> str:
    """A string literal of the SData query language (quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: never an amount


def parse_json(response: requests.Response) -> Any:
    """Amounts arrive as JSON numbers: parse them straight to Decimal, never float.

    An empty body is ``None``; anything that is not JSON is a classified error, not a crash.
    """
    if not response.content:
        return None
    return decode_json(response, "Sage X3", parse_float=Decimal, parse_constant=_no_constant)


def parse_object(response: requests.Response, what: str, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body as a JSON object (a record, a page): any other JSON is the wrong answer.

    ``empty_ok``: a write answered with no body at all (204) gives ``{}``.
    """
    body = parse_json(response)
    if body is None and empty_ok:
        return {}
    if not isinstance(body, dict):
        raise unexpected_answer(response, "Sage X3", f"{type(body).__name__} where {what} was expected")
    return body


@dataclass
class Feed:
    """One ``$query`` page: its records, the next page's URL, and SData's feed counts.

    ``links``: the answer carries ``$links`` at all (a feed without them leaves the next page to
    the client, SData 2.0). ``total``/``start``: ``$totalResults`` and ``$startIndex`` (1-based),
    when the server gives them as numbers.
    """

    resources: list[dict[str, Any]]
    next_url: str | None
    links: bool
    total: int | None
    start: int | None

    def position(self, read_in_chain: int) -> int:
        """How many records of the feed this page ends at: by ``$startIndex`` when given, else
        by what was read since the chain's first request (``read_in_chain``, this page included)."""
        return self.start - 1 + len(self.resources) if self.start is not None else read_in_chain


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _page(response: requests.Response) -> Feed:
    """The records of one ``$query`` page and the URL of the next (``$links.$next.$url``)."""
    body = parse_object(response, "a page of records")
    resources = body.get("$resources") or []
    if not isinstance(resources, list) or not all(isinstance(row, dict) for row in resources):
        raise unexpected_answer(response, "Sage X3", "$resources that are not a list of records")
    links = body.get("$links")
    nxt = links.get("$next") if isinstance(links, dict) else None
    url = nxt.get("$url") if isinstance(nxt, dict) else None
    if url is not None and not isinstance(url, str):
        raise unexpected_answer(response, "Sage X3", "a next-page link that is not a URL")
    start = _count(body, "$startIndex")
    return Feed(resources, url or None, "$links" in body, _count(body, "$totalResults"),
                start if start else None)


class SageX3Client:
    """One X3 folder (Syracuse endpoint) as one connection sees it."""

    def __init__(self, spec: ConnectionSpec, http: HttpClient) -> None:
        self.spec = spec
        self.http = http
        self.folder = spec.company or spec.setting("folder", "SEED")
        self.page_size = int(spec.setting("page_size", 200))
        self.where_template = spec.setting("where_template", DEFAULT_WHERE)
        self.seek_template = spec.setting("seek_template", DEFAULT_SEEK)
        overrides = spec.setting("x3_fields", {}) or {}
        representations = spec.setting("representations", {}) or {}
        self.shapes = {
            klass: X3Shape(klass, representations.get(klass, klass), {**fields, **overrides.get(klass, {})})
            for klass, fields in DEFAULT_FIELDS.items()
        }

    def close(self) -> None:
        """End of the cycle: release the HTTP connections."""
        self.http.close()

    def shape(self, klass: str) -> X3Shape:
        return self.shapes[klass]

    def class_url(self, klass: str) -> str:
        return f"/api1/x3/erp/{self.folder}/{klass}"

    def iter_pages(self, klass: str, *, since: str = "", after_key: str = "", order_by: list[str] | None = None,
                   count: int | None = None, where: str = "") -> Iterator[list[dict[str, Any]]]:
        """Pages of a class's ``$query`` facet in (update time, key) order: updated since ``since``
        (inclusive), or with ``after_key`` strictly after (``since``, ``after_key``); or those
        ``where`` selects (a lookup), in key order.

        Pages follow ``$links.$next``. Where a page has none, ``$totalResults`` (with
        ``$startIndex``, else what was read) says whether the feed really ended: a feed that gives
        no ``$links`` at all is paged by the client (SData 2.0); one whose links stop while records
        remain is an error naming the numbers (transient: the next run resumes after what was read),
        never a silent end of the stream.
        """
        shape = self.shapes[klass]
        params: dict[str, Any] = {
            "representation": f"{shape.representation}.$query",
            "count": count or self.page_size,
        }
        if since and after_key and self.seek_template:
            params["where"] = self.seek_template.format(field=shape["updated"], since=since, key=shape["key"],
                                                        after=after_key.replace("'", "''"))
        elif since:
            params["where"] = self.where_template.format(field=shape["updated"], since=since)
        elif where:
            params["where"] = where
        order = order_by or ([shape["key"]] if where and not since else [shape["updated"], shape["key"]])
        params["orderBy"] = ", ".join(f"{name} asc" for name in order)
        keyset = order == [shape["updated"], shape["key"]] and bool(self.seek_template)
        url: str | None = self.class_url(klass)
        request_params: dict[str, Any] | None = params
        read_in_chain = 0  # records read since the last request this client built itself
        last: tuple[str, str] | None = None
        while url:
            feed = _page(self.http.request("GET", url, params=request_params))
            if feed.resources:
                yield feed.resources
            read_in_chain += len(feed.resources)
            if feed.next_url:
                url, request_params = feed.next_url, None
                continue
            if feed.total is None:
                return  # nothing says more records exist: the feed ended
            position = feed.position(read_in_chain)
            if position >= feed.total:
                return
            if feed.links or not feed.resources:
                raise TransientError(
                    f"Sage X3 ended the {klass} feed after {position} of its {feed.total} records ($totalResults) "
                    "with no $links.$next link to the rest; what was read is kept and the next run continues "
                    "after it", code="feed_cut_short")
            # SData 2.0: a feed without $links leaves the next page to the client. In (time, key)
            # order it asks for the records after the last one read, as X3's own links do; in
            # another order, for the next `startIndex`.
            row = feed.resources[-1]
            here = (_text(shape.get(row, "updated", "")), _text(shape.get(row, "key", "")))
            mark = here if keyset and all(here) else ("", f"{position:020d}")
            if last is not None and mark <= last:
                raise TransientError(f"Sage X3 answered the next page of the {klass} feed with records already "
                                     "read; stopped there", code="repeated_page")
            last = mark
            url, request_params, read_in_chain = self.class_url(klass), dict(params), 0
            if mark == here:
                request_params["where"] = self.seek_template.format(
                    field=shape["updated"], since=here[0], key=shape["key"], after=here[1].replace("'", "''"))
            else:
                request_params["startIndex"] = position + 1

    def find(self, klass: str, logical: str, values: list[str], **equal: str) -> list[dict[str, Any]]:
        """Records whose field ``logical`` is one of ``values`` (and each other logical field
        equal to its value): how a document posted before a lost answer is found again."""
        shape = self.shapes[klass]
        found: list[dict[str, Any]] = []
        wanted = sorted({str(v) for v in values if str(v)})
        extra = " and ".join(f"{shape[name]} eq {_literal(value)}" for name, value in sorted(equal.items()))
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start:start + LOOKUP_CHUNK]
            condition = (f"{shape[logical]} eq {_literal(chunk[0])}" if len(chunk) == 1 else
                         f"{shape[logical]} in ({', '.join(_literal(v) for v in chunk)})")
            where = f"({condition}) and {extra}" if extra else condition
            for page in self.iter_pages(klass, where=where):
                found.extend(page)
        return found

    def read(self, klass: str, key: str) -> dict[str, Any] | None:
        """One record with its details (lines) through the ``$details`` facet."""
        shape = self.shapes[klass]
        try:
            response = self.http.request(
                "GET", f"{self.class_url(klass)}('{key}')", params={"representation": f"{shape.representation}.$details"}
            )
        except DataError as exc:
            if exc.status == 404:
                return None
            raise
        return parse_object(response, "a record")

    def update(self, klass: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        shape = self.shapes[klass]
        response = self.http.request(
            "PUT", f"{self.class_url(klass)}('{key}')", params={"representation": f"{shape.representation}.$edit"},
            data=exact_json(payload), headers=JSON_BODY,
        )
        return parse_object(response, "the record written", empty_ok=True)

    def create(self, klass: str, payload: dict[str, Any]) -> dict[str, Any]:
        shape = self.shapes[klass]
        response = self.http.request(
            "POST", self.class_url(klass), params={"representation": f"{shape.representation}.$create"},
            data=exact_json(payload), headers=JSON_BODY,
        )
        return parse_object(response, "the record written", empty_ok=True)

    def check(self) -> list[dict[str, Any]]:
        lines = []
        for klass in ("GACCOUNT", "BPSUPPLIER", "PORDER", "PINVOICE"):
            try:
                next(iter(self.iter_pages(klass, count=1)), None)
                lines.append({"check": f"class:{klass}", "ok": True,
                              "message": f"Read {klass} in folder {self.folder}"})
            except SyncError as exc:
                lines.append({"check": f"class:{klass}", "ok": False,
                              "message": f"Cannot read {klass} in folder {self.folder}: {exc}"})
                if exc.kind == "systemic":
                    break
        return lines


def build_client(spec: ConnectionSpec, store: TokenStore, counter: CallCounter | None = None,
                 policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
                 session: requests.Session | None = None) -> Any:
    """The api1 client, or the GraphQL one when the connection's ``transport`` is ``graphql``."""
    if spec.setting("transport", "rest") == "graphql":
        from integrations.systems.sage_x3_graphql import build_graphql_client

        return build_graphql_client(spec, store, counter=counter, policy=policy, on_event=on_event, session=session)
    if spec.auth_method == "jwt_connected_app":
        raise SystemicError("A connected application (jwt_connected_app) signs in to X3's GraphQL API: set the "
                            "connection's transport to graphql, or sign in to api1 with basic or OAuth2")
    base = spec.url.rstrip("/")
    auth = x3_auth(spec, store, counter=counter, policy=policy, on_event=on_event, session=session)
    http = HttpClient(base, auth=auth, policy=policy, counter=counter, session=session, error_classifier=classify,
                      default_headers={"Accept": "application/json"}, secrets=spec.secret_values(),
                      on_event=on_event)
    return SageX3Client(spec, http)


def x3_auth(spec: ConnectionSpec, store: TokenStore, counter: CallCounter | None = None,
            policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
            session: requests.Session | None = None) -> Any:
    """Basic, or a bearer token from X3's token service (both transports sign in this way)."""
    base = spec.url.rstrip("/")
    if spec.auth_method == "basic":
        return BasicAuth(spec.setting("username"), spec.secret("password"))
    token_http = HttpClient(base, policy=policy, counter=counter, session=session, error_classifier=classify,
                            secrets=spec.secret_values(), on_event=on_event)
    fetch = oauth2_fetcher(
        token_http, spec.setting("token_url") or f"{base}/token",
        client_id=spec.setting("client_id"), client_secret=spec.secret("client_secret"),
        grant="refresh_token" if spec.auth_method == "oauth2_refresh_token" else "client_credentials",
        refresh_token=spec.secret("refresh_token"),
        default_refresh_lifetime=REFRESH_TOKEN_LIFETIME,
    )
    return BearerAuth(TokenManager(fetch, store))
