"""The plain description of a connection that clients are built from (no Django here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Called by clients and token managers on noteworthy events (token refreshed, 401 retried,
# backoff after 429...). The engine turns them into audit events.
EventSink = Callable[[str, dict[str, Any]], None]


def ignore_event(action: str, detail: dict[str, Any]) -> None:
    return None


@dataclass
class ConnectionSpec:
    system: str
    url: str
    auth_method: str
    company: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def secret(self, name: str) -> str:
        return str(self.secrets.get(name) or "")

    def setting(self, name: str, default: Any = "") -> Any:
        value = self.settings.get(name)
        return default if value in (None, "") else value

    def secret_values(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.secrets.values() if v)
