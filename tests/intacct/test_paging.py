"""readByQuery / readMore paging on WHENMODIFIED, and pages in (WHENMODIFIED, key) order."""

from __future__ import annotations

import pytest
from lxml import etree

from integrations.systems.errors import SystemicError
from integrations.systems.intacct import to_cursor


def functions_sent(sim, name: str) -> list[etree._Element]:
    found = []
    for request in sim.requests:
        root = etree.fromstring(request.body)
        found.extend(root.iter(name))
    return found


def test_it_pages_with_readmore_by_result_id_until_nothing_remains(make_client, intacct_sim):
    pages = list(make_client(page_size=10).iter_query("APBILL", "", ["RECORDNO"]))
    assert [len(p) for p in pages] == [10, 10, 10, 6]
    query = functions_sent(intacct_sim, "readByQuery")
    more = functions_sent(intacct_sim, "readMore")
    assert len(query) == 1 and query[0].findtext("pagesize") == "10"
    assert len(more) == 3 and all(m.findtext("resultId") for m in more)


def test_the_page_size_is_configurable_up_to_1000(make_client):
    assert make_client(page_size=1000).page_size == 1000
    with pytest.raises(SystemicError, match="between 1 and 1000"):
        make_client(page_size=1001)


def test_changes_are_asked_for_with_the_documented_whenmodified_format(make_client, intacct_sim):
    list(make_client().iter_changed("APBILL", "2025-12-02 08:30:00", fields=["RECORDNO", "WHENMODIFIED"]))
    query = functions_sent(intacct_sim, "readByQuery")[0].findtext("query")
    assert query == "WHENMODIFIED >= '12/02/2025 08:30:00'"


def test_changed_records_come_in_whenmodified_then_key_order_though_intacct_cannot_sort(make_client, intacct_sim):
    raw = [row["RECORDNO"] for page in make_client().iter_query("APBILL", "", ["RECORDNO"]) for row in page]
    assert raw == sorted(raw, key=int)  # the gateway answers in RECORDNO order...
    rows = [row for page in make_client().iter_changed("APBILL", "", fields=["RECORDNO", "WHENMODIFIED"])
            for row in page]
    keys = [(to_cursor(r["WHENMODIFIED"]), int(r["RECORDNO"])) for r in rows]
    assert keys == sorted(keys) and len(keys) == 36  # ...which is not WHENMODIFIED order
    assert [r["RECORDNO"] for r in rows] != raw


def test_a_small_scan_window_still_reads_everything_once_including_ties(make_client, intacct_sim):
    def scan(client) -> tuple[list[str], int]:
        before = len(intacct_sim.requests)
        keys = [r["RECORDNO"] for page in client.iter_changed("APBILL", "", fields=["RECORDNO", "WHENMODIFIED"])
                for r in page]
        calls = [request for request in intacct_sim.requests[before:]
                 if b"<readByQuery>" in request.body or b"<readMore>" in request.body]
        return keys, len(calls)

    whole, calls_whole = scan(make_client(page_size=5))
    windowed, calls_windowed = scan(make_client(scan_window=3, page_size=5))
    assert windowed == whole and len(whole) == 36
    # sorted on disk beyond the window: still one scan of the ledger, not one per window
    assert calls_windowed == calls_whole == 8
    client = make_client(scan_window=3, page_size=2)
    assert max(len(page) for page in client.iter_changed("APBILL", "", fields=["RECORDNO"])) <= 2


def test_the_lower_bound_is_inclusive(make_client, intacct_sim):
    rows = [r for page in make_client().iter_changed("APBILL", "", fields=["RECORDNO", "WHENMODIFIED"]) for r in page]
    middle = to_cursor(rows[10]["WHENMODIFIED"])
    later = [r for page in make_client().iter_changed("APBILL", middle, fields=["RECORDNO", "WHENMODIFIED"])
             for r in page]
    assert later[0]["RECORDNO"] in {r["RECORDNO"] for r in rows if to_cursor(r["WHENMODIFIED"]) == middle}
    assert len(later) == len([r for r in rows if to_cursor(r["WHENMODIFIED"]) >= middle])


def test_read_returns_whole_bills_with_their_lines(make_client):
    bills = make_client().read("APBILL", ["101", "102"])
    assert [b["RECORDNO"] for b in bills] == ["101", "102"]
    assert all(isinstance(b["APBILLITEMS"], list) and b["APBILLITEMS"] for b in bills)
