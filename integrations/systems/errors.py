"""Error classes every client raises, so the engine can decide without knowing the vendor.

- transient: worth retrying later (timeouts, resets, 429, 502/503/504);
- data: this one record is wrong (a 400 on its payload, a duplicate refused...);
- systemic: nothing will work until a person acts (credentials refused after a refresh,
  permission denied, table missing); the run stops at once and the connection is flagged.
"""

from __future__ import annotations

TRANSIENT = "transient"
DATA = "data"
SYSTEMIC = "systemic"


class SyncError(Exception):
    """Base of every classified error raised by a client."""

    kind = TRANSIENT

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
        ambiguous: bool = False,
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        # True when a write may have been committed although we saw no answer.
        self.ambiguous = ambiguous
        self.code = code

    def __str__(self) -> str:
        parts = [self.message]
        if self.status:
            parts.append(f"(HTTP {self.status})")
        if self.detail:
            parts.append(f"- {self.detail}")
        return " ".join(parts)


class TransientError(SyncError):
    kind = TRANSIENT


class SessionExpired(TransientError):
    """The vendor no longer knows our session (timed out, ended elsewhere): sign in again once and
    retry once (Intacct's invalid session, SYSPRO's "The supplied UserID is invalid.")."""


class BudgetExhausted(TransientError):
    """This connection's call budget for the cycle is spent: nothing was sent. The run ends
    "partial" and a continuation picks up where it stopped."""


class DataError(SyncError):
    kind = DATA


class SystemicError(SyncError):
    kind = SYSTEMIC


class AuthError(SystemicError):
    """Credentials refused even after a token refresh: the connection needs re-authentication."""
