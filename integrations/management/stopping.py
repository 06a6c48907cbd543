"""Commands that start servers of their own (the demo's and the benchmark's sandboxes) stop them
when they are stopped themselves.

The sandbox servers run in their own sessions, so a signal to the command does not reach them:
stopped by SIGTERM or a closed terminal (SIGHUP) without this, the command would leave them behind,
holding their ports and their memory.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def stopped_as_by_ctrl_c(clean_up: Callable[[], None] | None = None) -> Iterator[None]:
    """SIGTERM and SIGHUP end the block as Ctrl-C would (``SystemExit``), so every ``finally`` in
    it runs; then ``clean_up`` runs with those signals ignored (a second one must not cut it short)."""
    previous = {sig: signal.signal(sig, _exit) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            if clean_up is not None:
                clean_up()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
