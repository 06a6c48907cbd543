"""Serve a simulator in-process, through ``responses`` callbacks, for fast offline tests.

The client under test keeps using ``requests`` exactly as in production; only the transport
is swapped. A simulator's :class:`DropResponse` ("committed, then the connection died")
surfaces as ``requests.exceptions.ConnectionError``, just as a reset socket would.
"""

from __future__ import annotations

import re

import requests
import responses

from .base import DropResponse, SimRequest, Simulator

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    read = getattr(body, "read", None)
    if callable(read):
        return _body_bytes(read())
    return b"".join(_body_bytes(chunk) for chunk in body)  # type: ignore[attr-defined]


def mount(sim: Simulator, base_url: str, rsps: responses.RequestsMock) -> None:
    """Route every request under ``base_url`` (any method) to ``sim``.

    Five callbacks are registered (one per method) and most tests use only some of them, so
    create the mock with ``responses.RequestsMock(assert_all_requests_are_fired=False)``.
    """
    root = base_url.rstrip("/")
    # Anchored on a path/query boundary: "https://sn.test" must not match "https://sn.test.evil".
    pattern = re.compile(re.escape(root) + r"(?:[/?#].*)?$", re.DOTALL)

    def callback(prepared: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        request = SimRequest(
            method=(prepared.method or "GET").upper(),
            url=str(prepared.url),
            headers={str(k): str(v) for k, v in prepared.headers.items()},
            body=_body_bytes(prepared.body),
        )
        try:
            response = sim.handle(request)
        except DropResponse as exc:
            raise requests.exceptions.ConnectionError(f"Connection aborted: {exc}", request=prepared) from exc
        return response.status, dict(response.headers), response.body

    for method in METHODS:
        rsps.add_callback(method, pattern, callback=callback, content_type=None)
