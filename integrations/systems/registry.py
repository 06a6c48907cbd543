"""The systems the portal can connect to: each one's connection schema and client builder.

A new system is one module in ``systems/`` with a ``SCHEMA`` and a ``build_client``, added here;
a system that pushes events also has a ``receive_webhook(spec, body, headers)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from integrations.systems import intacct, sage300, sage_x3, schema, servicenow, servicetitan, syspro
from integrations.systems.schema import ConnectionSchema

_MODULES = (servicenow, sage_x3, intacct, sage300, servicetitan, syspro)
SCHEMAS: dict[str, ConnectionSchema] = {module.SCHEMA.system: module.SCHEMA for module in _MODULES}
BUILDERS: dict[str, Callable[..., Any]] = {module.SCHEMA.system: module.build_client for module in _MODULES}
WEBHOOK_RECEIVERS: dict[str, Callable[..., Any]] = {
    module.SCHEMA.system: module.receive_webhook for module in _MODULES if hasattr(module, "receive_webhook")}


def schema_for(system: str) -> ConnectionSchema | None:
    """The system's connection schema; ``None`` for a system the portal has no client for yet."""
    return SCHEMAS.get(system)


def system_label(system: str) -> str:
    """The system as people call it ("Sage X3"), its code for one the portal has no client for."""
    schema = SCHEMAS.get(system)
    return schema.label if schema else system


def connection_settings_errors(system: str, auth_method: str, value: Any) -> list[str]:
    """Every problem of a connection's settings document, each naming its setting; empty when valid."""
    found = SCHEMAS.get(system)
    if found is None:
        return [f"no connector for {system!r} yet"]
    return schema.connection_settings_errors(found.settings, auth_method, value)


def client_builder(system: str) -> Callable[..., Any]:
    try:
        return BUILDERS[system]
    except KeyError:
        raise KeyError(f"No client for system {system!r} yet") from None
