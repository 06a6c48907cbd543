"""Which client module serves which system."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from integrations.systems import intacct, sage_x3, servicenow

BUILDERS: dict[str, Callable[..., Any]] = {
    "servicenow": servicenow.build_client,
    "sage_x3": sage_x3.build_client,
    "sage_intacct": intacct.build_client,
}


def client_builder(system: str) -> Callable[..., Any]:
    try:
        return BUILDERS[system]
    except KeyError:
        raise KeyError(f"No client for system {system!r} yet") from None
