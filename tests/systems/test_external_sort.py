"""Sorting more entries than are held in memory: sorted runs on disk, merged as they are read."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from integrations.systems import external_sort
from integrations.systems.external_sort import sorted_spilling


def shuffled_rows(count: int, seed: int = 7) -> list[tuple[tuple[str, int, str], dict]]:
    """Intacct-like scan rows with ties on the time, keyed (time, natural key)."""
    rng = random.Random(seed)
    rows = []
    for number in rng.sample(range(1, count * 3), count):
        when = f"2026-11-{rng.randint(1, 28):02d} 08:{rng.randint(0, 5):02d}:00"
        rows.append(((when, 0, str(number).zfill(20)), {"RECORDNO": str(number), "WHENMODIFIED": when}))
    return rows


@pytest.mark.parametrize("window", [1, 3, 64, 1000, 10_000])
def test_every_entry_comes_out_once_in_key_order_whatever_the_window(window):
    rows = shuffled_rows(2000)
    out = list(sorted_spilling(iter(rows), window))
    assert [key for key, _ in out] == sorted(key for key, _ in rows)
    assert sorted(value["RECORDNO"] for _, value in out) == sorted(value["RECORDNO"] for _, value in rows)
    assert all(value == dict(zip(("RECORDNO", "WHENMODIFIED"), (key[2].lstrip("0"), key[0]), strict=True))
               for key, value in out)


def test_more_runs_than_files_kept_open_are_merged_on_the_way():
    rows = shuffled_rows(external_sort.MAX_RUNS ** 2 * 3)
    window = 2  # runs merged on two levels
    assert len(rows) // window > external_sort.MAX_RUNS ** 2
    assert [key for key, _ in sorted_spilling(iter(rows), window)] == sorted(key for key, _ in rows)


def test_values_come_back_exactly_as_they_went_in():
    value = {"A": None, "B": "é ünïcode", "C": ["1", {"D": ""}], "E": ("t", 1)}
    out = list(sorted_spilling([((2, "b"), value), ((1, "a"), value), ((3, "c"), value)], window=1))
    assert [key for key, _ in out] == [(1, "a"), (2, "b"), (3, "c")]
    assert all(v == value for _, v in out)


def _peak_bytes(count: int, window: int) -> int:
    def scan():  # rows made as a vendor's pages would be parsed, never all held by the caller
        rng = random.Random(3)
        for _ in range(count):
            number = rng.randrange(10**9)
            when = f"2026-11-{rng.randint(1, 28):02d} 08:00:00"
            yield (when, 0, str(number).zfill(20)), {"RECORDNO": str(number), "WHENMODIFIED": when}

    tracemalloc.start()
    try:
        handed_out = 0
        for _ in sorted_spilling(scan(), window):
            handed_out += 1
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert handed_out == count


def test_memory_is_bounded_by_the_window_not_by_the_number_of_entries():
    held_whole = _peak_bytes(6000, window=6000)
    spilled = _peak_bytes(6000, window=150)
    spilled_ten_times_more = _peak_bytes(60_000, window=150)
    assert spilled < held_whole / 4
    # ten times the entries: a few more runs open (a buffer each), not ten times the memory
    assert spilled_ten_times_more < held_whole / 2


def test_files_are_closed_when_the_reader_stops_early(monkeypatch):
    opened = []
    real = external_sort.tempfile.TemporaryFile

    def tracking(*args, **kwargs):
        handle = real(*args, **kwargs)
        opened.append(handle)
        return handle

    monkeypatch.setattr(external_sort.tempfile, "TemporaryFile", tracking)
    ordered = sorted_spilling(iter(shuffled_rows(500)), window=50)
    next(ordered)
    assert opened and not any(handle.closed for handle in opened)
    ordered.close()
    assert all(handle.closed for handle in opened)
