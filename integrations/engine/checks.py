"""Connection tests: "add your credentials, ping your real systems, and see if we fit"."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from integrations.engine.audit import audit
from integrations.engine.context import Cycle, open_clients
from integrations.models import Connection
from integrations.systems.errors import AuthError, SyncError


def test_connection(connection: Connection, actor: Any = None) -> dict[str, Any]:
    """Run the system's checks, store the readable report on the connection, audit it."""
    cycle = Cycle()
    try:
        with open_clients(connection, cycle=cycle) as (client,):
            lines = client.check()
    except AuthError as exc:
        lines = [{"check": "credentials", "ok": False, "message": f"Credentials refused: {exc}"}]
    except (SyncError, KeyError, ValueError) as exc:
        lines = [{"check": "connect", "ok": False, "message": f"Could not connect: {exc}"}]
    ok = bool(lines) and all(line["ok"] for line in lines)
    now = timezone.now()
    report = {
        "ok": ok,
        "at": now.isoformat(),
        "checks": lines,
        "failed": [line["message"] for line in lines if not line["ok"]],
        "api_calls": cycle.calls,
    }
    fields: dict[str, Any] = {"last_test_at": now, "last_test_ok": ok, "last_test_report": report}
    if ok:
        fields.update(needs_reauth=False, last_error="")
    Connection.objects.filter(pk=connection.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)
    audit(connection.tenant_id, "connection.tested",
          f"{connection.name}: {'all checks passed' if ok else '; '.join(report['failed'])[:1500]}",
          actor=actor, connection_id=connection.pk, detail={"ok": ok, "checks": lines})
    return report
