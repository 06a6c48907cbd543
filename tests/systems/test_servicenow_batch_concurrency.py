"""Batch API calls of one write, a few on the wire at once (the connection's ``write_concurrency``).

The calls of one table's write do not depend on each other, so while the instance works on one
the next may already be on its way: with a per-call latency the wait is paid once per window of
calls instead of once per call. What must not change: each row is written once, a lost answer
fails only the rows of its own call (looked up before they are written again), unserviced items
are sent again, and with a limit of one the calls go one after another on the caller's thread.
"""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import unquote

import pytest

from integrations.sandbox.base import DropResponse
from tests.support import SUPPLIER

BATCH = "/api/now/v1/batch"


def _client(batch_size: int, concurrency: int | None):
    from integrations.systems.auth import MemoryTokenStore
    from integrations.systems.servicenow import build_client
    from integrations.systems.spec import ConnectionSpec
    from tests.conftest import SN_URL

    settings = {"username": "integration.user", "batch_size": batch_size}
    if concurrency is not None:
        settings["write_concurrency"] = concurrency
    spec = ConnectionSpec("servicenow", SN_URL, "basic", settings=settings, secrets={"password": "integration-pass"})
    client = build_client(spec, MemoryTokenStore())
    client.source_column.require(SUPPLIER)
    return client


def _rows(n: int):
    from integrations.systems.servicenow import UpsertRow

    return [UpsertRow(f"K{i}", {"name": f"Vendor {i}", "supplier_number": f"S{i}"}, identity=f"test:K{i}")
            for i in range(n)]


class _Watch:
    """Each batch call held for a while at the HTTP boundary: how many were in at once, from which
    threads; ``drop`` (1-based call numbers): committed, then the answer lost."""

    def __init__(self, sn_sim, hold: float, drop: tuple[int, ...] = ()) -> None:
        self.handle, self.hold, self.drop = sn_sim.handle, hold, drop
        self.lock = threading.Lock()
        self.inside = self.most = self.calls = 0
        self.threads: set[str] = set()
        sn_sim.handle = self

    def __call__(self, request):
        if not (request.method == "POST" and request.url.endswith(BATCH)):
            return self.handle(request)
        with self.lock:
            self.calls += 1
            number = self.calls
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(self.hold)
            answer = self.handle(request)
        finally:
            with self.lock:
                self.inside -= 1
        if number in self.drop:
            raise DropResponse("the answer of this call is lost after its rows were committed")
        return answer


def _mine(sn_sim) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for row in sn_sim.rows(SUPPLIER):
        if str(row.get("u_source_key", "")).startswith("test:"):
            rows.setdefault(row["u_source_key"], []).append(row["sys_id"])
    return rows


@pytest.mark.parametrize(("setting", "most"), [(2, 2), (4, 2)])
def test_the_calls_of_a_write_overlap_up_to_the_limit_and_each_row_lands_once(sandbox, sn_sim, setting, most):
    """Two at most, whatever the connection allows: each call holds one of the instance's API
    worker slots for its whole run."""
    client = _client(10, setting)
    watch = _Watch(sn_sim, hold=0.15)

    outcomes = client.upsert(SUPPLIER, _rows(60))

    assert watch.calls == 6
    assert watch.most == most
    mine = _mine(sn_sim)
    assert sorted(mine) == sorted(f"test:K{i}" for i in range(60)) and all(len(ids) == 1 for ids in mine.values())
    assert {key: (o.action, o.sys_id) for key, o in outcomes.items()} == {
        f"K{i}": ("created", mine[f"test:K{i}"][0]) for i in range(60)}, "each row's own answer, not a neighbour's"


def test_with_a_limit_of_one_the_calls_go_one_after_another_on_the_callers_thread(sandbox, sn_sim):
    client = _client(10, None)  # no setting: one call at a time
    watch = _Watch(sn_sim, hold=0.02)

    outcomes = client.upsert(SUPPLIER, _rows(30))

    assert watch.calls == 3 and watch.most == 1
    assert watch.threads == {threading.current_thread().name}
    assert all(o.action == "created" for o in outcomes.values())


def test_a_lost_answer_among_overlapping_calls_costs_only_its_own_rows_a_look_up(sandbox, sn_sim):
    client = _client(10, 2)
    watch = _Watch(sn_sim, hold=0.1, drop=(2,))  # the second call commits, its answer never comes
    before = len(sn_sim.requests)

    outcomes = client.upsert(SUPPLIER, _rows(40))

    assert all(o.error is None for o in outcomes.values()), "the lost rows were looked up and found"
    mine = _mine(sn_sim)
    assert len(mine) == 40 and all(len(ids) == 1 for ids in mine.values()), "nothing written twice"
    assert {key: o.sys_id for key, o in outcomes.items()} == {f"K{i}": mine[f"test:K{i}"][0] for i in range(40)}
    looked_up = [r for r in sn_sim.requests[before:] if r.method == "GET" and SUPPLIER in r.path]
    assert len(looked_up) == 1, "one look-up, for the lost call's rows"
    assert "u_source_keyIN" in looked_up[0].url
    asked = set(unquote(looked_up[0].url.split("u_source_keyIN", 1)[1].split("&", 1)[0]).split(","))
    # each row by its namespaced identity and its bare key
    assert {key.rpartition(":")[2] for key in asked} == {f"K{i}" for i in range(10, 20)}, "the second call's rows"
    sent = [len(json.loads(r.body)["rest_requests"]) for r in sn_sim.requests[before:] if r.path == BATCH]
    assert sum(sent) == 40, "no row sent twice: the lost call's rows were found, not written again"
    assert watch.calls == len(sent)


def test_unserviced_items_are_sent_again_while_other_calls_are_on_the_wire(sandbox, sn_sim):
    client = _client(20, 2)
    sn_sim.batch_max_items = 7  # the instance services 7 items per call and leaves the rest
    _Watch(sn_sim, hold=0.05)
    before = len(sn_sim.requests)

    outcomes = client.upsert(SUPPLIER, _rows(40))

    assert all(o.error is None and o.action == "created" for o in outcomes.values())
    mine = _mine(sn_sim)
    assert len(mine) == 40 and all(len(ids) == 1 for ids in mine.values())
    sizes = [len(json.loads(r.body)["rest_requests"]) for r in sn_sim.requests[before:] if r.path == BATCH]
    assert sum(min(size, 7) for size in sizes) == 40, "every item serviced exactly once"
