"""``benchmark --admin``: the records and audit changelists over a million rows each.

Runs in the benchmark's worker process against its own throwaway database: builds one tenant
with an integration, ``rows`` sync records (mostly synced, with failed and held queues, spread
over three streams and a year of updates) and ``rows`` audit events, then asks the admin for
each changelist as a superuser and as a tenant operator through Django's test client, timing
the server side (the whole request: middleware, queries, template) and counting its queries.
Each page is asked once to warm up, then ``repeat`` times; the median is reported.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from typing import Any

CHUNK = 20_000
STREAMS = ("suppliers", "purchase_orders", "invoices")
ACTIONS = ("records.posted", "run.started", "run.finished", "record.failed", "record.held", "mapping.approved",
           "connection.token_refreshed", "record.replayed")

# page -> (admin URL name, query string)
PAGES: dict[str, tuple[str, str]] = {
    "records": ("admin:integrations_syncrecord_changelist", ""),
    "records_failed_queue": ("admin:integrations_failedrecord_changelist", ""),
    "records_search": ("admin:integrations_syncrecord_changelist", "q=BPI0500000"),
    "audit": ("admin:integrations_auditevent_changelist", ""),
    "audit_by_action": ("admin:integrations_auditevent_changelist", "action=record.failed"),
}


def _status(index: int) -> tuple[str, str]:
    """1% failed (transient/data), 0.5% held, the rest synced."""
    if index % 100 == 7:
        return "failed", "transient" if index % 200 == 7 else "data"
    if index % 200 == 13:
        return "held", ""
    return "synced", ""


def _when(now: Any, index: int, rows: int) -> Any:
    """Rows spread over a year, newest last, as a long-lived tenant's would be."""
    return now - timedelta(seconds=(rows - index) * 365 * 86400 // max(rows, 1))


def build(rows: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import Membership, Role
    from integrations.benchmark.pairs import PAIRS
    from integrations.engine.bulk import insert_many
    from integrations.models import AuditEvent, Integration, SyncRecord
    from integrations.tenants import load_document

    load_document(PAIRS["x3-servicenow"].document("http://127.0.0.1:9", "http://127.0.0.1:9"), actor="benchmark")
    integration = Integration.objects.select_related("tenant").get()
    tenant_id = integration.tenant_id
    now = timezone.now()
    started = time.perf_counter()
    for start in range(0, rows, CHUNK):
        batch = []
        for index in range(start, min(rows, start + CHUNK)):
            status, error_class = _status(index)
            key = f"BPI{index:07d}"
            batch.append(SyncRecord(
                integration_id=integration.pk, stream=STREAMS[index % 3], source_key=key, business_key=key,
                status=status, error_class=error_class, source_cursor="2026-04-01T00:00:00Z",
                source_hash=f"{index:064x}", target_id=f"{index:032x}" if status == "synced" else "",
                error_message="HTTP 503 from ServiceNow" if status == "failed" else "",
                missing="|gl_account:61200|" if status == "held" else "", attempts=1,
                created_at=_when(now, index, rows), updated_at=_when(now, index, rows),
            ))
        insert_many(SyncRecord, batch, stamp=False)
    records_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, rows, CHUNK):
        insert_many(AuditEvent, [
            AuditEvent(tenant_id=tenant_id, integration_id=integration.pk, actor_name="system",
                       action=ACTIONS[index % len(ACTIONS)], message=f"event {index}", detail={"n": index},
                       created_at=_when(now, index, rows))
            for index in range(start, min(rows, start + CHUNK))
        ], stamp=False)
    audit_seconds = time.perf_counter() - started
    user_model = get_user_model()
    admin = user_model.objects.create_superuser("bench-admin", "admin@example.com", "bench-pass-0123456789")
    operator = user_model.objects.create_user("bench-operator", "op@example.com", "bench-pass-0123456789",
                                              is_staff=True)
    Membership.objects.create(user=operator, tenant_id=tenant_id, role=Role.OPERATOR)
    return {"users": {"superuser": admin, "operator": operator},
            "build_seconds": {"records": round(records_seconds, 1), "audit": round(audit_seconds, 1)}}


def time_page(client: Any, url: str, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: templates, caches, the database's pages
    timings, queries, status = [], [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        queries.append(len(captured.captured_queries))
        status = response.status_code
    return {"server_ms": round(statistics.median(timings), 1), "queries": max(queries), "status": status}


def admin_timing(config: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    rows = int(config["rows"])
    repeat = int(config.get("repeat", 5))
    call_command("migrate", verbosity=0)
    built = build(rows)
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    figures: dict[str, Any] = {"rows": rows, "build_seconds.records": built["build_seconds"]["records"],
                               "build_seconds.audit": built["build_seconds"]["audit"]}
    for who, user in built["users"].items():
        client = Client()
        client.force_login(user)
        for page, (name, query) in PAGES.items():
            url = reverse(name) + (f"?{query}" if query else "")
            timed = time_page(client, url, repeat)
            prefix = page if who == "superuser" else f"{page}.{who}"
            figures[f"{prefix}.server_ms"] = timed["server_ms"]
            figures[f"{prefix}.queries"] = timed["queries"]
            if timed["status"] != 200:
                figures[f"{prefix}.status"] = timed["status"]
    return figures
