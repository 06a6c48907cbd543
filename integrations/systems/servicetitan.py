"""ServiceTitan client: OAuth client credentials plus app key, paged lists, export feeds, vendors.

Facts followed (API_FACTS 6, 7 and 9): tokens from the auth host's ``/connect/token`` with the
client-credentials grant only, 900 seconds, no refresh token (renewed before expiry by the
TokenManager, and once on a 401); ``ST-App-Key`` on every API call (a credential: kept with the
secrets); paths ``/{module}/v2/tenant/{tenant}/{resource}``; lists paged by ``page``/``pageSize``
(at most 5000) until ``hasMore`` is false, ``totalCount`` never asked for nor trusted; the
inventory bills list answers a bare array (ST-SPEC) and its records have no ``modifiedOn``, so
bills are read through the export feed (``from`` = the last ``continueFrom``, which comes on the
last page too and is the stream's checkpoint); errors in RFC 7807 with field errors; 429 with
``Retry-After`` (the HTTP policy waits); at most 60 calls per second per app and tenant [3P],
kept by a :class:`Pacer`.

ServiceTitan invoices and inventory bills are never written: the only writes this client can
send are :meth:`ServiceTitanClient.create_vendor` and :meth:`ServiceTitanClient.update_vendor`.

Webhooks: :func:`verify_signature` checks HMAC-SHA256 of the raw body with the connection's
webhook key, base64 or hex, in constant time (header and encoding are not in ServiceTitan's docs
[U], hence the settings).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import requests

from integrations.systems.auth import BearerAuth, MemoryTokenStore, TokenManager, TokenStore, oauth2_fetcher, utcnow
from integrations.systems.errors import AuthError, DataError, SyncError, SystemicError, TransientError
from integrations.systems.http import (
    CallCounter,
    HttpClient,
    HttpPolicy,
    decode_json,
    parse_retry_after,
    unexpected_answer,
)
from integrations.systems.redaction import redact_text
from integrations.systems.schema import INT, MAP, TEXT, ConnectionFields, ConnectionSchema, Problems, Setting
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event
from integrations.systems.webhooks import Received

SYSTEM = "ServiceTitan"
# environment → (token URL, API base) [D: API_FACTS 6.1]
ENVIRONMENTS = {
    "production": ("https://auth.servicetitan.io/connect/token", "https://api.servicetitan.io"),
    "integration": ("https://auth-integration.servicetitan.io/connect/token",
                    "https://api-integration.servicetitan.io"),
}
APP_KEY_HEADER = "ST-App-Key"
MAX_PAGE_SIZE = 5000
DEFAULT_PAGE_SIZE = 500
DEFAULT_TIMEOUT = 120  # ServiceTitan gives up on a request after 100 s [D]
RATE_LIMIT_PER_SECOND = 60
MAX_PAGES = 100_000  # a server that never says "no more" must not keep a worker forever
SIGNATURE_HEADER = "X-ServiceTitan-Signature"
WEBHOOK_ENCODINGS = ("base64", "hex")
WEBHOOK_KEY_LENGTHS = (32, 64)  # [D: developer-next.servicetitan.io/docs/webhooks]
# Credentials of a ServiceTitan connection; all of them are secrets (never shown, never logged).
SECRETS = ("client_secret", "app_key", "webhook_key")
# Where a completed job's labor and material costs are read (ServiceTitan's job schema has no
# cost fields): custom fields of the job by name, configurable per connection.
DEFAULT_JOB_COST_FIELDS = {"labor": "laborCost", "material": "materialCost"}
# What the ServiceTitan → Sage X3 pair reads; the connection test probes each.
NEEDED_RESOURCES = (
    ("accounting", "export/inventory-bills", "inventory bills (export feed)"),
    ("accounting", "invoices", "invoices"),
    ("jpm", "jobs", "jobs"),
    ("jpm", "job-types", "job types"),
    ("settings", "business-units", "business units"),
    ("inventory", "vendors", "vendors"),
    ("inventory", "purchase-orders", "purchase orders"),
    ("accounting", "gl-accounts", "GL accounts"),
)
# Resources with a documented GET …/{id}; the others are read by id through their list (?ids=).
ONE_BY_PATH = frozenset({("jpm", "jobs"), ("inventory", "vendors"), ("inventory", "purchase-orders"),
                         ("jpm", "job-types"), ("settings", "business-units"), ("accounting", "gl-accounts")})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,99}$")
_HEX_SIGNATURE = re.compile(r"^[0-9A-Fa-f]{64}$")
_BASE64_SIGNATURE = re.compile(r"^[A-Za-z0-9+/]{43}=$")

SETTINGS = (
    Setting("tenant_id", TEXT, max_length=20,
            help="The ServiceTitan tenant id, a number (ServiceTitan shows it to the tenant's admin where "
                 "API access is granted). It can also be given as the connection's company."),
    Setting("environment", TEXT, default="production", choices=tuple(ENVIRONMENTS),
            help="production, or integration for ServiceTitan's integration (sandbox) environment; it picks "
                 "the default sign-in and API addresses."),
    Setting("page_size", INT, default=DEFAULT_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE,
            help="Records asked per page (ServiceTitan allows up to 5,000)."),
    Setting("timeout", INT, default=DEFAULT_TIMEOUT, minimum=5, maximum=600,
            help="Seconds to wait for one answer (ServiceTitan itself gives up after 100 seconds)."),
    Setting("rate_limit_per_second", INT, default=RATE_LIMIT_PER_SECOND, minimum=1, maximum=600,
            help="Calls per second this connection keeps under (ServiceTitan allows 60 per app and tenant)."),
    Setting("webhook_header", TEXT, default=SIGNATURE_HEADER, max_length=100,
            help="The request header that carries the webhook signature."),
    Setting("webhook_encoding", TEXT, default="base64", choices=WEBHOOK_ENCODINGS,
            help="How the webhook signature is written: base64 (the default) or hex."),
    Setting("job_cost_fields", MAP, max_length=80,
            help="Job custom fields holding labor and material cost, e.g. "
                 "{\"labor\": \"laborCost\", \"material\": \"materialCost\"} (the default)."),
)


def environment_of(spec_or_fields: ConnectionSpec | ConnectionFields) -> str:
    """The configured environment, else the one the API URL names, else production."""
    settings = spec_or_fields.settings if isinstance(spec_or_fields.settings, dict) else {}
    chosen = settings.get("environment")
    if chosen in ENVIRONMENTS:
        return str(chosen)
    host = urlsplit(spec_or_fields.url or "").hostname or ""
    return "integration" if host == urlsplit(ENVIRONMENTS["integration"][1]).hostname else "production"


def tenant_of(spec_or_fields: ConnectionSpec | ConnectionFields) -> str:
    settings = spec_or_fields.settings if isinstance(spec_or_fields.settings, dict) else {}
    return str(settings.get("tenant_id") or spec_or_fields.company or "").strip()


def webhook_key_problem(key: str) -> str:
    """Why a webhook key cannot be used ('' when it can): ServiceTitan takes 32 to 64 characters."""
    low, high = WEBHOOK_KEY_LENGTHS
    if not low <= len(key) <= high:
        return f"must be {low} to {high} characters long (got {len(key)}), as ServiceTitan requires"
    if any(ch.isspace() or ord(ch) < 32 for ch in key):
        return "must not contain spaces or control characters"
    return ""


def _checks(fields: ConnectionFields) -> Problems:
    found: Problems = {}
    settings = fields.settings if isinstance(fields.settings, dict) else {}
    tenant = tenant_of(fields)
    if not tenant:
        found.setdefault("settings", []).append("tenant_id: required: the ServiceTitan tenant id (a number)")
    elif not tenant.isdigit():
        found.setdefault("settings", []).append("tenant_id: must be the tenant's number, e.g. 1042817")
    elif settings.get("tenant_id") and fields.company and str(settings["tenant_id"]).strip() != fields.company:
        found.setdefault("company", []).append("differs from settings.tenant_id: give the tenant id once")
    host = urlsplit(fields.url or "").hostname or ""
    wanted = settings.get("environment")
    for name, (_, api) in ENVIRONMENTS.items():
        if wanted in ENVIRONMENTS and wanted != name and host == urlsplit(api).hostname:
            found.setdefault("url", []).append(f"is ServiceTitan's {name} API but environment is {wanted}")
    header = settings.get("webhook_header")
    if isinstance(header, str) and header and not _HEADER_NAME.match(header):
        found.setdefault("settings", []).append("webhook_header: must be a header name "
                                                "(letters, digits and dashes), e.g. X-ServiceTitan-Signature")
    secrets = fields.secrets or {}
    if not secrets.get("app_key"):
        found.setdefault("secrets", []).append("app_key: required: the app key (ak1.…) of the application "
                                               "in the ServiceTitan developer portal")
    if secrets.get("webhook_key") and (problem := webhook_key_problem(str(secrets["webhook_key"]))):
        found.setdefault("secrets", []).append(f"webhook_key: {problem}")
    return found


SCHEMA = ConnectionSchema(
    system="servicetitan",
    label=SYSTEM,
    auth_methods=("oauth2_client_credentials",),
    settings=SETTINGS,
    help="ServiceTitan's API for one tenant: jobs, invoices and inventory bills are read, vendors may be "
         "written. Webhooks from ServiceTitan are checked with the webhook key.",
    url_help="The API address: https://api.servicetitan.io (production) or https://api-integration.servicetitan.io "
             "(integration).",
    company_label="the ServiceTitan tenant id (a number)",
    company_key="tenant_id",
    key_help={
        "client_id": "The client id ServiceTitan issued for this tenant when the app was connected.",
        "client_secret": "The client secret issued with the client id.",
        "token_url": "Only to override the sign-in address chosen by the environment "
                     "(https://auth.servicetitan.io/connect/token or the integration one).",
        "app_key": "The app key (ak1.…) of the application, from the ServiceTitan developer portal; it is sent "
                   "on every call and kept secret.",
        "webhook_key": "32 to 64 characters. Enter the same key as the webhook's HMAC key in ServiceTitan, and "
                       "paste this connection's webhook address (shown on the connection page: "
                       "/webhooks/servicetitan/<tenant>/<connection>/) as the webhook's URL.",
    },
    extra_checks=_checks,
    extra_secrets=("app_key", "webhook_key"),
)


# --- errors -------------------------------------------------------------------------------------
def read_problem(response: requests.Response) -> tuple[str, dict[str, list[str]], str]:
    """``(title, field errors, traceId)`` of an RFC 7807 answer; empty parts when it is not one."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return "", {}, ""
    if not isinstance(body, dict):
        return "", {}, ""
    errors = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    fields = {str(k): [str(m) for m in (v if isinstance(v, list) else [v])] for k, v in errors.items()}
    return str(body.get("title") or ""), fields, str(body.get("traceId") or "")


def problem_message(title: str, errors: Mapping[str, list[str]]) -> str:
    """``title: field: message; field: message`` in plain words."""
    named = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
    return f"{title}: {named}" if title and named else title or named


class ProblemClassifier:
    """ServiceTitan's answers read into the portal's error classes, every text redacted."""

    def __init__(self, secrets: Callable[[], tuple[str, ...]]) -> None:
        self.secrets = secrets

    def safe(self, text: str) -> str:
        return redact_text(text, self.secrets())

    def __call__(self, response: requests.Response) -> SyncError:
        status = response.status_code
        oauth = _oauth_error(response)
        if oauth:
            guidance = ("the auth server does not know this client id and secret: check them; a ServiceTitan "
                        "admin of the tenant can issue new ones where the app was connected"
                        if oauth == "invalid_client" else "the auth server refused the request")
            # the token fetcher keeps only the detail: it names the OAuth error too
            return AuthError(f"ServiceTitan refused the sign-in ({oauth})", status=status,
                             detail=f"{oauth}: {guidance}", code=oauth)
        title, errors, trace = read_problem(response)
        message = self.safe(problem_message(title, errors))
        detail = f"traceId {trace}" if trace else self.safe(response.text[:300]) if not title else ""
        if status == 401:
            if "application key" in title.lower() or APP_KEY_HEADER.lower() in title.lower():
                return AuthError(f"ServiceTitan refused the app key ({APP_KEY_HEADER}): {message}", status=status,
                                 detail="the app key comes from the application in the ServiceTitan developer "
                                        "portal; its owner can copy it from there", code="app_key")
            return AuthError(f"ServiceTitan refused the access token: {message or 'Unauthorized'}", status=status,
                             detail=detail, code="token")
        if status == 403:
            return SystemicError(f"ServiceTitan denied access: {message or 'Forbidden'}", status=status,
                                 detail=detail, code="forbidden")
        if status == 429 or status >= 500:
            return TransientError(message or "ServiceTitan is busy", status=status, detail=detail,
                                  retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status == 404:
            return DataError(message or "Not found", status=status, detail=detail, code="not_found")
        return DataError(message or "ServiceTitan refused the request", status=status, detail=detail,
                         code="validation")


def _oauth_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("error"), str) and "title" not in body:
        return body["error"][:80]
    return ""


# --- pacing and auth ----------------------------------------------------------------------------
class Pacer:
    """At most ``rate`` calls in any ``period`` seconds; a call past it waits for its turn."""

    def __init__(self, rate: int, period: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = max(1, int(rate))
        self.period = period
        self.clock = clock
        self.sleep = sleep
        self.sent: deque[float] = deque()
        self.waited = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            self._forget(now)
            if len(self.sent) >= self.rate:
                delay = self.sent[0] + self.period - now
                if delay > 0:
                    self.sleep(delay)
                    self.waited += delay
                now = max(self.clock(), self.sent[0] + self.period)
                self._forget(now)
            self.sent.append(now)

    def _forget(self, now: float) -> None:
        while self.sent and self.sent[0] <= now - self.period:
            self.sent.popleft()


class ServiceTitanAuth:
    """Bearer token and ``ST-App-Key`` on every API call, each call first waiting for its turn."""

    def __init__(self, tokens: TokenManager, app_key: str, pacer: Pacer | None = None) -> None:
        self.bearer = BearerAuth(tokens)
        self.app_key = app_key
        self.pacer = pacer

    def apply(self, headers: dict[str, str]) -> None:
        if self.pacer is not None:
            self.pacer.wait()
        headers[APP_KEY_HEADER] = self.app_key
        self.bearer.apply(headers)

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        return self.bearer.on_unauthorized(headers)


# --- webhooks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookSettings:
    header: str
    encoding: str
    key: str


def webhook_settings(spec: ConnectionSpec) -> WebhookSettings:
    """Where a connection's webhooks carry their signature, how it is written, and the key."""
    return WebhookSettings(str(spec.setting("webhook_header", SIGNATURE_HEADER)),
                           str(spec.setting("webhook_encoding", "base64")), spec.secret("webhook_key"))


def verify_signature(raw_body: bytes, header_value: str | None, key: str, encoding: str = "base64") -> bool:
    """True when ``header_value`` is HMAC-SHA256(key, raw_body) in ``encoding``, compared in constant time.

    The raw bytes as received are what was signed: a body parsed and serialised again (same JSON,
    other bytes) does not verify. Surrounding whitespace is tolerated; an empty, malformed or
    wrong-length signature, or an empty key, never verifies.
    """
    if encoding not in WEBHOOK_ENCODINGS:
        raise ValueError(f"unknown signature encoding {encoding!r} (base64 or hex)")
    if not key or not header_value or not isinstance(raw_body, bytes | bytearray):
        return False
    value = header_value.strip()
    if encoding == "hex":
        if not _HEX_SIGNATURE.match(value):
            return False
        given = bytes.fromhex(value)
    else:
        if not _BASE64_SIGNATURE.match(value):
            return False
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
    expected = hmac.new(key.encode("utf-8"), bytes(raw_body), hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


# --- values -------------------------------------------------------------------------------------
def amount(value: Any) -> Decimal | None:
    """An amount as ServiceTitan sends it (a string like ``"331.20"`` or a number) → Decimal."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def rfc3339(moment: datetime | str) -> str:
    """A filter value in RFC 3339 UTC (``2026-01-05T08:00:00Z``); text passes through unchanged."""
    if isinstance(moment, str):
        return moment
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def job_cost_fields(settings: dict[str, Any]) -> dict[str, str]:
    """The fields a job's labor and material costs are read from, with a connection's settings."""
    return {**DEFAULT_JOB_COST_FIELDS, **((settings or {}).get("job_cost_fields") or {})}


# --- the client ---------------------------------------------------------------------------------
class ServiceTitanClient:
    """One ServiceTitan tenant as one connection sees it. Reads everything, writes vendors only."""

    def __init__(self, spec: ConnectionSpec, http: HttpClient, tokens: TokenManager, *, token_url: str,
                 on_event: EventSink = ignore_event) -> None:
        self.spec = spec
        self.http = http
        self.tokens = tokens
        self.token_url = token_url
        self.tenant = tenant_of(spec)
        self.page_size = min(MAX_PAGE_SIZE, int(spec.setting("page_size", DEFAULT_PAGE_SIZE)))
        self.max_pages = MAX_PAGES
        self.on_event = on_event
        self.webhook = webhook_settings(spec)

    def close(self) -> None:
        """Release the HTTP connections (the client may not be used afterwards)."""
        self.http.close()

    def resource_path(self, module: str, resource: str, record_id: int | str | None = None) -> str:
        path = f"/{module}/v2/tenant/{self.tenant}/{resource.strip('/')}"
        return f"{path}/{record_id}" if record_id is not None else path

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return decode_json(self.http.request("GET", path, params=params), SYSTEM, parse_float=Decimal)

    # --- reads --------------------------------------------------------------------------------
    def iter_list(self, module: str, resource: str, modified_since: datetime | str | None = None,
                  params: dict[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every page of a list, in ServiceTitan's order, until ``hasMore`` is false.

        ``modified_since`` becomes ``modifiedOnOrAfter``. A page that repeats the previous one
        stops the read with a transient error instead of looping forever.
        """
        path = self.resource_path(module, resource)
        previous: tuple[Any, ...] | None = None
        for page in range(1, self.max_pages + 1):
            query = {**(params or {}), "page": page, "pageSize": self.page_size}
            if modified_since:
                query["modifiedOnOrAfter"] = rfc3339(modified_since)
            body = self._get(path, query)
            if isinstance(body, list):  # a bare array (the inventory bills list): full page = maybe more
                records, more = body, len(body) >= self.page_size
            elif isinstance(body, dict) and isinstance(body.get("data"), list):
                records, more = body["data"], body.get("hasMore") is True
            else:
                raise TransientError(f"{SYSTEM} answered {module}/{resource} without a page of records")
            ids = tuple(r.get("id") for r in records if isinstance(r, dict))
            if records and ids == previous:
                raise TransientError(f"{SYSTEM} answered page {page} of {module}/{resource} with the same records "
                                     f"as page {page - 1}; reading stopped instead of looping", code="repeated_page")
            if records:
                yield records
            if not more or not records:
                return
            previous = ids
        raise TransientError(f"{SYSTEM} still had more {module}/{resource} after {self.max_pages:,} pages",
                             code="too_many_pages")

    def iter_export(self, module: str, resource: str, token: str = "", *, include_recent_changes: bool = False
                    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """``(records, continueFrom)`` per page of an export feed, from ``token`` (a checkpoint or a date).

        The last page's ``continueFrom`` is yielded too: store it, the next run starts there.
        Records come active and inactive (``active`` false: voided or deleted) and, with
        ``include_recent_changes``, possibly more than once.
        """
        path = self.resource_path(module, f"export/{resource}")
        for _ in range(self.max_pages):
            query: dict[str, Any] = {"from": token} if token else {}
            if include_recent_changes:
                query["includeRecentChanges"] = "true"
            body = self._get(path, query)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise TransientError(f"{SYSTEM} answered the {module}/{resource} export without a page of records")
            more = body.get("hasMore") is True
            next_token = body.get("continueFrom")
            if not isinstance(next_token, str) or not next_token:
                if more:
                    raise TransientError(f"{SYSTEM} said more {resource} follow but gave no continueFrom")
                next_token = token  # keep the checkpoint we had
            yield body["data"], next_token
            if not more:
                return
            if next_token == token:
                raise TransientError(f"{SYSTEM} answered the {resource} export with the same continueFrom again; "
                                     "reading stopped instead of looping", code="repeated_page")
            token = next_token
        raise TransientError(f"{SYSTEM} still had more {resource} after {self.max_pages:,} export pages",
                             code="too_many_pages")

    def get(self, module: str, resource: str, record_id: int | str) -> dict[str, Any] | None:
        """One record by id, ``None`` when ServiceTitan has none (inactive records included)."""
        if (module, resource) in ONE_BY_PATH:
            try:
                body = self._get(self.resource_path(module, resource, record_id))
            except DataError as exc:
                if exc.status == 404:
                    return None
                raise
            return body if isinstance(body, dict) else None
        body = self._get(self.resource_path(module, resource), {"ids": str(record_id), "active": "Any",
                                                                 "page": 1, "pageSize": 1})
        records = body if isinstance(body, list) else body.get("data") if isinstance(body, dict) else None
        found = [r for r in records or [] if isinstance(r, dict) and str(r.get("id")) == str(record_id)]
        return found[0] if found else None

    # --- the only writes: vendors (master data) -------------------------------------------------
    def create_vendor(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Create a vendor; ServiceTitan answers ``{"id": …}``. A lost answer is ambiguous: look the
        vendor up by name before creating it again."""
        return self._vendor_write("POST", self.resource_path("inventory", "vendors"), payload, idempotent=False)

    def update_vendor(self, vendor_id: int | str, payload: dict[str, Any]) -> dict[str, Any]:
        """Update a vendor (the same PATCH sent twice leaves the same vendor, so it may be resent)."""
        return self._vendor_write("PATCH", self.resource_path("inventory", "vendors", vendor_id), payload,
                                  idempotent=True)

    def _vendor_write(self, method: str, path: str, payload: dict[str, Any], idempotent: bool) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise DataError("A vendor is written from an object of fields")
        response = self.http.request(method, path, json=payload, idempotent=idempotent,
                                     headers={"Content-Type": "application/json"})
        body = decode_json(response, SYSTEM)
        if not isinstance(body, dict) or "id" not in body:
            raise unexpected_answer(response, SYSTEM, "no vendor id")
        return body

    # --- connection test ----------------------------------------------------------------------
    def check(self) -> list[dict[str, Any]]:
        """Token, app key, each resource the pair reads and the webhook key, as report lines."""
        host = urlsplit(self.token_url).netloc
        try:
            self.tokens.token()
        except SyncError as exc:
            return [{"check": "token", "ok": False,
                     "message": f"No access token from {host}: {exc}. Check the client id and secret (and the "
                                "environment); a ServiceTitan admin of the tenant can issue new ones."}]
        lines: list[dict[str, Any]] = [{"check": "token", "ok": True, "message": f"Got an access token from {host}"}]
        key_accepted = False
        for module, resource, label in NEEDED_RESOURCES:
            line = self._probe(module, resource, label)
            code = line.pop("code", "")
            if code == "app_key":
                lines.append({"check": "app_key", "ok": False, "message": line["message"]})
                break
            if not key_accepted and code != "token":  # any other answer means the app key was taken
                key_accepted = True
                lines.append({"check": "app_key", "ok": True, "message": f"{SYSTEM} accepted the app key"})
            lines.append(line)
            if code == "token":
                break
        lines.append(self._check_webhook_key())
        return lines

    def _probe(self, module: str, resource: str, label: str) -> dict[str, Any]:
        name = f"resource:{module}/{resource}"
        params: dict[str, Any] = {"page": 1, "pageSize": 1}
        if resource.startswith("export/"):  # start the feed today: one small page
            params = {"from": datetime.now(UTC).date().isoformat()}
        try:
            self._get(self.resource_path(module, resource), params)
        except AuthError as exc:
            return {"check": name, "ok": False, "code": exc.code, "message": f"Cannot read {label}: {exc}"}
        except SyncError as exc:
            if exc.code == "forbidden":
                advice = (f"The app may not read {label}: its developer must add read access to {module}/"
                          f"{resource.removeprefix('export/')} in the ServiceTitan developer portal, and a tenant "
                          "admin must approve it")
            elif exc.status == 404:
                advice = f"The {label} are not available on this tenant's API ({module}/{resource})"
            else:
                advice = f"Cannot read {label} now"
            return {"check": name, "ok": False, "code": exc.code, "message": f"{advice}: {exc}"}
        return {"check": name, "ok": True, "message": f"Read {label} ({module}/{resource}) of tenant {self.tenant}"}

    def _check_webhook_key(self) -> dict[str, Any]:
        key = self.webhook.key
        if not key:
            return {"check": "webhook_key", "ok": False,
                    "message": "No webhook key: webhooks will be refused until one (32-64 characters) is set here "
                               "and as the webhook's HMAC key in ServiceTitan; polling still works"}
        problem = webhook_key_problem(key)
        return {"check": "webhook_key", "ok": not problem,
                "message": f"Webhook key {problem}" if problem else
                f"Webhook key set; signatures expected in {self.webhook.header} ({self.webhook.encoding})"}


def build_client(spec: ConnectionSpec, store: TokenStore | None = None, counter: CallCounter | None = None,
                 policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
                 session: requests.Session | None = None, *, clock: Callable[[], datetime] = utcnow,
                 pacer: Pacer | None = None) -> ServiceTitanClient:
    env = environment_of(spec)
    token_url = str(spec.setting("token_url") or ENVIRONMENTS[env][0])
    base = (spec.url or ENVIRONMENTS[env][1]).rstrip("/")
    policy = replace(policy or HttpPolicy(), timeout=float(spec.setting("timeout", DEFAULT_TIMEOUT)))
    counter = counter or CallCounter()
    holder: list[TokenManager] = []

    def secrets() -> tuple[str, ...]:
        current = holder[0].store.load() if holder else None
        return (*spec.secret_values(), *((current.access_token,) if current and current.access_token else ()))

    classify = ProblemClassifier(secrets)
    token_http = HttpClient(token_url, policy=policy, counter=counter, session=session, error_classifier=classify,
                            secrets=spec.secret_values(), on_event=on_event)
    fetch = oauth2_fetcher(token_http, token_url, client_id=str(spec.setting("client_id")),
                           client_secret=spec.secret("client_secret"), grant="client_credentials", clock=clock)
    tokens = TokenManager(fetch, store or MemoryTokenStore(), clock=clock)
    holder.append(tokens)
    rate = int(spec.setting("rate_limit_per_second", RATE_LIMIT_PER_SECOND))
    # a twentieth of a second to spare: the server counts arrivals, which network jitter bunches up
    auth = ServiceTitanAuth(tokens, spec.secret("app_key"), pacer or Pacer(rate, period=1.05))
    http = HttpClient(base, auth=auth, policy=policy, counter=counter, session=session, error_classifier=classify,
                      default_headers={"Accept": "application/json"}, secrets=spec.secret_values(),
                      on_event=on_event)
    return ServiceTitanClient(spec, http, tokens, token_url=token_url, on_event=on_event)


def receive_webhook(spec: ConnectionSpec, body: bytes, headers: Any) -> Received:
    """A pushed request as the connection's webhook settings see it: signed with its key or not.

    ``headers`` is case-insensitive (Django's ``request.headers``). The event's shape is [U]
    (API_FACTS 6.3): ``{"eventId", "eventType", "tenantId", "createdOn", "data"}``.
    """
    settings = webhook_settings(spec)
    if not settings.key:
        return Received(False, "this connection has no webhook key: set it, and the same key in ServiceTitan")
    if not verify_signature(body, headers.get(settings.header), settings.key, settings.encoding):
        given = headers.get(settings.header)
        return Received(False, f"the {settings.header} header is missing" if not given else
                        f"the {settings.header} signature does not match the body (another key, or a changed body)")
    try:
        event = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Received(True, error="the signed body is not JSON", event_id=_body_id(body))
    if not isinstance(event, dict):
        return Received(True, error="the signed body is not a JSON object", event_id=_body_id(body))
    event_id = str(event.get("eventId") or event.get("id") or "")[:200] or _body_id(body)
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    return Received(True, event_id=event_id, event_type=str(event.get("eventType") or "")[:100],
                    payload={**event, "data": data})


def _body_id(body: bytes) -> str:
    """An id for an event that names none: the same body is the same event."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
