"""Big tables stay fast: every changelist in a fixed number of queries, none counting a table.

The bounds are what the pages cost today (session, user, memberships, Django's own permission
look-ups, the capped count, the page, the filters' small choice lists). An N+1 shows up as a
count that grows with the rows; the second test adds tenants and checks it does not.
"""

from __future__ import annotations

import re
import time
from itertools import cycle

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.demo import x3_servicenow_document
from integrations.engine.runner import run_integration
from integrations.models import ErrorClass, Integration, RecordStatus, SyncRecord
from integrations.tenants import load_document
from tests.conftest import SN_URL, X3_URL

# page → most queries for a tenant member (root needs 3 fewer: no memberships, no permission tables)
CHANGELISTS = {
    "/admin/": 14,  # the dashboard and its inbox (codes holding invoices, failures with their money)
    "/admin/accounts/tenant/": 8,
    "/admin/accounts/membership/": 9,
    "/admin/integrations/connection/": 9,
    "/admin/integrations/integration/": 10,
    "/admin/integrations/mapping/": 8,
    "/admin/integrations/referencerecord/": 8,
    "/admin/integrations/syncrecord/": 10,  # + the user's integration ids (scoping without a join)
    "/admin/integrations/failedrecord/": 10,  # + the user's integration ids (scoping without a join)
    "/admin/integrations/heldrecord/": 10,  # + the user's integration ids (scoping without a join)
    "/admin/integrations/syncrun/": 9,
    "/admin/integrations/auditevent/": 10,
    "/admin/integrations/webhookevent/": 8,
}


def _queries(client, url: str) -> tuple[int, list[str]]:
    client.get(url)  # warm: the session's first use may write
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


@pytest.mark.parametrize("url", CHANGELISTS)
@pytest.mark.parametrize("user", ["owner", "viewer", "outsider"])
def test_each_changelist_costs_a_fixed_number_of_queries(w, url, user, django_assert_max_num_queries):
    client = w.client(user)
    client.get(url)
    with django_assert_max_num_queries(CHANGELISTS[url]):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("url", CHANGELISTS)
def test_superuser_changelists_cost_fewer(w, url, django_assert_max_num_queries):
    client = w.client("root")
    client.get(url)
    with django_assert_max_num_queries(CHANGELISTS[url] - 3):
        assert client.get(url).status_code == 200


def test_query_counts_do_not_grow_with_the_rows(w):
    client = w.client("root")
    before = {url: _queries(client, url)[0] for url in CHANGELISTS}
    for slug in ("initech", "umbrella"):
        load_document(x3_servicenow_document(X3_URL, SN_URL, slug=slug, name=slug.title(),
                                             x3_refresh_token=w.x3.issue_refresh_token("ml-connector")))
        run_integration(Integration.objects.get(tenant__slug=slug))
    after = {url: _queries(client, url)[0] for url in CHANGELISTS}
    assert after == before


def _bulk_records(integration: Integration, n: int) -> None:
    kinds = cycle([(RecordStatus.SYNCED, "", ""), (RecordStatus.FAILED, ErrorClass.DATA, ""),
                   (RecordStatus.HELD, "", "|gl_account:61200|"), (RecordStatus.FAILED, ErrorClass.TRANSIENT, ""),
                   (RecordStatus.SKIPPED, "", "")])
    rows = []
    for i, (status, error_class, missing) in zip(range(n), kinds, strict=False):
        rows.append(SyncRecord(integration=integration, stream="invoices", source_key=f"BULK{i:06d}",
                               business_key=f"BULK{i:06d}", status=status, error_class=error_class, missing=missing,
                               error_message="Supplier unknown" if error_class else ""))
    SyncRecord.objects.bulk_create(rows, batch_size=2000)


BIG_PAGES = [
    "/admin/integrations/syncrecord/",
    "/admin/integrations/syncrecord/?p=7",
    "/admin/integrations/syncrecord/?status__exact=failed",
    "/admin/integrations/syncrecord/?error_class__exact=data&age=24h",
    "/admin/integrations/syncrecord/?stream=invoices&integration__id__exact={acme}",
    "/admin/integrations/syncrecord/?q=BULK09999",
    "/admin/integrations/syncrecord/?o=-7",
    "/admin/integrations/failedrecord/",
    "/admin/integrations/failedrecord/?error_class__exact=transient",
    "/admin/integrations/heldrecord/",
    "/admin/integrations/heldrecord/?missing=gl_account:61200",
]


def test_records_changelists_with_100k_rows_answer_in_bounded_queries_without_counting_the_table(w):
    _bulk_records(w.acme, 100_000)
    client = w.client("owner")
    for url in BIG_PAGES:
        url = url.format(acme=w.acme.pk)
        started = time.monotonic()
        count, sqls = _queries(client, url)
        elapsed = time.monotonic() - started
        assert count <= 10, url
        for sql in sqls:
            if re.search(r"COUNT\(", sql) and "syncrecord" in sql:
                assert "LIMIT 10001" in sql, f"{url} counts the whole table: {sql}"
        assert elapsed < 5, f"{url} took {elapsed:.1f}s"
    response = client.get("/admin/integrations/syncrecord/")
    assert b"More than 10000 sync records" in response.content


@pytest.mark.parametrize("url", ["/admin/integrations/syncrecord/", "/admin/integrations/failedrecord/",
                                 "/admin/integrations/heldrecord/"])
def test_a_members_records_are_scoped_by_integration_ids_not_a_join_on_the_tenant(w, url):
    # with the join SQLite chose a tenant-wide index and sorted all the tenant's records: 1.5 s at a million
    _, statements = _queries(w.client("viewer"), url)
    page = [sql for sql in statements if sql.startswith('SELECT "integrations_syncrecord"."id", "integrations_syncrecord"."integration_id"')]
    assert len(page) == 1, statements
    where = page[0].split(" WHERE ", 1)[1]
    assert "tenant_id" not in where
    assert '"integrations_syncrecord"."integration_id" IN (' in where
    records = SyncRecord.objects.filter(integration__tenant__memberships__user=w.users["viewer"])
    assert records.exists()
