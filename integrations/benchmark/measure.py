"""Measuring a benchmark process: peak memory, HTTP calls by kind. No Django in here."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter

# SYSPRO's e.net Logon and Logoff open and end a session (a licence seat): sign-in calls, not reads.
AUTH_PATHS = ("/oauth_token.do", "/token", "/v1/token", "/Rest/Logon", "/Rest/Logoff")
INTACCT_GATEWAY = ".phtml"  # /ia/xml/xmlgw.phtml
_INTACCT_WRITES = (b"<create>", b"<update>", b"<delete>", b"<create ", b"<update ", b"<delete ")
SERVICENOW_BATCH = "/api/now/v1/batch"
_BATCH_WRITE = re.compile(rb'"method"\s*:\s*"(?:POST|PATCH|PUT|DELETE)"')


def _intacct_kind(body: bytes | str | None) -> str:
    data = body.encode("utf-8") if isinstance(body, str) else body or b""
    if b"<getAPISession" in data:
        return "auth"
    return "write" if any(tag in data for tag in _INTACCT_WRITES) else "read"


def _status_kib(name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> None:
    """Start measuring the peak from here (Linux: ``clear_refs`` 5 resets VmHWM to the current RSS)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")


def machine_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine since boot (``/proc/stat``), or None.

    Two readings give the share of the machine's cores that was busy in between: whether a run
    waited on its calls or on the CPU.
    """
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(n) for n in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The machine's CPU busy share between two :func:`machine_cpu_ticks` readings, in percent."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB (VmHWM; ``ru_maxrss`` where /proc is missing)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / 1024, 1)


@dataclass
class HttpTally:
    """Every request that goes on the wire, by kind: auth (token endpoints), read (GET), write.
    A ServiceNow Batch API call reads when its items are all GETs.

    Sage Intacct takes every call as a POST to its XML gateway, so there the kind comes from the
    functions in the body: ``getAPISession`` signs in, ``create``/``update``/``delete`` write,
    anything else (readByQuery, readMore, read) reads.
    """

    counts: dict[str, int] = field(default_factory=lambda: {"read": 0, "write": 0, "auth": 0})
    # with ``trace``: every call as "start duration kind METHOD path", seconds since the tally
    # began (no query string: some vendors put sessions there); gaps show where no call was out
    trace: list[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _began: float = field(default_factory=time.perf_counter, repr=False)

    def add(self, method: str, url: str, body: bytes | str | None = None, *, started: float | None = None,
            seconds: float | None = None) -> None:
        path = urlsplit(url).path.rstrip("/")
        if path.endswith(INTACCT_GATEWAY):
            kind = _intacct_kind(body)
        elif path.endswith(SERVICENOW_BATCH):  # a Batch API call of GET items only reads
            data = body.encode("utf-8") if isinstance(body, str) else body or b""
            kind = "write" if _BATCH_WRITE.search(data) else "read"
        else:
            kind = "auth" if path.endswith(AUTH_PATHS) else "read" if method in ("GET", "HEAD") else "write"
        with self._lock:
            self.counts[kind] += 1
            if self.trace is not None:
                at = (started or time.perf_counter()) - self._began
                self.trace.append(f"{at:.3f} {seconds or 0:.3f} {kind} {method} {path}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        return {**self.counts, "total": self.total}

    def reset(self) -> None:
        with self._lock:
            self.counts = {"read": 0, "write": 0, "auth": 0}


@contextlib.contextmanager
def tally_http() -> Iterator[HttpTally]:
    """Count what every ``requests`` session of this process sends, at the transport."""
    tally = HttpTally()
    original = HTTPAdapter.send

    def send(self: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
        if tally.trace is None:
            tally.add(request.method or "GET", request.url or "", request.body)
            return original(self, request, *args, **kwargs)
        started = time.perf_counter()
        try:
            return original(self, request, *args, **kwargs)
        finally:
            tally.add(request.method or "GET", request.url or "", request.body, started=started,
                      seconds=time.perf_counter() - started)

    HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield tally
    finally:
        HTTPAdapter.send = original  # type: ignore[method-assign]
