"""Which client module serves which system."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from integrations.systems import intacct, sage_x3, schema, servicenow
from integrations.systems.schema import Setting

BUILDERS: dict[str, Callable[..., Any]] = {
    "servicenow": servicenow.build_client,
    "sage_x3": sage_x3.build_client,
    "sage_intacct": intacct.build_client,
}


# The settings each system's connections accept.
SETTINGS: dict[str, tuple[Setting, ...]] = {
    "servicenow": servicenow.SETTINGS,
    "sage_x3": sage_x3.SETTINGS,
    "sage_intacct": intacct.SETTINGS,
}


def connection_settings_errors(system: str, auth_method: str, value: Any) -> list[str]:
    """Every problem of a connection's settings document, each naming its setting; empty when valid."""
    return schema.connection_settings_errors(SETTINGS.get(system, ()), auth_method, value)


def client_builder(system: str) -> Callable[..., Any]:
    try:
        return BUILDERS[system]
    except KeyError:
        raise KeyError(f"No client for system {system!r} yet") from None
