"""Simulated wall clocks for the sandbox.

Real systems stamp rows with second precision, so two rows written in the same second share
a timestamp. Sync cursors must cope with that (ties at the watermark), and tests need to
provoke it on purpose: hence a clock that tests can freeze and step by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

#: A clock is any callable returning an aware UTC datetime.
ClockFn = Callable[[], datetime]


def utc_now_seconds() -> datetime:
    """Real UTC now, truncated to whole seconds like a database timestamp column."""
    return datetime.now(UTC).replace(microsecond=0)


class ManualClock:
    """A clock that only moves when told to: ``clock.advance(1)`` or ``clock.set(dt)``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = (start or datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1) -> datetime:
        self.now = self.now + timedelta(seconds=seconds)
        return self.now

    def set(self, moment: datetime) -> None:
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        self.now = moment.replace(microsecond=0)


class MonotonicStamper:
    """Turns a (possibly jittery) clock into never-decreasing second-precision stamps.

    A real instance never hands out a ``sys_updated_on`` older than one it already wrote;
    the simulator keeps that promise even if a test moves its clock backwards.
    """

    def __init__(self, clock: ClockFn | None = None, fmt: str = "%Y-%m-%d %H:%M:%S") -> None:
        self.clock: ClockFn = clock or utc_now_seconds
        self.fmt = fmt
        self._last: datetime | None = None

    def now(self) -> datetime:
        moment = self.clock().astimezone(UTC).replace(microsecond=0)
        if self._last is not None and moment < self._last:
            moment = self._last
        self._last = moment
        return moment

    def stamp(self) -> str:
        return self.now().strftime(self.fmt)
