"""A Sage 300 Web API simulator (OData v4 on IIS), per API_FACTS section 3.

What it plays:

- ``GET /Sage300WebApi/v1.0/-/{COMPANY}/{MODULE}/{Resource}`` for ``GL/GLAccounts``,
  ``GL/GLSegmentCodes``, ``AP/APVendors`` and ``AP/APInvoiceBatches`` (invoices and their
  details inside each batch), and one entity by key (``APVendors('1200')``,
  ``APInvoiceBatches(65)``). At most ``page_size`` records (web.config ``PageSize``, 100 by
  default) whatever ``$top`` asks; ``$skip``, ``$top``, ``$filter``, ``$select``, ``$orderby``,
  ``$count=true`` (``@odata.count`` is a string). ``@odata.nextLink`` keeps only ``$skip`` and
  names the host the server believes it has (``http://localhost/…``) [C: recorded page].
- Dates on the wire as ``YYYY-MM-DDT00:00:00Z``; amounts as exact JSON number literals.
- HTTP Basic on every request. ``credential_mode``: ``"case_insensitive"`` (user upper-cased
  before lookup, password compared case-insensitively: API_FACTS's [U] default) or
  ``"strict_upper"`` (the client must send both upper-case). ``ADMIN`` is refused unless
  ``allow_admin`` (``AllowWebApiAccessForAdmin``).
- ``Content-Type: application/json`` is mandatory on every request: without it, HTTP 500.
- Errors ``{"error": {"code", "message": {"lang", "value"}}}``: 401 ``Unauthorized``, 404
  ``RecordNotFound``/``ResourceNotFound``, 400 ``InvalidParameters``, 429 ``TooManyRequests``.
- Any method but GET is refused (405 ``MethodNotAllowed``) and counted in ``writes``: the
  portal must never write to Sage 300, and tests assert that it never tried.

Faults, besides :class:`~.base.Faults` (``error_rate`` answers IIS's HTML 503,
``burst_429_rate`` Sage 300's ``TooManyRequests``): ``slow_start`` seconds added to the first
call after ``idle_timeout`` seconds without one (the app pool waking up; :meth:`go_idle`
forces it), and ``call_limit`` calls per ``call_window`` seconds, past which the app pool is
down and every call gets the HTML 503 until the window ends.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from .base import Faults, SimRequest, SimResponse, Simulator
from .sage300_query import QueryError, parse_filter, parse_orderby, sort_records
from .sage300_seed import COMPANY, DEMO_USER, bulk_data, demo_data
from .sage_x3_schema import dumps as x3_dumps

API_ROOT = "/Sage300WebApi/v1.0/-/"
# resource -> (module, key fields, field types for $filter/$orderby)
RESOURCES: dict[str, tuple[str, tuple[str, ...], dict[str, str]]] = {
    "GLAccounts": ("GL", ("UnformattedAccount",), {
        "UnformattedAccount": "text", "AccountNumber": "text", "Description": "text", "Status": "text",
        "AccountSegmentCode1": "text", "AccountSegmentCode2": "text", "DateCreated": "date",
        "DateLastMaintained": "date"}),
    "GLSegmentCodes": ("GL", ("SegmentNumber", "SegmentCode"), {
        "SegmentNumber": "text", "SegmentCode": "text", "Description": "text"}),
    "APVendors": ("AP", ("VendorNumber",), {
        "VendorNumber": "text", "VendorName": "text", "ShortName": "text", "Status": "text",
        "DateLastMaintained": "date"}),
    "APInvoiceBatches": ("AP", ("BatchNumber",), {
        "BatchNumber": "number", "BatchDate": "date", "DateLastEdited": "date", "BatchStatus": "text",
        "Description": "text"}),
}
DATE_FIELDS = {"DateCreated", "DateLastMaintained", "BatchDate", "DateLastEdited", "DocumentDate", "PostingDate",
               "DueDate"}
IIS_503 = ("<!DOCTYPE html><html><head><title>Service Unavailable</title></head><body>"
           "<h2>Service Unavailable</h2><hr><p>HTTP Error 503. The service is unavailable.</p></body></html>")
_KEY = re.compile(r"^(?P<res>[A-Za-z]+)(?:\((?P<key>.*)\))?$")


def error(status: int, code: str, message: str) -> SimResponse:
    return SimResponse.json(status, {"error": {"code": code, "message": {"lang": "en-US", "value": message}}})


def _wire(value: Any, field: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _wire(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if field in DATE_FIELDS and isinstance(value, str) and len(value) == 10:
        return f"{value}T00:00:00Z"
    return value


def dumps(payload: Any) -> bytes:
    """Exact number literals for Decimals (the X3 simulator's encoder), never through float."""
    return x3_dumps(payload).encode("utf-8")


class Sage300Simulator(Simulator):
    """In-memory Sage 300 company database(s) behind the Web API."""

    name = "sage_300"

    def __init__(self, faults: Faults | None = None, *, page_size: int = 100, host_name: str = "localhost",
                 credential_mode: str = "case_insensitive", allow_admin: bool = False,
                 idle_timeout: float = 20 * 60, slow_start: float = 0.0, call_limit: int = 0,
                 call_window: float = 60.0, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(faults)
        self.page_size = page_size
        self.host_name = host_name  # what nextLink names: the server's own idea of its host
        self.credential_mode = credential_mode
        self.allow_admin = allow_admin
        self.idle_timeout = idle_timeout
        self.slow_start = slow_start
        self.call_limit = call_limit
        self.call_window = call_window
        self.clock = clock or time.monotonic
        self.sleep = sleep
        self.users: dict[str, str] = {}
        self.companies: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.writes: list[SimRequest] = []
        self.cold_starts = 0
        self._last_call: float | None = None
        self._window: tuple[float, int] = (0.0, 0)

    # --- set-up -------------------------------------------------------------------------------
    def add_user(self, user: str, password: str) -> None:
        with self.lock:
            self.users[user.upper()] = password.upper()

    def load(self, data: dict[str, list[dict[str, Any]]], company: str = COMPANY) -> None:
        with self.lock:
            self.companies[company.upper()] = {name: [dict(r) for r in data.get(name, [])] for name in RESOURCES}

    def seed_demo(self) -> Sage300Simulator:
        self.add_user(*DEMO_USER)
        self.load(demo_data())
        return self

    def seed_bulk(self, invoices: int, lines_per_invoice: int, vendors: int = 50, **options: Any) -> Sage300Simulator:
        self.add_user(*DEMO_USER)
        self.load(bulk_data(invoices, lines_per_invoice, vendors, **options))
        return self

    def rows(self, resource: str, company: str = COMPANY) -> list[dict[str, Any]]:
        """The live rows of a resource (tests edit them as a Sage 300 user would)."""
        return self.companies[company.upper()][resource]

    def go_idle(self) -> None:
        """The app pool idled out: the next call wakes it (``slow_start`` seconds)."""
        with self.lock:
            self._last_call = None

    # --- faults in Sage 300's own shapes --------------------------------------------------------
    def transient_response(self, request: SimRequest) -> SimResponse:
        return SimResponse.text(503, IIS_503, content_type="text/html")

    def rate_limited_response(self, request: SimRequest) -> SimResponse:
        response = error(429, "TooManyRequests", "Too many concurrent requests. Please try again later.")
        response.headers["Retry-After"] = str(self.faults.retry_after)
        return response

    def handle(self, request: SimRequest) -> SimResponse:
        now = self.clock()
        with self.lock:
            cold = self._last_call is None or now - self._last_call > self.idle_timeout
            self._last_call = now
            start, count = self._window
            if now - start > self.call_window:
                start, count = now, 0
            self._window = (start, count + 1)
            over_limit = bool(self.call_limit) and count + 1 > self.call_limit
        if cold and self.slow_start:
            self.cold_starts += 1
            self.sleep(self.slow_start)
        if over_limit:  # the app pool fell over: IIS answers for it
            with self.lock:
                self.requests.append(request)
            return self.transient_response(request)
        return super().handle(request)

    # --- requests ---------------------------------------------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:
        if not (request.header("Content-Type") or "").lower().startswith("application/json"):
            return error(500, "InternalServerError", "An error has occurred.")
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        if request.method != "GET":
            self.writes.append(request)
            return error(405, "MethodNotAllowed", f"{request.method} is not allowed on this simulated source.")
        path = unquote(request.path)
        if not path.startswith(API_ROOT):
            return error(404, "ResourceNotFound", "The resource cannot be found.")
        parts = path[len(API_ROOT):].split("/")
        if len(parts) != 3:
            return error(404, "ResourceNotFound", "The resource cannot be found.")
        company, module, resource = parts
        data = self.companies.get(company.upper())
        match = _KEY.match(resource)
        if data is None or not match or match.group("res") not in RESOURCES:
            return error(404, "ResourceNotFound", f"The resource '{resource}' cannot be found.")
        name = match.group("res")
        spec = RESOURCES[name]
        if spec[0] != module.upper():
            return error(404, "ResourceNotFound", f"'{name}' is not in module {module}.")
        try:
            if match.group("key") is not None:
                return self._one(data[name], spec, match.group("key"))
            return self._list(request, company, module, name, data[name], spec)
        except QueryError as exc:
            return error(400, "InvalidParameters", str(exc))

    def _authenticate(self, request: SimRequest) -> SimResponse | None:
        header = request.header("Authorization") or ""
        refused = error(401, "Unauthorized", "Authorization has been denied for this request.")
        if not header.startswith("Basic "):
            return refused
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return refused
        if self.credential_mode == "strict_upper":
            ok = self.users.get(user) == password
        else:
            ok = self.users.get(user.upper(), "\0") == password.upper()
        if not ok:
            return refused
        if user.upper() == "ADMIN" and not self.allow_admin:
            return refused
        return None

    def _one(self, rows: list[dict[str, Any]], spec: tuple[str, tuple[str, ...], dict[str, str]],
             raw: str) -> SimResponse:
        key_field = spec[1][0]
        raw = raw.split("=", 1)[1] if "=" in raw else raw
        raw = raw.strip().strip("'")
        for row in rows:
            if str(row.get(key_field)) == raw:
                return SimResponse(200, dumps(_wire(row)), {"Content-Type": "application/json; odata.metadata=minimal"})
        return error(404, "RecordNotFound", "A Record cannot be found for the specified entity key")

    def _list(self, request: SimRequest, company: str, module: str, name: str, rows: list[dict[str, Any]],
              spec: tuple[str, tuple[str, ...], dict[str, str]]) -> SimResponse:
        types = spec[2]
        selected = list(rows)
        if (flt := request.param("$filter")):
            predicate = parse_filter(flt, types)
            selected = [r for r in selected if predicate(r)]
        order = parse_orderby(request.param("$orderby") or "", types) or [(k, False) for k in spec[1]]
        sort_records(selected, order, types)
        try:
            skip = int(request.param("$skip") or 0)
            requested = int(request.param("$top")) if request.param("$top") else None
        except ValueError:
            raise QueryError("$skip and $top must be whole numbers.") from None
        if skip < 0 or (requested is not None and requested < 0):
            raise QueryError("$skip and $top must not be negative.")
        served = self.page_size if requested is None else min(requested, self.page_size)
        page = selected[skip:skip + served]
        if (select := request.param("$select")):
            fields = [f.strip() for f in select.split(",") if f.strip()]
            page = [{f: r[f] for f in fields if f in r} for r in page]
        base = f"http://{self.host_name}{API_ROOT}{company}/{module}/{name}"
        body: dict[str, Any] = {"@odata.context": f"http://{self.host_name}{API_ROOT}{company}/{module}/$metadata#{name}"}
        if (request.param("$count") or "").lower() == "true":
            body["@odata.count"] = str(len(selected))
        body["value"] = [_wire(r) for r in page]
        truncated = requested is None or requested > self.page_size
        if truncated and skip + served < len(selected):
            body["@odata.nextLink"] = f"{base}?$skip={skip + served}"  # keeps only $skip, as a real server does
        return SimResponse(200, dumps(body), {"Content-Type": "application/json; odata.metadata=minimal"})

