"""A hostile server at the HTTP boundary, for the client fuzz tests.

``serve(rsps, answers)`` answers every request of every method, in order, with the drawn
answers; once they run out the connection drops (a ``ConnectionError``), so a client that
follows pages forever still ends. Nothing above ``requests`` is replaced: the clients, their
HTTP policy and their token lifecycle run as in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import responses
from hypothesis import strategies as st

from integrations.systems.auth import MemoryTokenStore
from integrations.systems.http import HttpPolicy

ANY_URL = re.compile(r".*")
STATUSES = (200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504)
CONTENT_TYPES = ("application/json", "application/xml", "text/html", "text/plain", "application/octet-stream", "")


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Server:
    """What was served, for the failure report."""

    answers: list[Answer]
    served: int = 0
    seen: list[str] = field(default_factory=list)

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        self.seen.append(f"{request.method} {request.url}")
        if self.served >= len(self.answers):
            raise requests.ConnectionError("the fuzz server hung up")
        answer = self.answers[self.served]
        self.served += 1
        return answer.status, answer.headers, answer.body


def serve(rsps: responses.RequestsMock, answers: list[Answer]) -> Server:
    server = Server(answers)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        rsps.add_callback(method, ANY_URL, callback=server)
    return server


def policy() -> HttpPolicy:
    """One retry, no sleeping: a fuzz example must be quick, not patient."""
    return HttpPolicy(max_retries=1, backoff_base=0.0, backoff_max=0.0, max_retry_after=0.0, sleep=lambda _: None)


# --- what a hostile or broken server says ------------------------------------------------------
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "1e400", "NaN", "null", "2024-13-45", "99999999999999999999", "\x00",
                     "<x/>", "2024-05-31 10:00:00", "05/31/2024 10:00:00"]),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)
# what every database's JSON column holds (no NaN or Infinity, no NUL for PostgreSQL), e.g. a stored payload
STORABLE_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
STORABLE_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False, allow_infinity=False),
              STORABLE_TEXT, st.sampled_from(["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
                                              "password", "{{ 7*7 }}", "</pre><b>x</b>"])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(STORABLE_TEXT, inner, max_size=4)),
    max_leaves=12)


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8")


def shaped(keys: dict[str, st.SearchStrategy]) -> st.SearchStrategy[bytes]:
    """A JSON object with some of the vendor's keys, each holding a value of any type."""
    return st.fixed_dictionaries({}, optional=keys).map(json_bytes)


def answers(bodies: st.SearchStrategy[bytes], *, max_size: int = 6,
            statuses: tuple[int, ...] = STATUSES) -> st.SearchStrategy[list[Answer]]:
    """Up to ``max_size`` answers; mostly 200s, so the fuzz gets past the status to the body."""
    headers = st.fixed_dictionaries({}, optional={
        "Content-Type": st.sampled_from(CONTENT_TYPES),
        "Retry-After": st.sampled_from(["0", "1", "-5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "1e9", ""]),
        "Link": st.sampled_from(['<https://x.test/next>;rel="next"', 'rel="next"', "garbage", ""]),
    })
    status = st.one_of(st.just(200), st.just(200), st.sampled_from(statuses))
    answer = st.builds(Answer, status, st.one_of(bodies, bodies, st.binary(max_size=64)), headers)
    return st.lists(answer, min_size=1, max_size=max_size)


def failure_report(server: Server, exc: BaseException) -> str:
    served = "\n".join(f"  {line}" for line in server.seen)
    return f"{type(exc).__name__}: {exc}\nrequests:\n{served}"


Operation = Callable[[Any], Any]


def drain(result: Any, limit: int = 20) -> list[Any]:
    """Consume what an operation returned (a generator of pages, or a value)."""
    if hasattr(result, "__next__"):
        pages = []
        for page in result:
            pages.append(page)
            if len(pages) >= limit:
                break
        return pages
    return [result]


def store() -> MemoryTokenStore:
    return MemoryTokenStore()
