"""What a system's webhook receiver decides about one pushed request (no database here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    """The verdict on one pushed request: signed or not, and the event it carries.

    ``ok`` is False for an unsigned or forged request (401, recorded as rejected, never
    processed); ``reason`` says why in words. A signed request whose body cannot be read is
    ``ok`` with ``error`` set: acknowledged (the sender would only send it again) and failed.
    """

    ok: bool
    reason: str = ""
    event_id: str = ""
    event_type: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    error: str = ""
