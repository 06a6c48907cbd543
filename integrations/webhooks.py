"""The webhook endpoint: ``POST /webhooks/<system>/<tenant slug>/<connection name>/``.

No session, no CSRF (the sender signs the body instead); the body is read only up to
``WEBHOOK_MAX_BODY_BYTES``. The answer comes before any processing (a queued task).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.engine.webhooks import receive


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, system: str, tenant: str, connection: str) -> HttpResponse:
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return JsonResponse({"detail": f"At most {limit:,} bytes are accepted."}, status=413)
    body = request.read(limit + 1)
    if len(body) > limit:
        return JsonResponse({"detail": f"At most {limit:,} bytes are accepted."}, status=413)
    answer = receive(system, tenant, connection, body, request.headers)
    if answer.queue and answer.event is not None:
        from integrations.tasks import queue_webhooks

        queue_webhooks(answer.event.connection_id)
    return JsonResponse({"detail": answer.message}, status=answer.status)
