"""A page's calls a few at a time, the database kept on the page's thread.

The token refresh below runs from helper threads against the test's own database transaction:
without the hand-over to the page's thread, a helper would open a second connection that can
neither see the test's rows nor write while the page's thread holds its transaction.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from integrations.engine.context import build_client
from integrations.engine.tokens import ConnectionTokenStore
from integrations.models import AuditEvent, Connection
from integrations.sandbox.clock import ManualClock
from integrations.systems.auth import Token
from integrations.systems.concurrency import (
    MAX_CONCURRENCY,
    answer_reads,
    concurrently,
    held_on_owner,
    in_background,
    in_helper,
    on_owner,
    read_ahead,
    read_on_owner,
    write_limit,
)
from integrations.systems.errors import AuthError, DataError
from integrations.systems.http import CallCounter
from integrations.systems.spec import ConnectionSpec
from tests.systems.test_x3_oauth_tokens import token_calls, x3_client


def test_results_keep_the_items_order_and_no_more_than_the_limit_are_in_flight():
    in_flight, most, lock = 0, 0, threading.Lock()

    def call(n: int) -> int:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.01 * (n % 3))  # later items may finish first
        with lock:
            in_flight -= 1
        return n * n

    results = concurrently(call, range(20), limit=4)

    assert [value for value, _ in results] == [n * n for n in range(20)]
    assert all(error is None for _, error in results)
    assert 1 < most <= 4


def test_an_error_belongs_to_its_item_and_the_others_still_finish():
    def call(n: int) -> str:
        if n == 2:
            raise DataError("refused")
        return f"ok {n}"

    results = concurrently(call, range(5), limit=3)

    assert [value for value, _ in results] == ["ok 0", "ok 1", None, "ok 3", "ok 4"]
    assert isinstance(results[2][1], DataError)


def test_database_work_of_a_helper_runs_on_the_calling_thread():
    page_thread = threading.get_ident()
    seen: list[tuple[int, int, bool]] = []

    def call(n: int) -> int:
        owner_thread = on_owner(threading.get_ident)
        seen.append((threading.get_ident(), owner_thread, in_helper()))
        return n

    concurrently(call, range(6), limit=3)

    assert {owner for _, owner, _ in seen} == {page_thread}
    assert all(helper != page_thread and flagged for helper, _, flagged in seen)
    assert not in_helper() and on_owner(threading.get_ident) == page_thread


def test_limit_one_runs_on_this_thread_one_after_another():
    threads = {value for value, _ in concurrently(lambda n: threading.get_ident(), range(4), limit=1)}
    assert threads == {threading.get_ident()}


@pytest.mark.parametrize(("setting", "expected"), [(None, 1), ("", 1), (4, 4), ("8", 8), (500, MAX_CONCURRENCY),
                                                   (0, 1), ("many", 1)])
def test_write_limit_reads_the_connection_setting(setting, expected):
    spec = ConnectionSpec(system="sage_x3", url="https://x3.example", auth_method="basic", settings={"write_concurrency": setting})
    assert write_limit(spec) == expected


@pytest.mark.django_db
def test_the_engine_gives_every_connection_the_portal_default(integration, settings):
    settings.SYNC_WRITE_CONCURRENCY = 6
    client = build_client(integration.target, CallCounter())
    assert write_limit(client.spec) == 6


@pytest.mark.django_db
def test_helpers_refresh_an_expired_token_once_through_the_page_thread(integration, x3_sim):
    clock = ManualClock(datetime.now(UTC))
    x3_sim.set_clock(clock)
    client = x3_client(integration.source, clock)
    client.read("GACCOUNT", "60100")
    first = Connection.objects.get(pk=integration.source_id).token_cache["access_token"]
    clock.advance(290)  # 10 s left: every call below needs a fresh token first

    results = concurrently(lambda code: client.read("GACCOUNT", code)["ACC"], ["60100", "60200", "60300", "60100"],
                           limit=4)

    assert [error for _, error in results] == [None] * 4
    assert [value for value, _ in results] == ["60100", "60200", "60300", "60100"]
    assert len(token_calls(x3_sim)) == 2, "one refresh for the four helpers, the refresh token spent once"
    stored = Connection.objects.get(pk=integration.source_id).token_cache
    assert stored["access_token"] != first
    assert AuditEvent.objects.filter(connection_id=integration.source_id,
                                     action="connection.token_refreshed").count() == 2


# --- reading the next page while this one is worked on ---------------------------------------------
def _numbered_pages(count: int, log: list[str], fail_at: int | None = None):
    try:
        for n in range(count):
            if n == fail_at:
                raise DataError(f"page {n} unreadable")
            log.append(f"read {n}")
            yield [n]
    finally:
        log.append("closed")


def test_read_ahead_gives_the_same_pages_in_order_and_reads_one_ahead_at_most():
    log: list[str] = []
    taken = []
    for page in read_ahead(_numbered_pages(5, log)):
        time.sleep(0.02)  # the caller's work: the helper reads the next page meanwhile
        reads = sum(1 for entry in log if entry.startswith("read"))
        assert reads - (len(taken) + 1) <= 1, "never more than one page ahead"
        taken.append(page)
    assert taken == [[0], [1], [2], [3], [4]]
    assert log == [*(f"read {n}" for n in range(5)), "closed"]


def test_read_ahead_raises_a_reading_error_where_the_caller_asks_for_that_page():
    log: list[str] = []
    taken = []
    with pytest.raises(DataError, match="page 2 unreadable"):
        for page in read_ahead(_numbered_pages(5, log, fail_at=2)):
            taken.append(page)
    assert taken == [[0], [1]] and log[-1] == "closed"


def test_leaving_early_stops_the_helper_and_closes_the_source_on_its_thread():
    log: list[str] = []
    before = threading.active_count()
    pages = read_ahead(_numbered_pages(100, log))
    for page in pages:
        if page == [1]:
            break
    pages.close()
    assert log[-1] == "closed" and sum(1 for entry in log if entry.startswith("read")) <= 3
    assert threading.active_count() == before


@pytest.mark.django_db
def test_the_reading_helper_uses_the_database_through_the_callers_thread(integration):
    caller = threading.get_ident()

    def pages():
        for n in range(3):
            yield [on_owner(lambda: (threading.get_ident(), Connection.objects.filter(pk=integration.source_id).count()))]

    assert [page[0] for page in read_ahead(pages())] == [(caller, 1)] * 3


def _until(condition, seconds: float = 5.0) -> None:
    """The owner at work: a step at a time, answering its helpers' reads between steps."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        answer_reads()
        time.sleep(0.001)


def test_a_helpers_read_is_answered_between_the_owners_steps_and_other_work_waits_for_its_wait():
    owner, log = threading.get_ident(), []

    def write_page() -> int:
        asked = read_on_owner(threading.get_ident)  # what a stream synced
        log.append("read answered")
        on_owner(log.append, "saved")  # e.g. a refreshed token saved: only while the owner waits
        return asked

    background = in_background(write_page)
    _until(lambda: "read answered" in log)
    assert log == ["read answered"]
    time.sleep(0.05)
    answer_reads()  # the save is taken from the inbox, not run: the owner is between steps of its own work
    assert log == ["read answered"]

    assert background.result() == owner  # the read ran on the owning thread
    assert log == ["read answered", "saved"]


def test_a_report_taken_while_answering_reads_still_reaches_its_wait():
    asked = threading.Event()

    def write_page() -> int:
        value = read_on_owner(lambda: 7)
        asked.set()
        return value + 1

    background = in_background(write_page)
    _until(asked.is_set)
    time.sleep(0.05)
    answer_reads()  # the helper's outcome, if already posted, is kept for the wait below

    assert background.result() == 8


def test_answering_reads_on_a_thread_without_helpers_does_nothing():
    answer_reads()
    assert read_on_owner(lambda: threading.get_ident()) == threading.get_ident()  # no helper: a plain call


# --- a row lock a helper takes on the page's thread ----------------------------------------------------
@pytest.mark.django_db
def test_a_failed_refresh_on_a_helper_rolls_back_nothing_the_page_thread_did_meanwhile(integration):
    """The refresh's row lock is a transaction on the page's thread. While a helper holds it, that
    thread stays in its wait: work of its own done in that window would sit inside the helper's
    transaction and be rolled back with a failed refresh (a booking lost)."""
    store = ConnectionTokenStore(Connection.objects.get(pk=integration.source_id))
    locked, go = threading.Event(), threading.Event()

    def refresh_that_fails() -> None:
        with store.locked():
            locked.set()
            go.wait(0.3)  # the page's thread would set it, had it left its wait
            raise AuthError("refresh token refused")

    refreshing = in_background(refresh_that_fails)
    other = in_background(lambda: locked.wait(5))  # a report that ends the page thread's wait
    assert other.result() is True
    go.set()
    booked = AuditEvent.objects.create(tenant_id=integration.tenant_id, action="sync.booked", message="booked")

    with pytest.raises(AuthError):
        refreshing.result()
    assert AuditEvent.objects.filter(pk=booked.pk).exists(), "the page thread's own work was rolled back"


@pytest.mark.django_db
def test_database_work_inside_a_helpers_row_lock_runs_on_the_page_thread_within_it(integration):
    store = ConnectionTokenStore(Connection.objects.get(pk=integration.source_id))
    owner = threading.get_ident()

    def refresh() -> int:
        with store.locked() as latest:
            assert latest is None or latest.access_token
            store.save(Token(access_token="fresh", expires_at=datetime.now(UTC) + timedelta(hours=1)))
        return read_on_owner(threading.get_ident)

    assert in_background(refresh).result() == owner
    assert Connection.objects.get(pk=integration.source_id).token_cache["access_token"] == "fresh"
    assert AuditEvent.objects.filter(connection_id=integration.source_id,
                                     action="connection.token_refreshed").count() == 1


@pytest.mark.django_db
def test_a_context_held_on_the_page_thread_is_entered_and_left_there_once(integration):
    log = []

    @contextlib.contextmanager
    def context():
        log.append(("enter", threading.get_ident()))
        try:
            yield "value"
        except DataError:
            log.append(("left with error", threading.get_ident()))
            raise
        log.append(("left", threading.get_ident()))

    def use(fail: bool) -> str:
        with held_on_owner(context) as value:
            on_owner(lambda: log.append(("inside", threading.get_ident())))
            if fail:
                raise DataError("bad")
        return value

    owner = threading.get_ident()
    assert in_background(use, False).result() == "value"
    with pytest.raises(DataError):
        in_background(use, True).result()
    assert log == [("enter", owner), ("inside", owner), ("left", owner),
                   ("enter", owner), ("inside", owner), ("left with error", owner)]
    with held_on_owner(context) as value:  # no helper: a plain ``with``
        assert value == "value"
