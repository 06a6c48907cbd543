"""The one HTTP policy of every vendor client.

Timeouts, bounded exponential backoff with jitter that honours ``Retry-After`` (seconds or an
HTTP date), refresh-once-on-401, error classification, call counting and redaction of secrets
from anything we log. Clients build on :class:`HttpClient` and only add their vendor's quirks
through an ``error_classifier``.
"""

from __future__ import annotations

import functools
import json as _json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from integrations.systems.errors import (
    AuthError,
    BudgetExhausted,
    DataError,
    SessionExpired,
    SyncError,
    SystemicError,
    TransientError,
)
from integrations.systems.redaction import redact_text
from integrations.systems.spec import EventSink, ignore_event

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def _ca_path_kind(path: str) -> str:
    """``"dir"``, ``"file"`` or ``""`` (missing) for a CA path, asked of the file system once."""
    return "dir" if os.path.isdir(path) else "file" if os.path.exists(path) else ""


class _CaPathOnce(requests.adapters.HTTPAdapter):
    """``requests``' adapter, but a CA bundle named by path (``REQUESTS_CA_BUNDLE``) is looked at
    once per path instead of two or three ``stat`` calls per request. Each of those lets go of the
    interpreter lock, and with several write threads a thread then queues to take it back: in a
    profile of four documents in flight, a sixth of the sync's samples waited there."""

    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest, verify: Any,
                                             cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(verify, str) or not _ca_path_kind(verify):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
        pool_kwargs["ca_cert_dir" if _ca_path_kind(verify) == "dir" else "ca_certs"] = verify
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        if cert or not isinstance(verify, str) or not _ca_path_kind(verify) or not url.lower().startswith("https"):
            super().cert_verify(conn, url, verify, cert)  # a missing path is refused there, as ever
            return
        conn.cert_reqs = "CERT_REQUIRED"
        if _ca_path_kind(verify) == "dir":
            conn.ca_cert_dir = verify
        else:
            conn.ca_certs = verify


def new_session() -> requests.Session:
    """A session for a vendor client: ``requests``' own, with the CA path looked at once."""
    session = requests.Session()
    adapter = _CaPathOnce()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which the server certainly did not process the request: safe to resend a POST.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
# An answer cut short or garbled on the wire: like a dropped connection (the request may have been processed).
UNREADABLE = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)


@dataclass
class HttpPolicy:
    """How hard to try. One instance per client; the defaults come from settings."""

    timeout: float = 30.0
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    # A Retry-After longer than this is not slept through: the call fails as transient and the
    # record is retried on the next run instead of holding a worker for an hour.
    max_retry_after: float = 120.0
    jitter: float = 0.2
    sleep: Callable[[float], None] = time.sleep

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        delay *= 1 + random.uniform(0, self.jitter)  # noqa: S311 - jitter, not crypto
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


@dataclass
class CallCounter:
    """Counts one connection's HTTP calls in a sync cycle, and holds its call budget.

    Every client of the connection in the cycle (its token endpoint included) shares one
    counter; the other side of the integration has its own, so ServiceNow writes never spend
    Sage 300's budget. ``budget`` 0 means no limit.
    """

    calls: int = 0
    budget: int = 0
    label: str = ""
    sleeps: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spend(self, essential: bool = False) -> None:
        """Count one call about to be made, or refuse it when the budget is spent (unless it is
        ``essential``: ending a session that holds a licence seat must go out even then)."""
        with self._lock:
            if self.budget and self.calls >= self.budget and not essential:
                raise BudgetExhausted(f"{self.label or 'This connection'} used its budget of {self.budget:,} "
                                      "calls for this cycle; the rest continues in the next one")
            self.calls += 1

    @property
    def exhausted(self) -> bool:
        return bool(self.budget) and self.calls >= self.budget


class Auth(Protocol):
    """How a client authenticates each request."""

    def apply(self, headers: dict[str, str]) -> None: ...

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        """Called on a 401; return True when credentials were refreshed and one retry is due."""
        ...


class NoAuth:
    def apply(self, headers: dict[str, str]) -> None:
        return None

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        return False


class BasicAuth:
    def __init__(self, username: str, password: str) -> None:
        self._auth = requests.auth._basic_auth_str(username, password)

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = self._auth

    def on_unauthorized(self, headers: dict[str, str]) -> bool:
        return False


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def default_classifier(response: requests.Response) -> SyncError:
    """Map an HTTP error status to a classified error; vendors refine this."""
    status = response.status_code
    detail = redact_text(response.text[:500]) if response.text else ""
    if status == 401:
        return AuthError("Credentials were refused", status=status, detail=detail)
    if status == 403:
        return SystemicError("Permission denied", status=status, detail=detail)
    if status in RETRY_STATUSES or status >= 500:
        return TransientError("Temporary failure", status=status, detail=detail,
                              retry_after=parse_retry_after(response.headers.get("Retry-After")))
    return DataError("Request rejected", status=status, detail=detail)


Classifier = Callable[[requests.Response], SyncError | None]


def unexpected_answer(response: requests.Response, system: str, what: str) -> TransientError:
    """A 2xx whose body is not what the vendor documents (not JSON, or JSON of another shape).

    Worth another try later; for a write it is ambiguous (the vendor may have done it before
    answering oddly), so the engine looks the row up before writing it again.
    """
    method = (response.request.method or "").upper() if response.request is not None else "GET"
    return TransientError(f"{system} answered with {what}", status=response.status_code,
                          detail=redact_text(response.text[:200]), ambiguous=method not in IDEMPOTENT_METHODS)


def exact_json(value: Any) -> bytes:
    """``value`` as UTF-8 JSON in which ``Decimal`` amounts are exact number literals.

    ``json.dumps`` cannot write a Decimal as a number, and a float would round it: ``12.10``
    stays ``12.10``. Dates and date-times are written in ISO 8601.
    """
    return _exact(value).encode("utf-8")


def _exact(value: Any) -> str:
    # the json module's own C string encoder (what ``json.dumps(..., ensure_ascii=False)`` uses),
    # called directly: a ``json.dumps`` per value was most of a document's encoding time
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not an amount")
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{_quote(str(k))}:{_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)  # an IntEnum as its number, as json writes it
    if isinstance(value, float):
        raise TypeError("float amount: parse amounts to Decimal")
    if isinstance(value, date):  # datetime included
        return _quote(value.isoformat())
    raise TypeError(f"{type(value).__name__} is not JSON")


_quote = _json.encoder.encode_basestring  # the C version where the interpreter has it


def decode_json(response: requests.Response, system: str, **options: Any) -> Any:
    """The body as JSON, or a classified error: a 2xx that is not JSON is never a crash.

    A ServiceNow instance that is hibernating or in maintenance answers 200 with an HTML page;
    a proxy may answer with its own page. Both are worth another try later. ``options`` go to
    ``json.loads`` (e.g. ``parse_float=Decimal``).
    """
    try:
        return response.json(**options)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's depth
        kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        raise unexpected_answer(response, system, f"a page that is not JSON ({kind}); the system may be "
                                "asleep, in maintenance or behind a proxy that answered for it") from None


class HttpClient:
    """A ``requests.Session`` wrapped in the portal's policy.

    ``error_classifier`` may return a more precise error for a response (or ``None`` to fall
    back to :func:`default_classifier`). ``secrets`` are masked verbatim in logged text.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        policy: HttpPolicy | None = None,
        counter: CallCounter | None = None,
        session: requests.Session | None = None,
        error_classifier: Classifier | None = None,
        body_classifier: Classifier | None = None,
        default_headers: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        on_event: EventSink = ignore_event,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth or NoAuth()
        self.policy = policy or HttpPolicy()
        self.counter = counter or CallCounter()
        self.session = session or new_session()
        # The environment's proxy and CA settings, read once per host instead of on every call
        # (``requests`` re-reads every environment variable per request: a millisecond each, the
        # largest share of a small call's cost). ``.netrc`` is never consulted: credentials come
        # from the connection alone.
        self.session.trust_env = False
        self._proxies: dict[str, dict[str, str]] = {}
        self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
        self.error_classifier = error_classifier
        # A vendor that answers errors with HTTP 200 (Intacct's <errormessage>, SYSPRO's "ERROR"
        # text) reads its bodies here; a SessionExpired answer signs in again once and retries.
        self.body_classifier = body_classifier
        self.default_headers = default_headers or {}
        self.secrets = secrets
        self.on_event = on_event

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The proxies the environment names for ``url``'s host (none when ``no_proxy`` covers it)."""
        try:
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            found = self._proxies.get(origin)
            if found is None:
                found = self._proxies[origin] = dict(requests.utils.get_environ_proxies(origin))
        except ValueError:  # not a URL (a bad link in an answer): requests refuses it, classified below
            return {}
        return found

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def request(
        self,
        method: str,
        path_or_url: str | Callable[[], str],
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        ok_statuses: tuple[int, ...] = (),
        essential: bool = False,
    ) -> requests.Response:
        """Send one logical request, retrying what may be retried; raise a classified error.

        ``idempotent`` defaults from the method. A non-idempotent request is resent only when
        the server certainly did not process it (429, 503, connection refused); otherwise the
        error is raised with ``ambiguous=True`` so the caller can look the row up before
        writing again.

        A URL or body that carries the session (Intacct's session id inside the XML, its session's
        endpoint) is given as a callable: it is built again for every attempt, after ``auth``
        has applied (or renewed) the session.

        An ``essential`` request (a log-off that frees a licence seat) is sent even when the call
        budget is spent; it is still counted.
        """
        method = method.upper()
        url = self.url(path_or_url() if callable(path_or_url) else path_or_url)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        attempt = 0
        refreshed = False
        while True:
            sent_headers = {**self.default_headers, **(headers or {})}
            self.counter.spend(essential)  # before anything is sent: a spent budget sends nothing
            self.auth.apply(sent_headers)
            if callable(path_or_url):
                url = self.url(path_or_url())
            try:
                response = self.session.request(
                    method, url, params=params, json=json, data=data() if callable(data) else data,
                    headers=sent_headers, timeout=self.policy.timeout, proxies=self._proxies_for(url),
                    verify=self._verify,
                )
            except (requests.ConnectionError, requests.Timeout, *UNREADABLE) as exc:
                not_sent = isinstance(exc, requests.ConnectTimeout) or "refused" in str(exc).lower()
                error = TransientError(
                    f"{method} {self._safe(url)} failed: {type(exc).__name__}",
                    detail=self._safe(str(exc))[:300],
                    ambiguous=not (idempotent or not_sent),
                )
                if (idempotent or not_sent) and attempt < self.policy.max_retries:
                    self._wait(attempt, None, error)
                    attempt += 1
                    continue
                raise error from None
            except requests.RequestException as exc:  # an unusable URL (a bad link in an answer) or redirect loop
                raise SystemicError(f"{method} {self._safe(url)} cannot be sent: {type(exc).__name__}",
                                    detail=self._safe(str(exc))[:300]) from None
            status = response.status_code
            if status == 401 and not refreshed and self.auth.on_unauthorized(sent_headers):
                refreshed = True
                self.on_event("connection.reauthenticated",
                              {"method": method, "url": self._safe(url), "reason": "HTTP 401, token refreshed once"})
                continue
            if status < 400 or status in ok_statuses:
                error = self.body_classifier(response) if self.body_classifier else None
                if error is None:
                    return response
                if isinstance(error, SessionExpired):
                    if not refreshed and self.auth.on_unauthorized(sent_headers):
                        refreshed = True
                        self.on_event("connection.reauthenticated", {"method": method, "url": self._safe(url),
                                                                     "reason": f"session ended, signed in again: {error}"})
                        continue
                    # Refused again right after a new sign-in: the credentials or the account, not
                    # the session's age. A person must look; retrying would only repeat it.
                    raise AuthError(f"{error}; refused again right after signing in again", status=status,
                                    detail=error.detail)
            else:
                error = (self.error_classifier and self.error_classifier(response)) or default_classifier(response)
            if isinstance(error, TransientError):
                # ``not_processed``: the answer says nothing ran (Intacct's request-level failures)
                retryable = idempotent or status in NOT_PROCESSED_STATUSES or getattr(error, "not_processed", False)
                if not retryable:
                    error.ambiguous = True
                too_long = error.retry_after is not None and error.retry_after > self.policy.max_retry_after
                if retryable and not too_long and attempt < self.policy.max_retries:
                    self._wait(attempt, error.retry_after, error)
                    attempt += 1
                    continue
            raise error


    def close(self) -> None:
        """Release the pooled connections (the client may not be used afterwards)."""
        self.session.close()

    def _wait(self, attempt: int, retry_after: float | None, error: SyncError) -> None:
        delay = self.policy.backoff(attempt, retry_after)
        self.counter.sleeps.append(delay)
        logger.info("retrying in %.2fs after %s", delay, error)
        self.on_event("http.backoff", {"delay_seconds": round(delay, 3), "status": error.status,
                                       "retry_after": error.retry_after, "error": str(error)[:300]})
        self.policy.sleep(delay)

    def _safe(self, text: str) -> str:
        return redact_text(text, self.secrets)
