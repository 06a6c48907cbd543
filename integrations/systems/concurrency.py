"""Bounded concurrency for a page's HTTP calls, with the database kept on the page's thread.

A page whose writes do not depend on each other (one Sage X3 document per record) may send
them a few at a time: behind a WAN each call is mostly waiting for the vendor's answer. Only
the HTTP work runs on helper threads. Anything that needs the database on the way (a token
refreshed or dropped, an event audited) is handed back to the page's own thread with
:func:`on_owner` and run there while that thread waits for its helpers: one database
connection and one transaction, exactly as if the calls had been made one after another.

The page still ends as a whole before its checkpoint moves (the engine's order is untouched),
and a page's results keep the order of its items.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

Item = TypeVar("Item")
Value = TypeVar("Value")

# The most calls of one page in flight at once, whatever a connection asks: a vendor's rate
# limit is per client, and a worker process should not hold more sockets than this.
MAX_CONCURRENCY = 16

_local = threading.local()
_DONE, _PAGE, _END, _FAILED = object(), object(), object(), object()


class _Job:
    """A call a helper hands to the owning thread, and its outcome."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # handed back to the helper that asked, raised there
            self.error = exc
        finally:
            self.done.set()


class _Owner:
    """The thread that holds the database connection, as its helpers see it: a mailbox of the
    work that needs the database, and of what the helpers report."""

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def call(self, fn: Callable[..., Value], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Value:
        job = _Job(fn, args, kwargs)
        self.inbox.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.value

    def receive(self) -> Any:
        """The next report of a helper, running the jobs handed over meanwhile."""
        while True:
            message = self.inbox.get()
            if not isinstance(message, _Job):
                return message
            message.run()

    def serve(self, helpers: int) -> None:
        """Run what the helpers hand over until each of them has finished."""
        while helpers:
            if self.receive() is _DONE:
                helpers -= 1


def on_owner(fn: Callable[..., Value], *args: Any, **kwargs: Any) -> Value:
    """``fn(*args, **kwargs)`` on the thread that owns the database connection.

    Called from a helper of :func:`concurrently` or :func:`read_ahead`, the owning thread runs it
    and the helper waits for the answer; anywhere else it is a plain call.
    """
    owner: _Owner | None = getattr(_local, "owner", None)
    if owner is None:
        return fn(*args, **kwargs)
    return owner.call(fn, args, kwargs)


def in_helper() -> bool:
    """True on a helper thread of :func:`concurrently` or :func:`read_ahead`."""
    return getattr(_local, "owner", None) is not None


def concurrently(fn: Callable[[Item], Value], items: Iterable[Item],
                 limit: int) -> list[tuple[Value | None, Exception | None]]:
    """``fn(item)`` for each item, at most ``limit`` at a time: ``(value, None)`` or ``(None, error)``
    per item, in the items' order. ``limit`` 1 (or a single item) runs them one after another
    on this thread."""
    items = list(items)
    limit = max(1, min(int(limit or 1), MAX_CONCURRENCY, len(items) or 1))
    if limit == 1:
        return [_capture(fn, item) for item in items]
    owner = _Owner()
    results: list[tuple[Value | None, Exception | None]] = [(None, None)] * len(items)
    failures: list[BaseException] = []

    def work(index: int, item: Item) -> None:
        _local.owner = owner
        try:
            results[index] = _capture(fn, item)
        except BaseException as exc:  # not an Exception (an interrupt): stop the page after the others
            failures.append(exc)
        finally:
            _local.owner = None
            owner.inbox.put(_DONE)

    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="page-call") as pool:
        for index, item in enumerate(items):
            pool.submit(work, index, item)
        owner.serve(len(items))
    if failures:
        raise failures[0]
    return results


def read_ahead(pages: Iterator[Value]) -> Iterator[Value]:
    """``pages`` as they come, the next one read on a helper thread while the caller works on the
    one it has (one page ahead, no more): the source's answer overlaps the caller's work.

    The pages, their order and any error are those of ``pages``; an error surfaces where the
    caller asks for the page it stopped. Database work of the reading (a token refreshed, an
    event audited) runs on the caller's thread while it waits for a page (:func:`on_owner`).
    Closing the iterator (or leaving it early) stops the helper after the page in flight, and
    closes ``pages`` on the thread that read it.
    """
    owner = _Owner()
    turn = threading.Semaphore(1)
    stop = threading.Event()

    def read() -> None:
        _local.owner = owner
        try:
            while True:
                turn.acquire()
                if stop.is_set():
                    return
                try:
                    page = next(pages)
                except StopIteration:
                    owner.inbox.put((_END, None))
                    return
                except BaseException as exc:
                    owner.inbox.put((_FAILED, exc))
                    return
                owner.inbox.put((_PAGE, page))
        finally:
            with contextlib.suppress(Exception):
                pages.close()  # type: ignore[attr-defined]
            _local.owner = None
            owner.inbox.put(_DONE)

    helper = threading.Thread(target=read, name="read-ahead", daemon=True)
    helper.start()
    done = False
    try:
        while True:
            message = owner.receive()
            if message is _DONE:
                done = True
                return
            kind, value = message
            if kind is _END:
                return
            if kind is _FAILED:
                raise value
            turn.release()  # the helper reads the next page while this one is worked on
            yield value
    finally:
        stop.set()
        turn.release()
        while not done:
            done = owner.receive() is _DONE
        helper.join()


def write_limit(spec: Any) -> int:
    """How many of a page's writes the connection ``spec`` may have in flight: its
    ``write_concurrency`` setting (the engine fills in ``SYNC_WRITE_CONCURRENCY``); 1 without."""
    try:
        return max(1, min(int(spec.setting("write_concurrency", 1)), MAX_CONCURRENCY))
    except (TypeError, ValueError):
        return 1


def _capture(fn: Callable[[Item], Value], item: Item) -> tuple[Value | None, Exception | None]:
    try:
        return fn(item), None
    except Exception as exc:
        return None, exc
