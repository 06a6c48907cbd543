"""Request size limits, enforced before anything reads the body.

Django applies ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only to form data it parses itself; the REST
framework reads JSON bodies from the stream and would take any size. A body larger than
``MAX_REQUEST_BODY_BYTES`` is answered 413 from its declared length, unread.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.MAX_REQUEST_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(request, 400, "The Content-Length header is not a number.")
        if length > limit:
            return _refuse(request, 413, f"The request body is {length:,} bytes; at most {limit:,} are accepted.")
        return self.get_response(request)


def _refuse(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
