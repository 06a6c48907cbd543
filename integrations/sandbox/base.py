"""The common frame of every simulator: requests in, responses out, faults on demand.

A simulator is plain Python: it receives a :class:`SimRequest` and returns a
:class:`SimResponse`. Two adapters serve the same simulator object: in-process through
``responses`` callbacks (:func:`integrations.sandbox.inprocess.mount`) for tests, and over real
HTTP on loopback (:mod:`integrations.sandbox.server`) for the demo, browser tests and
benchmarks. Nothing here imports the rest of the project: the sandbox is the outside world.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


class DropResponse(Exception):
    """Raised by a simulator after it committed a write: the client must see a dead connection."""


@dataclass
class SimRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}


@dataclass
class SimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> SimResponse:
        merged = {"Content-Type": "application/json"}
        merged.update(headers or {})
        return cls(status, json.dumps(payload).encode("utf-8"), merged)

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain", headers: dict[str, str] | None = None) -> SimResponse:
        merged = {"Content-Type": content_type}
        merged.update(headers or {})
        return cls(status, text.encode("utf-8"), merged)


@dataclass
class Faults:
    """What goes wrong, and how often. All rates are probabilities in [0, 1].

    - ``error_rate``: a transient failure (HTTP 503, or the simulator's own transient shape)
      returned *before* the request is processed.
    - ``burst_429_rate``: chance that a request starts a burst of ``burst_429_length`` 429
      responses carrying ``Retry-After: retry_after`` (seconds).
    - ``drop_rate``: chance that a *write* is committed and then the connection is dropped
      without a response ("commit then drop").
    - ``item_drop_rate``: in a batch call (ServiceNow's Batch API), the chance, per write item
      that committed, that the acknowledgement is lost: the connection is dropped without a
      response. ``item_drop_mode`` says when: ``"after_batch"`` (default) finishes the whole
      batch first, as a server does when the client stopped waiting; ``"mid_batch"`` drops it
      right after that item, so the items after it never ran (a batch cut short).
    - ``item_error_rate``: in a batch call, the chance per item that it is answered with the
      system's transient error (HTTP 503) without being run, while the other items are.
    - ``latency``: seconds added to every response.
    - ``token_lifetime``: when set, access tokens/sessions issued now live this many seconds
      instead of the system's default.
    """

    error_rate: float = 0.0
    burst_429_rate: float = 0.0
    burst_429_length: int = 3
    retry_after: int = 1
    drop_rate: float = 0.0
    item_drop_rate: float = 0.0
    item_drop_mode: str = "after_batch"
    item_error_rate: float = 0.0
    latency: float = 0.0
    token_lifetime: int | None = None
    seed: int = 7


class Simulator:
    """Base class: fault injection, a lock around state, a request log for assertions.

    Subclasses implement :meth:`dispatch` and may override :meth:`transient_response` and
    :meth:`rate_limited_response` to return their system's own error shapes. A write handler
    that has committed calls :meth:`maybe_drop` to simulate a lost response.
    """

    name = "simulator"

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.lock = threading.RLock()
        self.requests: list[SimRequest] = []
        self._rng = random.Random(self.faults.seed)
        self._burst_left = 0

    def set_faults(self, faults: Faults) -> None:
        with self.lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
            self._burst_left = 0

    def handle(self, request: SimRequest) -> SimResponse:
        """Entry point for both adapters. May raise :class:`DropResponse`."""
        faults = self.faults
        if faults.latency:
            time.sleep(faults.latency)
        with self.lock:
            self.requests.append(request)
            if self._burst_left > 0:
                self._burst_left -= 1
                return self.rate_limited_response(request)
            if faults.burst_429_rate and self._rng.random() < faults.burst_429_rate:
                self._burst_left = max(0, faults.burst_429_length - 1)
                return self.rate_limited_response(request)
            if faults.error_rate and self._rng.random() < faults.error_rate:
                return self.transient_response(request)
            return self.dispatch(request)

    def maybe_drop(self) -> None:
        """Call after committing a write: with ``drop_rate`` probability, lose the response."""
        if self.faults.drop_rate and self._rng.random() < self.faults.drop_rate:
            raise DropResponse(f"{self.name}: response dropped after commit")

    def item_ack_lost(self) -> bool:
        """Call per committed item of a batch: with ``item_drop_rate`` probability, its ack is lost."""
        return bool(self.faults.item_drop_rate) and self._rng.random() < self.faults.item_drop_rate

    def item_fails(self) -> bool:
        """Call per item of a batch before running it: with ``item_error_rate`` probability, it fails."""
        return bool(self.faults.item_error_rate) and self._rng.random() < self.faults.item_error_rate

    def token_lifetime(self, default: int) -> int:
        return self.faults.token_lifetime if self.faults.token_lifetime is not None else default

    # --- to override ----------------------------------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    def transient_response(self, request: SimRequest) -> SimResponse:
        return SimResponse.text(503, "Service Unavailable")

    def rate_limited_response(self, request: SimRequest) -> SimResponse:
        return SimResponse.text(429, "Too Many Requests", headers={"Retry-After": str(self.faults.retry_after)})
