"""Sage 300 client: the Web API (OData v4 on the customer's IIS), read only.

Facts followed (API_FACTS section 3 and 9): ``{server}/Sage300WebApi/v1.0/-/{COMPANY}/{MODULE}/
{Resource}``; HTTP Basic on every request, user and password upper-cased before base64 (Sage 300
keeps user ids upper-case; the case rule for passwords is [U], so the client sends what every
mode accepts); ``Content-Type: application/json`` on every request, GET included (without it
Sage 300 answers 500); at most the server's page size per answer whatever ``$top`` asks, and
an ``@odata.nextLink`` that keeps only ``$skip`` and names the server's own idea of its host,
so the client builds every page's URL itself from ``$skip``/``$top`` and keeps ``$filter``,
``$select`` and ``$orderby`` on each; ``datetime'…'`` literals in ``$filter``; errors
``{"error": {"code", "message": {"lang", "value"}}}``; IIS answers 503 with an HTML page while
the app pool is down; the app pool sleeps after 20 idle minutes, so the first call may be slow.

Sage 300 is the source of truth and is never written to: :class:`Sage300Client` has no method
that sends anything but GET (:meth:`Sage300Client._get` is the only way out).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from integrations.systems.errors import AuthError, DataError, SyncError, TransientError
from integrations.systems.http import CallCounter, HttpClient, HttpPolicy, decode_json, default_classifier
from integrations.systems.redaction import redact_text
from integrations.systems.schema import INT, TEXT, ConnectionFields, ConnectionSchema, Problems, Setting
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event

SYSTEM = "Sage 300"
API_PATH = "/Sage300WebApi/v1.0/-"
DEFAULT_PAGE_SIZE = 100  # web.config PageSize default [D: S300DEV]
DEFAULT_CALL_BUDGET = 1500  # the seed: 1500+ calls in a cycle can take the IIS app pool down
DEFAULT_TIMEOUT = 120  # the first call after the app pool slept can take a while
# answers kept for the cycle: the last few under this size (GL accounts, segment codes, a few vendors)
MEMO_ANSWERS, MEMO_MAX_BYTES = 8, 256 * 1024
MODULE_OF = {"GLAccounts": "GL", "GLSegmentCodes": "GL", "APVendors": "AP", "APInvoiceBatches": "AP"}

SETTINGS = (
    # Read by the engine as this system's default budget (engine.context.call_budget).
    Setting("call_budget", INT, default=DEFAULT_CALL_BUDGET, minimum=0, maximum=10_000_000,
            help="Sage 300 calls per sync cycle (1500+ calls can take the IIS app pool down); the rest "
                 "continues after a pause."),
    Setting("timeout", INT, default=DEFAULT_TIMEOUT, minimum=5, maximum=900,
            help="Seconds to wait for one answer; the first call after IIS let the app pool sleep is slow."),
    Setting("page_size", INT, default=DEFAULT_PAGE_SIZE, minimum=1, maximum=1000,
            help="Records asked per page ($top); the server answers at most its own PageSize (100 by default)."),
    Setting("slow_call_seconds", INT, default=10, minimum=1, maximum=900,
            help="A first call slower than this is noted in the audit trail as the app pool waking up."),
    Setting("batch_date_field", TEXT, default="DateLastEdited", choices=("DateLastEdited", "BatchDate"),
            help="The invoice batch's own date that incremental reads filter on."),
)


def _url_checks(fields: ConnectionFields) -> Problems:
    path = urlsplit(fields.url or "").path.rstrip("/")
    if path and not _api_root_path(path):
        return {"url": ["must be the server root (https://erp.acme.local) or the Web API root "
                        "(…/Sage300WebApi or …/Sage300WebApi/v1.0/-)"]}
    return {}


def _api_root_path(path: str) -> bool:
    lowered = path.lower()
    return lowered in ("/sage300webapi", "/sage300webapi/v1.0", "/sage300webapi/v1.0/-")


SCHEMA = ConnectionSchema(
    system="sage_300",
    label=SYSTEM,
    auth_methods=("basic",),
    settings=SETTINGS,
    help="Sage 300 through its Web API on the customer's IIS server; read only.",
    url_help="The IIS server, e.g. https://erp.acme.local, or the Web API root (…/Sage300WebApi).",
    company_label="the Sage 300 company (database) id, e.g. SAMLTD",
    company_required=True,
    key_help={"username": "A Sage 300 user with the Web API security right on GL and AP (sent upper-case)."},
    extra_checks=_url_checks,
)


def api_root(url: str) -> str:
    """``…/Sage300WebApi/v1.0/-`` from the server root or any form of the Web API root."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if _api_root_path(path):
        path = ""
    return f"{parts.scheme}://{parts.netloc}{path}{API_PATH}"


class UpperCaseBasicAuth:
    """HTTP Basic with user and password upper-cased before base64, on every request."""

    def __init__(self, username: str, password: str) -> None:
        self._auth = requests.auth._basic_auth_str(username.upper(), password.upper())

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._auth

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        return False


def classify(response: requests.Response) -> SyncError | None:
    """Sage 300's error body, and IIS's HTML 503 while the app pool is down."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body.get("error") if isinstance(body, dict) else None
    code, message = "", ""
    if isinstance(envelope, dict):
        code = str(envelope.get("code") or "")
        text = envelope.get("message")
        message = str(text.get("value") if isinstance(text, dict) else text or "")
    if status == 401:
        return AuthError(
            "Sage 300 refused the credentials. They are sent upper-case (Sage 300 keeps user ids upper-case); "
            "check the user and password, that the user has the Web API security right, and that ADMIN is only "
            "used when the customer enabled AllowWebApiAccessForAdmin", status=status, code=code or "Unauthorized")
    if status == 429 or code == "TooManyRequests":
        error = default_classifier(response)
        return TransientError(message or "Sage 300 is busy (too many requests)", status=status, code=code,
                              retry_after=error.retry_after)
    if status == 503 and body is None:
        return TransientError("IIS answered 503: the Sage 300 app pool is down or recycling", status=status,
                              detail=redact_text(response.text[:200]), code="AppPoolUnavailable")
    if status in (404, 409) and message:
        return DataError(message, status=status, code=code)
    if message:
        error = default_classifier(response)
        error.message, error.code, error.detail = message, code, ""
        return error
    return None


def parse_json(response: requests.Response) -> Any:
    """Amounts arrive as JSON numbers: straight to Decimal, never float."""
    return decode_json(response, SYSTEM, parse_float=Decimal)


def odata_text(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def odata_datetime(day: str) -> str:
    """A ``datetime'…'`` literal: a bare string literal against a date field is a type error."""
    return f"datetime'{day[:10]}T00:00:00'"


def wire_day(value: Any) -> str:
    """``2026-01-05T00:00:00Z`` (or ``…T00:00:00``) → ``2026-01-05``."""
    return str(value or "")[:10]


def plain_account(value: Any) -> str:
    """The unformatted account: a formatted ``6000-100`` without its segment separators."""
    return re.sub(r"[^0-9A-Za-z]", "", str(value or ""))


class Sage300Client:
    """One Sage 300 company as one connection sees it. Reads only."""

    def __init__(self, spec: ConnectionSpec, http: HttpClient, on_event: EventSink = ignore_event) -> None:
        self.spec = spec
        self.http = http
        self.company = (spec.company or "").upper()
        self.page_size = int(spec.setting("page_size", DEFAULT_PAGE_SIZE))
        self.slow_call = float(spec.setting("slow_call_seconds", 10))
        self.batch_date_field = spec.setting("batch_date_field", "DateLastEdited")
        self.on_event = on_event
        self._first_call_done = False
        # small answers of this cycle, by URL: two streams that read one resource (GL accounts for
        # the mapping suggestions and for ServiceNow) spend one call of the IIS budget, not two
        self._answers: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def close(self) -> None:
        self.http.close()

    def resource_url(self, resource: str) -> str:
        return f"/{self.company}/{MODULE_OF[resource]}/{resource}"

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The client's only request: a GET. Sage 300 is never written to, so within one cycle
        (one client) the same query answers the same: a small answer is asked once."""
        memo = (path, urlencode(sorted((params or {}).items())))
        if memo in self._answers:
            return self._answers[memo]
        started = time.monotonic()
        response = self.http.request("GET", path, params=params)
        elapsed = time.monotonic() - started
        if not self._first_call_done:
            self._first_call_done = True
            if elapsed >= self.slow_call:
                self.on_event("connection.slow_start", {
                    "reason": f"Sage 300 answered its first call in {elapsed:.1f} s: the IIS app pool was "
                              "probably asleep (it idles out after 20 minutes by default)",
                    "seconds": round(elapsed, 1)})
        body = parse_json(response)
        if len(response.content) <= MEMO_MAX_BYTES:
            self._answers[memo] = body
            while len(self._answers) > MEMO_ANSWERS:
                self._answers.popitem(last=False)
        return body

    def iter_pages(self, resource: str, *, filter: str = "", orderby: str = "", select: str = "",
                   top: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every page of a query (see :meth:`iter_counted_pages`)."""
        for rows, _ in self.iter_counted_pages(resource, filter=filter, orderby=orderby, select=select, top=top):
            yield rows

    def iter_counted_pages(self, resource: str, *, filter: str = "", orderby: str = "", select: str = "",
                           top: int | None = None) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """``(page, is the last page)`` of a query, each URL built here from ``$skip``/``$top``.

        A server answers at most its own page size whatever ``$top`` asks, and its
        ``@odata.nextLink`` drops the filter and may name another host: it only says that more
        records follow and is never requested. ``$count=true`` tells which page is the last
        without asking for an empty one (``@odata.count`` arrives as a string).
        """
        top = top or self.page_size
        skip = 0
        while True:
            params: dict[str, Any] = {"$top": top, "$skip": skip, "$count": "true"}
            if filter:
                params["$filter"] = filter
            if orderby:
                params["$orderby"] = orderby
            if select:
                params["$select"] = select
            body = self._get(self.resource_url(resource), params)
            rows = body.get("value") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise TransientError(f"{SYSTEM} answered {resource} without a list of records")
            count = str(body.get("@odata.count") or "")
            more = bool(body.get("@odata.nextLink")) or len(rows) >= top
            if count.isdigit():
                more = bool(rows) and skip + len(rows) < int(count)
            if rows:
                yield rows, not more
            if not rows or not more:
                return
            skip += len(rows)

    def iter_changed(self, resource: str, date_field: str, key_field: str, since_day: str = "",
                     after_key: str | int | None = None, *, numeric_key: bool = False
                     ) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """Pages of records changed on or after ``since_day`` in (date, key) order, with "is last page".

        ``after_key`` resumes inside ``since_day`` after that key (a continuation after a call
        budget stopped a run); without it the whole day is read again (``ge``): a date without
        time cannot tell two changes of one day apart, so the caller skips unchanged records.
        """
        if since_day and after_key not in (None, ""):
            day = odata_datetime(since_day)
            key = str(int(after_key)) if numeric_key else odata_text(str(after_key))
            flt = f"({date_field} eq {day} and {key_field} gt {key}) or {date_field} gt {day}"
        elif since_day:
            flt = f"{date_field} ge {odata_datetime(since_day)}"
        else:
            flt = ""
        yield from self.iter_counted_pages(resource, filter=flt, orderby=f"{date_field},{key_field}")

    def segment_names(self, segment: str = "2") -> dict[str, str]:
        names: dict[str, str] = {}
        for page in self.iter_pages("GLSegmentCodes", filter=f"SegmentNumber eq {odata_text(segment)}"):
            for row in page:
                names[str(row.get("SegmentCode") or "")] = str(row.get("Description") or "")
        return names

    def read(self, resource: str, key: str | int) -> dict[str, Any] | None:
        """One record by key (an invoice batch comes with its invoices and details)."""
        literal = str(int(key)) if resource == "APInvoiceBatches" else odata_text(str(key))
        try:
            return self._get(f"{self.resource_url(resource)}({literal})")
        except DataError as exc:
            if exc.status == 404:
                return None
            raise

    def check(self) -> list[dict[str, Any]]:
        """Credentials and read access to each resource the flow reads, as report lines."""
        lines: list[dict[str, Any]] = []
        for resource in ("GLAccounts", "APVendors", "APInvoiceBatches"):
            try:
                next(iter(self.iter_pages(resource, top=1)), None)
                lines.append({"check": f"resource:{resource}", "ok": True,
                              "message": f"Read {MODULE_OF[resource]}/{resource} in company {self.company}"})
            except SyncError as exc:
                lines.append({"check": f"resource:{resource}", "ok": False,
                              "message": f"Cannot read {resource} in company {self.company}: {exc}"})
                if exc.kind == "systemic":
                    break
        return lines


def build_client(spec: ConnectionSpec, store: Any = None, counter: CallCounter | None = None,
                 policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
                 session: requests.Session | None = None) -> Sage300Client:
    policy = replace(policy or HttpPolicy(), timeout=float(spec.setting("timeout", DEFAULT_TIMEOUT)))
    auth = UpperCaseBasicAuth(str(spec.setting("username")), spec.secret("password"))
    secrets = tuple({*spec.secret_values(), *(value.upper() for value in spec.secret_values())})
    http = HttpClient(api_root(spec.url), auth=auth, policy=policy, counter=counter, session=session,
                      error_classifier=classify,
                      # mandatory on every request, GET included: without it Sage 300 answers 500
                      default_headers={"Accept": "application/json", "Content-Type": "application/json"},
                      secrets=secrets, on_event=on_event)
    return Sage300Client(spec, http, on_event)

