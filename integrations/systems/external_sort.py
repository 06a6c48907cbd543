"""Sorting more entries than should be held in memory at once.

A vendor that cannot sort its answers (Intacct's ``readByQuery``) still has to be read in the
order a checkpoint needs. Holding every changed record to sort it makes memory grow with the
ledger; reading it in several ordered passes makes the calls grow with it instead. Here the
entries are read once: each ``window`` of them is sorted and written to an anonymous temporary
file (a sorted run), and the runs are merged as the sorted entries are handed out, so memory
holds a window plus a small chunk per run, and the vendor is asked once.

The runs are written with :mod:`pickle`, which keeps tuples, strings and ``None`` exactly as
they were: each file is created by :func:`tempfile.TemporaryFile` (no name on disk, readable by
this process only) and read back only by the function that wrote it.
"""

from __future__ import annotations

import heapq
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, closing
from operator import itemgetter
from typing import IO, Any

Entry = tuple[Any, Any]  # (key, value): ordered by the key alone

CHUNK = 256  # at most this many entries per pickled chunk: a run being merged holds one in memory
MAX_RUNS = 16  # runs of one level merged into one of the next (see sorted_spilling)

_key = itemgetter(0)


def sorted_spilling(entries: Iterable[Entry], window: int) -> Iterator[Entry]:
    """``entries`` in the order of their keys, with at most ``window`` of them held to be sorted
    (plus a chunk per open run, together about another window). Keys must compare with each other (e.g. flat tuples of
    strings and numbers); equal keys keep no particular order."""
    window = max(1, window)
    chunk = max(1, min(CHUNK, window // MAX_RUNS))  # the chunks of the open runs: about a window at most
    with ExitStack() as files:
        # runs by level: MAX_RUNS runs of a level are merged into one of the next, so each entry
        # is rewritten once per level (a logarithm of the count) and few files are open at once
        levels: list[list[IO[bytes]]] = []
        held: list[Entry] = []
        for entry in entries:
            held.append(entry)
            if len(held) >= window:
                held.sort(key=_key)
                run, level = files.enter_context(_spill(held, chunk)), 0
                held = []
                while True:
                    if level == len(levels):
                        levels.append([])
                    levels[level].append(run)
                    if len(levels[level]) < MAX_RUNS:
                        break
                    run = files.enter_context(_spill(heapq.merge(*map(_read, levels[level]), key=_key), chunk))
                    for merged in levels[level]:
                        merged.close()
                    levels[level], level = [], level + 1
        held.sort(key=_key)
        runs = [run for level in levels for run in level]
        if not runs:
            yield from held
            return
        yield from heapq.merge(*map(_read, runs), held, key=_key)


def sorted_pages(entries: Iterable[Entry], window: int, size: int,
                 item: Callable[[Entry], Any] = itemgetter(1)) -> Iterator[list[Any]]:
    """Pages of ``size`` items (``item(entry)``: the value by default) of :func:`sorted_spilling`'s
    order; its temporary files are closed as soon as the reader stops."""
    with closing(sorted_spilling(entries, window)) as ordered:
        page: list[Any] = []
        for entry in ordered:
            page.append(item(entry))
            if len(page) >= size:
                yield page
                page = []
        if page:
            yield page


def _spill(entries: Iterable[Entry], size: int) -> IO[bytes]:
    run = tempfile.TemporaryFile(prefix="ml-connector-sort-")  # noqa: SIM115 - handed to the caller, who closes it
    try:
        chunk: list[Entry] = []
        for entry in entries:
            chunk.append(entry)
            if len(chunk) >= size:
                pickle.dump(chunk, run, protocol=pickle.HIGHEST_PROTOCOL)
                chunk = []
        if chunk:
            pickle.dump(chunk, run, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        run.close()
        raise
    return run


def _read(run: IO[bytes]) -> Iterator[Entry]:
    run.seek(0)
    while True:
        try:
            chunk = pickle.load(run)  # noqa: S301 - our own anonymous temporary file, see the module docstring
        except EOFError:
            return
        yield from chunk
