"""Bounded concurrency for a sync's HTTP calls, with the database kept on the page's thread.

A page whose writes do not depend on each other (one Sage X3 document per record) may send
them a few at a time (:func:`concurrently`); the next page may be read while this one is
worked on (:func:`read_ahead`); a page's write may run while the next page is transformed
(:func:`in_background`). Only HTTP work runs on helper threads. Anything that needs the
database on the way (a token refreshed or dropped, an event audited) is handed back to the
thread that owns the database connection with :func:`on_owner` and run there whenever that
thread waits for any of its helpers: one database connection and one transaction, exactly as
if the calls had been made one after another. A plain read that opens no transaction (what a
stream synced, :func:`read_on_owner`) is also answered between two steps of the owner's own
work (:func:`answer_reads`), so a helper is not held up while the owner computes for a while.

Each owning thread has one mailbox. Helpers post their reports to it, tagged with the wait they
belong to, and their database work; whichever wait the owner is in runs the database work of
every helper and keeps the reports meant for another wait until that wait asks. A helper that
starts helpers of its own (a page write sending its documents a few at a time) passes their
database work on to its own owner.

The checkpoint order is the caller's: a page still ends as a whole before its checkpoint moves,
and a page's results keep the order of its items.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Value = TypeVar("Value")

# The most calls of one page in flight at once, whatever a connection asks: a vendor's rate
# limit is per client, and a worker process should not hold more sockets than this.
MAX_CONCURRENCY = 16

_local = threading.local()
_DONE, _PAGE, _END, _FAILED = object(), object(), object(), object()


class _Job:
    """A call a helper hands to the owning thread, and its outcome."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
                 read: bool = False) -> None:
        self.fn, self.args, self.kwargs, self.read = fn, args, kwargs, read
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            # on a helper that serves helpers of its own, passed on to its owner
            self.value = _on_owner(self.fn, self.args, self.kwargs, read=self.read)
        except BaseException as exc:  # handed back to the helper that asked, raised there
            self.error = exc
        finally:
            self.done.set()


class _Mailbox:
    """What the helpers of one owning thread hand it: database work to run, and reports, each
    tagged with the wait it is for."""

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.kept: defaultdict[object, deque[Any]] = defaultdict(deque)
        self.deferred: deque[_Job] = deque()  # taken out by answer_reads, run at the next wait

    def call(self, fn: Callable[..., Value], args: tuple[Any, ...], kwargs: dict[str, Any], *,
             read: bool = False) -> Value:
        job = _Job(fn, args, kwargs, read=read)
        self.inbox.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.value

    def post(self, tag: object, message: Any) -> None:
        self.inbox.put((tag, message))

    def receive(self, tag: object) -> Any:
        """The next report tagged ``tag``, running every helper's database work meanwhile."""
        while self.deferred:
            self.deferred.popleft().run()
        while True:
            kept = self.kept.get(tag)
            if kept:  # also one a job run below kept, waiting for its own report (a hold)
                return kept.popleft()
            message = self.inbox.get()
            if isinstance(message, _Job):
                message.run()
                continue
            to, report = message
            if to is tag:
                return report
            self.kept[to].append(report)

    def answer_reads(self) -> None:
        """Run the reads waiting in the inbox now; other database work waits for the next
        :meth:`receive` (in the order it came), reports are kept for their wait."""
        while True:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(message, _Job):
                if message.read:
                    message.run()
                else:
                    self.deferred.append(message)
            else:
                to, report = message
                self.kept[to].append(report)

    def forget(self, tag: object) -> None:
        self.kept.pop(tag, None)


def _mailbox() -> _Mailbox:
    """The calling thread's own mailbox, for the helpers it starts."""
    box = getattr(_local, "mailbox", None)
    if box is None:
        box = _local.mailbox = _Mailbox()
    return box


def _helper_of(box: _Mailbox) -> None:
    _local.owner = box


def on_owner(fn: Callable[..., Value], *args: Any, **kwargs: Any) -> Value:
    """``fn(*args, **kwargs)`` on the thread that owns the database connection.

    Called from a helper (:func:`concurrently`, :func:`read_ahead`, :func:`in_background`), the
    owning thread runs it and the helper waits for the answer; anywhere else it is a plain call.
    """
    return _on_owner(fn, args, kwargs, read=False)


def read_on_owner(fn: Callable[..., Value], *args: Any, **kwargs: Any) -> Value:
    """:func:`on_owner` for a read that opens no transaction and changes nothing (what a stream
    synced): besides whenever it waits, the owning thread answers it between two steps of its own
    work (:func:`answer_reads`), so the helper is not held up while the owner computes."""
    return _on_owner(fn, args, kwargs, read=True)


def _on_owner(fn: Callable[..., Value], args: tuple[Any, ...], kwargs: dict[str, Any], *, read: bool) -> Value:
    owner: _Mailbox | None = getattr(_local, "owner", None)
    if owner is None:
        return fn(*args, **kwargs)
    return owner.call(fn, args, kwargs, read=read)


class _Hold:
    """A context entered on the owning thread for a helper, the owner kept in its wait until the
    helper leaves it (see :func:`held_on_owner`)."""

    def __init__(self, enter: Callable[[], contextlib.AbstractContextManager[Value]]) -> None:
        self.enter = enter
        self.tag = object()
        self.entered = threading.Event()
        self.inside = False
        self.value: Any = None
        self.box: _Mailbox | None = None

    def run(self) -> None:
        """On the owning thread: enter, wait (running the helpers' database work, this one's
        included) until the helper leaves, and leave with the helper's error if it had one."""
        self.box = _mailbox()
        try:
            with self.enter() as value:
                self.value, self.inside = value, True
                self.entered.set()
                error = self.box.receive(self.tag)
                if error is not None:
                    raise error
        finally:
            self.entered.set()  # also when entering failed: the helper then raises that error


@contextlib.contextmanager
def held_on_owner(enter: Callable[[], contextlib.AbstractContextManager[Value]]) -> Iterator[Value]:
    """``with enter() as value``, entered and left on the thread that owns the database connection.

    Called from a helper, the owning thread enters the context at its wait and stays in that wait
    until the helper leaves it: it runs the database work its helpers hand it (this helper's
    included, which runs inside the context) and nothing of its own, so no work of its own falls
    inside the context, and contexts of its own stay nested (a row lock's transaction, rolled back
    on the helper's error, takes nothing else with it). Anywhere else it is a plain ``with``.
    """
    owner: _Mailbox | None = getattr(_local, "owner", None)
    if owner is None:
        with enter() as value:
            yield value
        return
    hold = _Hold(enter)
    job = _Job(hold.run, (), {})
    owner.inbox.put(job)
    hold.entered.wait()
    if not hold.inside:
        job.done.wait()
        raise job.error  # type: ignore[misc]
    _local.owner = hold.box  # database work inside goes to the thread that holds the context
    try:
        yield hold.value
    except BaseException as exc:
        hold.box.post(hold.tag, exc)  # type: ignore[union-attr]
        job.done.wait()
        raise
    finally:
        _local.owner = owner
    hold.box.post(hold.tag, None)  # type: ignore[union-attr]
    job.done.wait()
    if job.error is not None:  # leaving failed (a commit refused)
        raise job.error


def answer_reads() -> None:
    """On a thread whose helpers may be waiting for it: run the reads they asked of it
    (:func:`read_on_owner`) now, between two steps of its own work. Anything else they handed
    over (a transaction to open, a row to save) still waits until this thread waits for them:
    between two steps, the thread may be inside work of its own that it must not be mixed with."""
    box: _Mailbox | None = getattr(_local, "mailbox", None)
    if box is not None and not box.inbox.empty():
        box.answer_reads()


def in_helper() -> bool:
    """True on a helper thread of :func:`concurrently`, :func:`read_ahead` or :func:`in_background`."""
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
    box, tag = _mailbox(), object()
    results: list[tuple[Value | None, Exception | None]] = [(None, None)] * len(items)
    failures: list[BaseException] = []

    def work(index: int, item: Item) -> None:
        _helper_of(box)
        try:
            results[index] = _capture(fn, item)
        except BaseException as exc:  # not an Exception (an interrupt): stop the page after the others
            failures.append(exc)
        finally:
            _local.owner = None
            box.post(tag, _DONE)

    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="page-call") as pool:
        for index, item in enumerate(items):
            pool.submit(work, index, item)
        for _ in items:
            box.receive(tag)
    if failures:
        raise failures[0]
    return results


class Background(Generic[Value]):
    """``fn(*args)`` running on a helper thread (see :func:`in_background`)."""

    def __init__(self, fn: Callable[..., Value], *args: Any) -> None:
        self._box, self._tag = _mailbox(), object()
        self._outcome: tuple[Value | None, BaseException | None] | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), name="background", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Value], args: tuple[Any, ...]) -> None:
        _helper_of(self._box)
        outcome: tuple[Value | None, BaseException | None]
        try:
            outcome = (fn(*args), None)
        except BaseException as exc:  # raised by result(), on the owner's thread
            outcome = (None, exc)
        finally:
            _local.owner = None
        self._box.post(self._tag, outcome)

    def result(self) -> Value:
        """Its value, or its error raised here; waits for it, running its database work meanwhile."""
        if self._outcome is None:
            self._outcome = self._box.receive(self._tag)
            self._thread.join()
        value, error = self._outcome
        if error is not None:
            raise error
        return value  # type: ignore[return-value]

    def wait(self) -> None:
        """Wait for it to end, whatever its outcome (e.g. before leaving on another error)."""
        with contextlib.suppress(BaseException):
            self.result()


class Finished(Generic[Value]):
    """``fn(*args)`` already run on this thread, with :class:`Background`'s interface: where a
    limit of one call in flight leaves nothing to overlap, no thread is started."""

    def __init__(self, fn: Callable[..., Value], *args: Any) -> None:
        self._value: Value | None = None
        self._error: Exception | None = None
        try:
            self._value = fn(*args)
        except Exception as exc:  # raised by result(), as Background does
            self._error = exc

    def result(self) -> Value:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def wait(self) -> None:
        return None


def in_background(fn: Callable[..., Value], *args: Any) -> Background[Value]:
    """Start ``fn(*args)`` on a helper thread and go on; ``.result()`` waits for it. Its database
    work runs on this thread whenever this thread waits for any of its helpers."""
    return Background(fn, *args)


def read_ahead(pages: Iterator[Value]) -> Iterator[Value]:
    """``pages`` as they come, the next one read on a helper thread while the caller works on the
    one it has (one page ahead, no more): the source's answer overlaps the caller's work.

    The pages, their order and any error are those of ``pages``; an error surfaces where the
    caller asks for the page it stopped. Database work of the reading (a token refreshed, an
    event audited) runs on the caller's thread while it waits for a page (:func:`on_owner`).
    Closing the iterator (or leaving it early) stops the helper after the page in flight, and
    closes ``pages`` on the thread that read it.
    """
    box, tag = _mailbox(), object()
    turn = threading.Semaphore(1)
    stop = threading.Event()

    def read() -> None:
        _helper_of(box)
        try:
            while True:
                turn.acquire()
                if stop.is_set():
                    return
                try:
                    page = next(pages)
                except StopIteration:
                    box.post(tag, (_END, None))
                    return
                except BaseException as exc:
                    box.post(tag, (_FAILED, exc))
                    return
                box.post(tag, (_PAGE, page))
        finally:
            with contextlib.suppress(Exception):
                pages.close()  # type: ignore[attr-defined]
            _local.owner = None
            box.post(tag, (_DONE, None))

    helper = threading.Thread(target=read, name="read-ahead", daemon=True)
    helper.start()
    done = False
    try:
        while True:
            kind, value = box.receive(tag)
            if kind is _DONE:
                done = True
                return
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
            done = box.receive(tag)[0] is _DONE
        helper.join()
        box.forget(tag)


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
