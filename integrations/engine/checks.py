"""Connection tests: "add your credentials, ping your real systems, and see if we fit"."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from integrations.engine.audit import audit
from integrations.engine.context import Cycle, open_clients
from integrations.flows import get_flow
from integrations.models import Connection, Integration
from integrations.systems.errors import AuthError, SyncError
from integrations.systems.needs import TableNeed


def test_connection(connection: Connection, actor: Any = None) -> dict[str, Any]:
    """Run the system's checks, store the readable report on the connection, audit it."""
    cycle = Cycle()
    needs = table_needs(connection)
    try:
        with open_clients(connection, cycle=cycle) as (client,):
            lines = client.check(needs) if needs is not None else client.check()
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


def table_needs(connection: Connection) -> dict[str, TableNeed] | None:
    """What the integrations writing to a connection need of its tables, by logical table (each
    flow's ``tables_in_use``); ``None`` when no flow declares any for it, or when no integration
    uses the connection yet (the test then checks everything the client knows). A client whose
    flows declare ``target_tables`` takes them in ``check(needs)``."""
    needs: dict[str, TableNeed] = {}
    for integration in Integration.objects.filter(target=connection).order_by("name"):
        flow = get_flow(integration.kind)
        if flow.target_system != connection.system:
            continue
        settings = dict(integration.settings or {})
        defaults = {setting.name: setting.default for setting in flow.settings}
        written = set(flow.target_writes())
        renamed = settings.get("field_names") or {}
        for logical in flow.tables_in_use(settings):
            need = needs.setdefault(logical, TableNeed())
            need.integrations.add(integration.name)
            need.written = need.written or logical in written
            for column in flow.target_read_columns.get(logical, ()):
                column = (renamed.get(logical) or {}).get(column) or column
                need.columns.setdefault(str(column), f"the {integration.kind.split('__')[0]} pair reads it")
            for name in flow.target_column_settings.get(logical, ()):
                column = settings.get(name) or defaults.get(name)
                if column:
                    need.columns.setdefault(str(column), f"the integration setting {name} names it")
            for original, column in sorted((renamed.get(logical) or {}).items()):
                if column:
                    need.columns.setdefault(str(column), f"field_names renames {original} to it")
    return needs or None
