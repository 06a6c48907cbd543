"""Sage X3 feeds as the SData spec and X3's help describe them (issue 9, API_FACTS 9): a page whose
``$links.$next`` is missing while ``$totalResults`` says more exist is an error naming the numbers;
a feed that omits ``$links`` altogether is paged by the client; a 500 naming an unknown property
of ``where`` is a configuration error naming it, sent once.
"""

from __future__ import annotations

import json

import pytest

from integrations.engine.runner import run_integration
from integrations.models import Connection, RunStatus
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import SystemicError, TransientError
from integrations.systems.http import HttpPolicy
from integrations.systems.sage_x3 import build_client
from integrations.systems.spec import ConnectionSpec
from tests.conftest import X3_URL
from tests.support import SUPPLIER, assert_suppliers_match_x3, set_integration_settings, source_key_counts

SUPPLIERS = 25  # in the demo folder


def x3_client(**settings):
    spec = ConnectionSpec("sage_x3", X3_URL, "basic", company="SEED",
                          settings={"username": "admin", **settings}, secrets={"password": "x3-demo-pass"})
    return build_client(spec, MemoryTokenStore(), policy=HttpPolicy(backoff_base=0.001, backoff_max=0.01))


def query_calls(x3_sim, klass: str = "BPSUPPLIER") -> list:
    return [r for r in x3_sim.requests if r.path.endswith(f"/{klass}")]


def in_feed_order(records: list[dict]) -> list[str]:
    return [r["BPSNUM"] for r in sorted(records, key=lambda r: (r["UPDDATTIM"], r["BPSNUM"]))]


# --- paging -----------------------------------------------------------------------------------
def test_the_simulator_counts_its_feed_like_sdata(sandbox, x3_sim):
    first = next(iter(x3_client(page_size=10).iter_pages("BPSUPPLIER")))

    body = json.loads(x3_sim.handle(query_calls(x3_sim)[0]).body)
    assert len(first) == 10
    assert (body["$totalResults"], body["$startIndex"], body["$itemsPerPage"]) == (25, 1, 10)


def test_a_page_without_a_next_link_while_more_records_exist_is_an_error_naming_the_numbers(sandbox, x3_sim):
    x3_sim.lose_next_link_after = 10
    read: list[dict] = []

    with pytest.raises(TransientError) as cut:
        for page in x3_client(page_size=5).iter_pages("BPSUPPLIER"):
            read.extend(page)

    assert len(read) == 10
    assert cut.value.code == "feed_cut_short"
    assert "ended the BPSUPPLIER feed after 10 of its 25 records ($totalResults)" in str(cut.value)


def test_a_feed_without_links_is_paged_by_the_client_after_the_last_record_read(sandbox, x3_sim):
    x3_sim.omit_links = True

    pages = list(x3_client(page_size=7).iter_pages("BPSUPPLIER"))

    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert [r["BPSNUM"] for page in pages for r in page] == in_feed_order(x3_sim.records("BPSUPPLIER"))
    follow_ups = [r.param("where") for r in query_calls(x3_sim)[1:]]
    assert len(follow_ups) == 3 and all(" gt @" in where for where in follow_ups), "keyset, not an offset"


def test_a_feed_without_links_in_another_order_is_paged_by_start_index(sandbox, x3_sim):
    x3_sim.omit_links = True

    pages = list(x3_client(page_size=10).iter_pages("BPSUPPLIER", order_by=["BPSNUM"]))

    assert [r["BPSNUM"] for page in pages for r in page] == sorted(s["BPSNUM"] for s in x3_sim.records("BPSUPPLIER"))
    assert [r.param("startIndex") for r in query_calls(x3_sim)] == [None, "11", "21"]


@pytest.mark.django_db
def test_the_x3_flow_reads_every_supplier_from_a_feed_without_links(integration, x3_sim, sn_sim):
    x3_sim.omit_links = True
    set_integration_settings(integration, page_size=7)

    [run] = run_integration(integration, streams=["suppliers"])

    assert run.status == RunStatus.SUCCEEDED and run.read == SUPPLIERS
    assert_suppliers_match_x3(x3_sim, sn_sim)


@pytest.mark.django_db
def test_a_feed_cut_short_fails_the_stream_naming_the_numbers_and_the_next_run_reads_the_rest(integration, x3_sim,
                                                                                            sn_sim):
    x3_sim.lose_next_link_after = 10
    set_integration_settings(integration, page_size=5)

    [cut] = run_integration(integration, streams=["suppliers"])

    assert "after 10 of its 25 records" in cut.error
    assert len(sn_sim.rows(SUPPLIER)) == 10, "what was read is synced"

    x3_sim.lose_next_link_after = None
    run_integration(integration, streams=["suppliers"])

    assert_suppliers_match_x3(x3_sim, sn_sim)
    assert set(source_key_counts(sn_sim, SUPPLIER).values()) == {1}


# --- errors -----------------------------------------------------------------------------------
def test_an_unknown_property_in_where_is_a_configuration_error_naming_it_sent_once(sandbox, x3_sim):
    client = x3_client(x3_fields={"BPSUPPLIER": {"updated": "UPDDATTIMX"}})

    with pytest.raises(SystemicError) as refused:
        list(client.iter_pages("BPSUPPLIER", since="2026-01-01T00:00:00Z"))

    assert refused.value.code == "unknown_property" and refused.value.status == 500
    assert "does not know the property UPDDATTIMX used in the query's where filter" in str(refused.value)
    assert len(query_calls(x3_sim)) == 1, "not retried"


@pytest.mark.django_db
def test_a_run_with_an_unknown_where_property_stops_and_flags_the_x3_connection(integration, x3_sim):
    run_integration(integration, streams=["suppliers"])  # the next run filters on the update time
    Connection.objects.filter(pk=integration.source_id).update(settings={
        **integration.source.settings, "x3_fields": {"BPSUPPLIER": {"updated": "UPDDATTIMX"}}})
    integration.source.refresh_from_db()
    before = len(query_calls(x3_sim))
    [run] = run_integration(integration, streams=["suppliers"])

    assert run.status == RunStatus.FAILED and "UPDDATTIMX" in run.error
    assert len(query_calls(x3_sim)) == before + 1
    assert "UPDDATTIMX" in Connection.objects.get(pk=integration.source_id).last_error
