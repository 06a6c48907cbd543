"""A ServiceTitan simulator: auth host, API and a signed webhook sender.

Facts followed (API_FACTS 6, 7 and 9; [U] marks what no source confirms):

- Auth host ``POST /connect/token``, form ``grant_type=client_credentials`` with ``client_id`` and
  ``client_secret`` (HTTP Basic is accepted too, RFC 6749 2.3.1): ``{"access_token",
  "token_type": "Bearer", "expires_in": 900}``, never a refresh token; a wrong client gets 400
  ``{"error": "invalid_client"}``. One simulator object serves the auth host and the API host:
  mount it at both base URLs (the in-process mount is per base URL), or serve it on one port.
- Every API call needs ``Authorization: Bearer`` and ``ST-App-Key``; without the app key: 401
  "Application key not present, check ST-App-Key header value." [C]; an expired or unknown token:
  401. Paths ``/{module}/v2/tenant/{tenant}/{resource}``; a token only opens its client's tenant
  (403 otherwise [U]).
- Lists: ``page`` (1-based), ``pageSize`` (1-5000, default 50), ``includeTotal``, ``hasMore``,
  ``ids``, ``modifiedOnOrAfter``/``modifiedBefore`` (RFC 3339), ``active`` (True|Any|False, only
  active by default), ordered by id. ``accounting/inventory-bills`` answers a bare JSON array and
  its records have no ``modifiedOn`` (ST-SPEC): read bills through the export feed.
- Export ``GET /{module}/v2/tenant/{t}/export/{resource}?from=<token or date>&includeRecentChanges=``
  answers ``{data, hasMore, continueFrom}`` with ``continueFrom`` on the last page too [C]; it
  returns active and inactive records (each with ``active``), so a voided bill shows up inactive.
  Tokens are opaque, base64 of the feed position, longer than 64 characters.
  ``includeRecentChanges=true`` repeats the last record of the previous page (ST warns that the
  same results may appear more than once [D]; how often is [U]).
- Errors RFC 7807 ``{"type", "title", "status", "traceId", "errors": {field: [msg]}, "data"}``;
  429 with ``Retry-After`` from ``Faults.burst_429_rate`` and from a real limiter of
  ``rate_limit_per_second`` (60 by default) calls per (app key, tenant) in any one second [3P].
- Vendors may be written (POST create, PATCH update; both answer ``{"id"}`` as ST-SPEC's
  ModificationResponse), recorded in ``vendor_writes``. Every other write (invoices, inventory
  bills, markasexported, jobs...) is refused with 403 and recorded in ``forbidden_writes``: the
  portal must never try, and tests assert it.
- Webhooks (V2, [D] for the key and the retries, [U] for the header, encoding and event shape):
  :meth:`ServiceTitanSimulator.webhook_event` builds a simulated event, :meth:`deliver` POSTs its
  raw JSON bytes with HMAC-SHA256(key, raw body) in ``X-ServiceTitan-Signature`` (base64 or hex),
  retrying after a non-2xx at 10, 30, 60 and 300 seconds (injectable ``sleep``/``delays``).

Switches: ``rate_limit_per_second`` (0: off), ``export_page_size``, ``repeat_pages`` (a broken
server answering page 1 with ``hasMore`` true forever), ``numeric_bill_amounts``,
``echo_credentials_in_errors`` (error bodies quote the app key and token, as a debugging proxy
might; clients must redact), :meth:`revoke_scope`, :meth:`expire_tokens`, ``webhook_retry_delays``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import gc
import hashlib
import hmac
import itertools
import json
import re
import secrets
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from .base import Faults, SimRequest, SimResponse, Simulator
from .clock import ClockFn, MonotonicStamper, utc_now_seconds
from .sage_x3_schema import dumps as exact_dumps
from .servicetitan_seed import APP_KEY, CLIENT_ID, CLIENT_SECRET, TENANT_ID, Rows, bulk_data, demo_data, stamp

TOKEN_LIFETIME = 900
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 5000
EXPORT_PAGE_SIZE = 500  # [U] records per export answer
RATE_LIMIT_PER_SECOND = 60
SIGNATURE_HEADER = "X-ServiceTitan-Signature"
WEBHOOK_RETRY_DELAYS = (10, 30, 60, 300)
MISSING_APP_KEY = "Application key not present, check ST-App-Key header value."
BAD_APP_KEY = "Application key is not valid, check ST-App-Key header value."  # [U] wording
_API_PATH = re.compile(r"^/(?P<module>[a-z-]+)/v2/tenant/(?P<tenant>[^/]+)/(?P<rest>.+?)/?$")


@dataclass(frozen=True)
class Resource:
    modified: bool = True  # records carry modifiedOn
    one: bool = True  # GET …/{id} exists
    export: bool = False  # GET …/export/{resource} exists
    bare_list: bool = False  # the list answers a bare array (inventory bills, per ST-SPEC)
    writable: bool = False  # the portal may POST/PATCH here (vendors only)
    hides_inactive: bool = False  # the list leaves inactive records out unless ``active`` says otherwise


RESOURCES: dict[tuple[str, str], Resource] = {
    ("accounting", "invoices"): Resource(one=False, export=True),
    # voided bills leave the list [U] and show up inactive in the export feed
    ("accounting", "inventory-bills"): Resource(modified=False, one=False, export=True, bare_list=True,
                                                hides_inactive=True),
    ("accounting", "gl-accounts"): Resource(),  # [C: newer spec versions]
    ("inventory", "vendors"): Resource(writable=True),
    ("inventory", "purchase-orders"): Resource(),
    ("jpm", "jobs"): Resource(export=True),  # export/jobs [U: not in API_FACTS]
    ("jpm", "job-types"): Resource(),  # GET one [U]
    ("settings", "business-units"): Resource(),
}


class Table:
    """One resource's records: by id, in id order, and as a change feed for the export API."""

    def __init__(self, spec: Resource) -> None:
        self.spec = spec
        self.rows: dict[int, dict[str, Any]] = {}
        self.ids: list[int] = []
        self.changed: dict[int, datetime] = {}
        self.active: dict[int, bool] = {}
        self.seq: dict[int, int] = {}
        self.feed: list[tuple[int, int]] = []  # (seq, id) ascending; superseded entries are skipped

    def put(self, record: dict[str, Any], changed: datetime, active: bool, seq: int) -> None:
        rid = int(record["id"])
        if rid not in self.rows:
            if not self.ids or rid > self.ids[-1]:
                self.ids.append(rid)
            else:
                bisect.insort(self.ids, rid)
        self.rows[rid], self.changed[rid], self.active[rid], self.seq[rid] = record, changed, active, seq
        self.feed.append((seq, rid))

    def feed_page(self, after: int, since: datetime | None, limit: int, repeat_last: bool
                  ) -> tuple[list[int], bool, int]:
        """Ids changed after feed position ``after``, whether more follow, and the new position."""
        start = bisect.bisect_left(self.feed, (after, -1)) if repeat_last else bisect.bisect_right(
            self.feed, (after, sys.maxsize))
        page: list[int] = []
        position = after
        for index in range(start, len(self.feed)):
            seq, rid = self.feed[index]
            if self.seq.get(rid) != seq or (since is not None and self.changed[rid] < since):
                continue
            if len(page) == limit:
                return page, True, position
            page.append(rid)
            position = seq
        return page, False, position


@dataclass
class IssuedToken:
    client_id: str
    tenant: str
    expires_at: datetime


@dataclass
class DeliveryAttempt:
    """One POST of a webhook event: how long the sender waited first, and the receiver's answer."""

    number: int
    waited: float
    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def problem(status: int, title: str, errors: dict[str, list[str]] | None = None,
            data: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> SimResponse:
    """An RFC 7807 answer in ServiceTitan's ``ApiErrorResponse`` shape."""
    body = {"type": f"https://tools.ietf.org/html/rfc7231#section-6.{status // 100}", "title": title,
            "status": status, "traceId": f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00",
            "errors": errors or {}, "data": data or {}}
    return SimResponse.json(status, body, {"Content-Type": "application/problem+json", **(headers or {})})


def sign(body: bytes, key: str, encoding: str = "base64") -> str:
    """HMAC-SHA256 of the raw body with the webhook key, base64 or hex."""
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    if encoding == "base64":
        return base64.b64encode(digest).decode("ascii")
    if encoding == "hex":
        return digest.hex()
    raise ValueError(f"unknown signature encoding {encoding!r} (base64 or hex)")


def encode_event(event: dict[str, Any], style: str = "spaced") -> bytes:
    """The event as bytes; styles differ in key order and whitespace, never in meaning."""
    if style == "spaced":
        return json.dumps(event).encode("utf-8")
    if style == "compact":
        return json.dumps(event, separators=(",", ":")).encode("utf-8")
    if style == "pretty":
        return json.dumps(event, indent=2).encode("utf-8")
    if style == "reordered":
        return json.dumps(dict(reversed(list(event.items()))), indent=1, ensure_ascii=False).encode("utf-8")
    raise ValueError(f"unknown body style {style!r}")


def parse_time(value: str) -> datetime | None:
    """RFC 3339 (or a bare date) as an aware UTC datetime; None when unreadable."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


class ServiceTitanSimulator(Simulator):
    """One ServiceTitan tenant behind its auth host and API."""

    name = "servicetitan"

    def __init__(self, faults: Faults | None = None, *, clock: ClockFn | None = None,
                 timer: Callable[[], float] = time.monotonic, tenant_id: str = TENANT_ID,
                 rate_limit_per_second: int = RATE_LIMIT_PER_SECOND, export_page_size: int = EXPORT_PAGE_SIZE,
                 numeric_bill_amounts: bool = False) -> None:
        super().__init__(faults)
        self.clock = clock or utc_now_seconds
        self.stamper = MonotonicStamper(self.clock)
        self.timer = timer
        self.tenant_id = tenant_id
        self.rate_limit_per_second = rate_limit_per_second
        self.export_page_size = export_page_size
        self.numeric_bill_amounts = numeric_bill_amounts
        self.repeat_pages = False
        self.echo_credentials_in_errors = False
        self.clients: dict[str, tuple[str, str]] = {}  # client id -> (secret, tenant)
        self.app_keys: set[str] = set()
        self.tokens: dict[str, IssuedToken] = {}
        self.token_grants = 0
        self.tables: dict[tuple[str, str], Table] = {key: Table(spec) for key, spec in RESOURCES.items()}
        self.denied: set[tuple[str, str]] = set()
        self.forbidden_writes: list[SimRequest] = []
        self.vendor_writes: list[SimRequest] = []
        self.rate_limited = 0
        self.webhook_events: list[dict[str, Any]] = []
        self.deliveries: list[tuple[dict[str, Any] | None, list[DeliveryAttempt]]] = []
        self.webhook_retry_delays: tuple[float, ...] = WEBHOOK_RETRY_DELAYS
        self.webhook_sleep: Callable[[float], None] = time.sleep
        self._seq = itertools.count(1)
        self._windows: dict[tuple[str, str], deque[float]] = {}

    # --- set-up -----------------------------------------------------------------------------
    def add_client(self, client_id: str, secret: str, tenant: str | None = None) -> None:
        with self.lock:
            self.clients[client_id] = (secret, tenant or self.tenant_id)

    def add_app_key(self, key: str) -> None:
        with self.lock:
            self.app_keys.add(key)

    def load(self, data: dict[tuple[str, str], Rows]) -> None:
        """Replace the records; each resource's change feed follows the rows' change times."""
        was_enabled = gc.isenabled()
        gc.disable()  # hundreds of thousands of records: spare the collector's rescans
        try:
            with self.lock:
                for key, rows in data.items():
                    table = self.tables[key] = Table(RESOURCES[key])
                    for record, changed, active in sorted(rows, key=lambda row: (row[1], row[0]["id"])):
                        table.put(record, changed, active, next(self._seq))
        finally:
            if was_enabled:
                gc.enable()

    def seed_demo(self) -> ServiceTitanSimulator:
        self.add_client(CLIENT_ID, CLIENT_SECRET)
        self.add_app_key(APP_KEY)
        self.load(demo_data(self.numeric_bill_amounts))
        return self

    def seed_bulk(self, records: int, lines: int = 5, vendors: int = 50, jobs: int | None = None
                  ) -> ServiceTitanSimulator:
        self.add_client(CLIENT_ID, CLIENT_SECRET)
        self.add_app_key(APP_KEY)
        self.load(bulk_data(records, lines, vendors, jobs, self.numeric_bill_amounts))
        return self

    def rows(self, module: str, resource: str) -> list[dict[str, Any]]:
        """The records of a resource in id order, inactive ones included."""
        table = self.tables[(module, resource)]
        return [table.rows[rid] for rid in table.ids]

    def record(self, module: str, resource: str, record_id: int) -> dict[str, Any]:
        return self.tables[(module, resource)].rows[int(record_id)]

    def update(self, module: str, resource: str, record_id: int, **changes: Any) -> dict[str, Any]:
        """A change made in ServiceTitan: new ``modifiedOn`` and a new place in the export feed."""
        with self.lock:
            table = self.tables[(module, resource)]
            record = {**table.rows[int(record_id)], **changes}
            return self._put(table, record, table.active[int(record_id)])

    def add(self, module: str, resource: str, record: dict[str, Any], active: bool = True) -> dict[str, Any]:
        with self.lock:
            return self._put(self.tables[(module, resource)], dict(record), active)

    def set_active(self, module: str, resource: str, record_id: int, active: bool) -> dict[str, Any]:
        with self.lock:
            table = self.tables[(module, resource)]
            record = dict(table.rows[int(record_id)])
            if "active" in record:
                record["active"] = active
            return self._put(table, record, active)

    def void_bill(self, bill_id: int) -> dict[str, Any]:
        """Void an inventory bill: it leaves the list and shows up inactive in the export feed."""
        return self.set_active("accounting", "inventory-bills", bill_id, False)

    def _put(self, table: Table, record: dict[str, Any], active: bool) -> dict[str, Any]:
        now = self.stamper.now()
        if table.spec.modified:
            record["modifiedOn"] = stamp(now)
        table.put(record, now, active, next(self._seq))
        return record

    def revoke_scope(self, module: str, resource: str) -> None:
        """The app loses access to a resource (its scope was removed): 403 on every call to it."""
        self.denied.add((module, resource))

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = datetime.min.replace(tzinfo=UTC)

    def api_requests(self) -> list[SimRequest]:
        return [r for r in self.requests if _API_PATH.match(r.path)]

    # --- faults in ServiceTitan's shapes -----------------------------------------------------
    def transient_response(self, request: SimRequest) -> SimResponse:
        return problem(503, "Service Unavailable")

    def rate_limited_response(self, request: SimRequest) -> SimResponse:
        return problem(429, "Too Many Requests", headers={"Retry-After": str(self.faults.retry_after)})

    # --- requests ---------------------------------------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:
        if request.path.rstrip("/") == "/connect/token":
            return self._token(request)
        match = _API_PATH.match(request.path)
        if not match:
            return problem(404, "Not Found")
        module, parts = match.group("module"), match.group("rest").split("/")
        export = parts[0] == "export"
        resource = parts[1] if export and len(parts) > 1 else parts[0]
        spec = RESOURCES.get((module, resource))
        if request.method != "GET" and (spec is None or not spec.writable or export):
            # recorded before any check: the portal must never even try
            self.forbidden_writes.append(request)
        refused = self._authorise(request, match.group("tenant"))
        if refused is not None:
            return refused
        if request.method != "GET":
            return self._write(request, module, resource, parts, spec)
        if spec is None or (export and (not spec.export or len(parts) != 2)) or len(parts) > 2:
            return problem(404, "Not Found")
        if (module, resource) in self.denied:
            return problem(403, f"The application has no access to {module}/{resource}")  # [U] wording
        table = self.tables[(module, resource)]
        if export:
            return self._export(request, table, module, resource)
        if len(parts) == 2:
            return self._one(table, spec, parts[1])
        return self._list(request, table, spec)

    def _token(self, request: SimRequest) -> SimResponse:
        if request.method != "POST":
            return SimResponse.json(400, {"error": "invalid_request"})
        form = request.form()
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        header = request.header("Authorization") or ""
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return SimResponse.json(400, {"error": "invalid_client"})
        known = self.clients.get(client_id)
        if known is None or not secrets.compare_digest(known[0].encode(), secret.encode()):
            return SimResponse.json(400, {"error": "invalid_client"})
        if form.get("grant_type") != "client_credentials":
            return SimResponse.json(400, {"error": "unsupported_grant_type"})
        lifetime = self.token_lifetime(TOKEN_LIFETIME)
        value = "eyJ" + secrets.token_urlsafe(120)  # a long opaque bearer, JWT-sized
        self.tokens[value] = IssuedToken(client_id, known[1], self.clock() + timedelta(seconds=lifetime))
        self.token_grants += 1
        return SimResponse.json(200, {"access_token": value, "expires_in": lifetime, "token_type": "Bearer"},
                                {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authorise(self, request: SimRequest, tenant: str) -> SimResponse | None:
        app_key = request.header("ST-App-Key") or ""
        header = request.header("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        echo, said = None, ""
        if self.echo_credentials_in_errors:  # what a debugging proxy might do: quote what it was sent
            echo = {"appKey": app_key, "authorization": header}
            said = f" (received ST-App-Key {app_key} and Authorization {header})"
        if not app_key:
            return problem(401, MISSING_APP_KEY + said, data=echo)
        if app_key not in self.app_keys:
            return problem(401, BAD_APP_KEY + said, data=echo)
        issued = self.tokens.get(token)
        if issued is None or issued.expires_at <= self.clock():
            return problem(401, "Unauthorized" + said, data=echo,
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if issued.tenant != tenant:
            return problem(403, f"Tenant {tenant} is not accessible to this client")  # [U]
        return self._throttle(app_key, tenant)

    def _throttle(self, app_key: str, tenant: str) -> SimResponse | None:
        if not self.rate_limit_per_second:
            return None
        now = self.timer()
        window = self._windows.setdefault((app_key, tenant), deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.rate_limit_per_second:
            self.rate_limited += 1
            wait = max(1, int(window[0] + 1.0 - now + 0.999))
            return problem(429, "Too Many Requests", headers={"Retry-After": str(wait)})
        window.append(now)
        return None

    def _write(self, request: SimRequest, module: str, resource: str, parts: list[str],
               spec: Resource | None) -> SimResponse:
        if spec is None or not spec.writable or parts[0] == "export":
            return problem(403, f"{request.method} on {module}/{'/'.join(parts)} is refused: this simulated "
                                "tenant lets the portal write vendors only")
        table = self.tables[(module, resource)]
        try:
            payload = request.json()
        except ValueError:
            return problem(400, "One or more validation errors occurred.", {"body": ["The body is not JSON."]})
        if not isinstance(payload, dict):
            return problem(400, "One or more validation errors occurred.", {"body": ["Expected a JSON object."]})
        if request.method == "POST" and len(parts) == 1:
            if not str(payload.get("name") or "").strip():
                return problem(400, "One or more validation errors occurred.", {"Name": ["The Name field is required."]})
            new_id = (table.ids[-1] if table.ids else 0) + 1
            record = _vendor_from_request({}, payload, new_id, stamp(self.stamper.now()))
        elif request.method == "PATCH" and len(parts) == 2 and parts[1].isdigit():
            current = table.rows.get(int(parts[1]))
            if current is None:
                return problem(404, f"Vendor with id {parts[1]} not found")
            record = _vendor_from_request(current, payload, current["id"], current["createdOn"])
        else:
            return problem(405, "Method Not Allowed")
        self.vendor_writes.append(request)
        self._put(table, record, bool(record["active"]))
        self.maybe_drop()
        return SimResponse.json(200, {"id": record["id"]})

    def _one(self, table: Table, spec: Resource, raw_id: str) -> SimResponse:
        if not spec.one:
            return problem(404, "Not Found")
        record = table.rows.get(int(raw_id)) if raw_id.isdigit() else None
        if record is None:
            return problem(404, f"Record with id {raw_id} not found")
        return SimResponse(200, exact_dumps(record).encode("utf-8"), {"Content-Type": "application/json"})

    def _list(self, request: SimRequest, table: Table, spec: Resource) -> SimResponse:
        errors: dict[str, list[str]] = {}
        page = _int_param(request, "page", 1, 1, None, errors)
        size = _int_param(request, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, errors)
        since = _time_param(request, "modifiedOnOrAfter", errors)
        before = _time_param(request, "modifiedBefore", errors)
        active = (request.param("active") or ("True" if spec.hides_inactive else "Any")).capitalize()
        if active not in ("True", "Any", "False"):
            errors["active"] = [f"The value '{active}' is not valid."]
        ids = {int(v) for v in re.split(r"[,\s]+", request.param("ids") or request.param("id") or "") if v.isdigit()}
        if errors:
            return problem(400, "One or more validation errors occurred.", errors)
        if self.repeat_pages:
            page = 1
        selected = [rid for rid in table.ids
                    if (active == "Any" or table.active[rid] == (active == "True"))
                    and (not ids or rid in ids)
                    and (since is None or table.changed[rid] >= since)
                    and (before is None or table.changed[rid] < before)]
        start = (page - 1) * size
        data = [table.rows[rid] for rid in selected[start:start + size]]
        if spec.bare_list:
            return SimResponse(200, exact_dumps(data).encode("utf-8"), {"Content-Type": "application/json"})
        total = len(selected) if (request.param("includeTotal") or "").lower() == "true" else None
        body = {"page": page, "pageSize": size, "hasMore": self.repeat_pages or start + size < len(selected),
                "totalCount": total, "data": data}
        return SimResponse(200, exact_dumps(body).encode("utf-8"), {"Content-Type": "application/json"})

    def _export(self, request: SimRequest, table: Table, module: str, resource: str) -> SimResponse:
        raw = (request.param("from") or "").strip()
        position, since = 0, None
        if raw:
            decoded = self._read_token(raw, module, resource)
            if decoded is None:
                since = parse_time(raw)
                if since is None:
                    return problem(400, "One or more validation errors occurred.",
                                   {"from": [f"The value '{raw[:80]}' is neither a continuation token nor a date."]})
            else:
                position, since = decoded
        recent = (request.param("includeRecentChanges") or "").lower() == "true" and position > 0
        ids, more, position = table.feed_page(position, since, self.export_page_size, recent)
        data = [{**table.rows[rid], "active": table.active[rid]} for rid in ids]
        body = {"data": data, "hasMore": more, "continueFrom": self._token_for(module, resource, position, since)}
        return SimResponse(200, exact_dumps(body).encode("utf-8"), {"Content-Type": "application/json"})

    def _token_for(self, module: str, resource: str, position: int, since: datetime | None) -> str:
        inner = {"tenant": self.tenant_id, "feed": f"{module}/{resource}", "position": position,
                 "since": since.isoformat() if since else ""}
        return base64.urlsafe_b64encode(json.dumps(inner, separators=(",", ":")).encode()).decode().rstrip("=")

    def _read_token(self, raw: str, module: str, resource: str) -> tuple[int, datetime | None] | None:
        try:
            inner = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            if inner["feed"] != f"{module}/{resource}" or inner["tenant"] != self.tenant_id:
                return None
            return int(inner["position"]), parse_time(inner["since"]) if inner["since"] else None
        except (ValueError, TypeError, KeyError, binascii.Error):
            return None

    # --- webhooks -----------------------------------------------------------------------------
    def webhook_event(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None
                      ) -> dict[str, Any]:
        """A V2-style event, simulated [U]: ``{eventId, eventType, tenantId, createdOn, data}``."""
        tenant: Any = int(self.tenant_id) if self.tenant_id.isdigit() else self.tenant_id
        event = {"eventId": event_id or str(uuid.uuid4()), "eventType": event_type, "tenantId": tenant,
                 "createdOn": stamp(self.stamper.now()), "data": data}
        self.webhook_events.append(event)
        return event

    def deliver(self, url: str, key: str | None, encoding: str = "base64", header: str = SIGNATURE_HEADER,
                session: requests.Session | None = None, *, event: dict[str, Any] | None = None,
                body: bytes | None = None, signature: str | None = None, style: str = "spaced",
                delays: tuple[float, ...] | None = None, sleep: Callable[[float], None] | None = None,
                transport: Callable[[str, bytes, dict[str, str]], int] | None = None,
                timeout: float = 10.0) -> list[DeliveryAttempt]:
        """POST one event (default: the last one built) and retry after a non-2xx; the attempts.

        ``key`` None sends it unsigned; ``body`` sends exactly those bytes (a tampered or oversized
        body) and ``signature`` that header value (a forged one). Delivering the same event again
        is a replay. ``transport(url, body, headers) -> status`` replaces HTTP (e.g. Django's
        test client).
        """
        if event is None and body is None:
            if not self.webhook_events:
                raise ValueError("no webhook event to deliver: build one with webhook_event()")
            event = self.webhook_events[-1]
        raw = body if body is not None else encode_event(event or {}, style)
        headers = {"Content-Type": "application/json", "User-Agent": "ServiceTitan-Webhooks (simulated)"}
        if signature is not None:
            headers[header] = signature
        elif key:
            headers[header] = sign(raw, key, encoding)
        own_session = requests.Session() if transport is None and session is None else None
        send = transport or _http_transport(session or own_session or requests.Session(), timeout)
        pause = sleep or self.webhook_sleep
        attempts: list[DeliveryAttempt] = []
        try:
            for number, delay in enumerate((0.0, *(self.webhook_retry_delays if delays is None else delays)), 1):
                if delay:
                    pause(delay)
                try:
                    attempts.append(DeliveryAttempt(number, delay, send(url, raw, headers)))
                except requests.RequestException as exc:  # refused, reset, timed out: retried like a 5xx
                    attempts.append(DeliveryAttempt(number, delay, None, type(exc).__name__))
                if attempts[-1].ok:
                    break
        finally:
            if own_session is not None:
                own_session.close()
        self.deliveries.append((event, attempts))
        return attempts


def _http_transport(session: requests.Session, timeout: float) -> Callable[[str, bytes, dict[str, str]], int]:
    def send(url: str, raw: bytes, headers: dict[str, str]) -> int:
        return session.post(url, data=raw, headers=headers, timeout=timeout).status_code

    return send


def _int_param(request: SimRequest, name: str, default: int, low: int, high: int | None,
               errors: dict[str, list[str]]) -> int:
    raw = request.param(name)
    if raw in (None, ""):
        return default
    if not raw.lstrip("-").isdigit():
        errors[name] = [f"The value '{raw}' is not valid."]
        return default
    value = int(raw)
    if value < low or (high is not None and value > high):
        errors[name] = [f"The field {name} must be between {low} and {high}." if high else
                        f"The field {name} must be at least {low}."]
    return value


def _time_param(request: SimRequest, name: str, errors: dict[str, list[str]]) -> datetime | None:
    raw = request.param(name)
    if not raw:
        return None
    moment = parse_time(raw)
    if moment is None:
        errors[name] = [f"The value '{raw[:80]}' is not valid."]
    return moment


def _vendor_from_request(current: dict[str, Any], payload: dict[str, Any], vendor_id: int,
                         created_on: str) -> dict[str, Any]:
    """ST-SPEC's Create/UpdateVendorRequest (flat contact fields, ``taxRate``) → VendorResponse."""
    contact = dict(current.get("contactInfo") or {"firstName": None, "lastName": None, "phone": None,
                                                  "email": None, "fax": None})
    for name in contact:
        if name in payload:
            contact[name] = payload[name]
    record = {
        "id": vendor_id, "name": current.get("name"), "active": current.get("active", True),
        "isTruckReplenishment": current.get("isTruckReplenishment", False),
        "isMobileCreationRestricted": current.get("isMobileCreationRestricted", False),
        "memo": current.get("memo"), "deliveryOption": current.get("deliveryOption", "None"),
        "defaultTaxRate": current.get("defaultTaxRate", 0), "contactInfo": contact,
        "address": current.get("address"), "createdOn": created_on, "modifiedOn": current.get("modifiedOn"),
        "externalData": current.get("externalData", []),
    }
    for name in ("name", "active", "memo", "isTruckReplenishment", "address"):
        if name in payload:
            record[name] = payload[name]
    if "taxRate" in payload:
        record["defaultTaxRate"] = payload["taxRate"]
    if "restrictedMobileCreation" in payload:
        record["isMobileCreationRestricted"] = payload["restrictedMobileCreation"]
    return record
