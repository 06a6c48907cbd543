"""The request id: validated once per request, for the admin, the API and the audit trail alike.

A caller may name its request with ``X-Request-ID`` (a proxy or a script that wants to find its
own events in the audit trail). The header is the caller's text, so it is accepted only when it
is 1-64 characters of ``A-Z a-z 0-9 . _ -``: anything else (too long, spaces, quotes, control
characters, non-ASCII) is replaced by a fresh id rather than truncated or cleaned, so an id in
the audit trail is always either exactly what the caller sent or ours. The id is echoed in the
response's ``X-Request-ID`` header.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def clean_request_id(value: str | None) -> str:
    """``value`` when it is an acceptable request id, else a fresh uuid4 hex."""
    if value and _VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def request_id(request: Any) -> str:
    """The request's id; works on a Django or a DRF request, with or without the middleware."""
    rid = getattr(request, "request_id", None)
    if not isinstance(rid, str):
        # no middleware ran (a RequestFactory request in a test, a management command's fake)
        rid = clean_request_id(request.headers.get(HEADER) if hasattr(request, "headers") else None)
        request.request_id = rid
    return rid


class RequestIDMiddleware:
    """Sets ``request.request_id`` before any view runs and echoes it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = clean_request_id(request.headers.get(HEADER))
        response = self.get_response(request)
        response[HEADER] = request.request_id
        return response
