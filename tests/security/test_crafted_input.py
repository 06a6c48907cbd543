"""Crafted, read-only requests that used to be HTTP 500s (issue 13, defect 4): each is now a 4xx that says
what is wrong, or the console's own "invalid filter" answer.
"""

from __future__ import annotations

from base64 import b64encode

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from integrations.models import Connection, Mapping, SyncRun
from tests.security.conftest import body_of

HUGE = "99999999999999999999"  # past any 64-bit integer


def api(sw, username: str = "viewer") -> APIClient:
    client = APIClient()
    client.force_authenticate(sw.users[username])
    return client


def cursor(query: str) -> str:
    return b64encode(query.encode("ascii")).decode("ascii")


# --- API cursors --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/audit/", "/api/runs/", "/api/records/"])
@pytest.mark.parametrize("position", ["2024", "x", "9999-12-31 23:59:59-05:00", "0001-01-01 00:00:00+05:00"])
def test_a_cursor_whose_position_is_no_time_of_the_list_is_an_invalid_cursor(sw, path, position):
    response = api(sw).get(path, {"cursor": cursor(f"o=1&p={position}")})
    assert response.status_code == 404
    assert "Invalid cursor" in response.json()["detail"]


def test_a_cursor_the_api_made_still_pages(sw):
    client = api(sw, "superuser" if "superuser" in sw.users else "root")
    first = client.get("/api/audit/", {"page_size": 2}).json()
    second = client.get(first["next"]).json()
    assert second["results"] and {r["id"] for r in second["results"]}.isdisjoint(r["id"] for r in first["results"])


# --- API date filters at the edges of the calendar ---------------------------------------------
def test_until_the_last_day_of_the_calendar_is_a_400_naming_until(sw):
    response = api(sw).get("/api/audit/", {"until": "9999-12-31"})
    assert response.status_code == 400
    assert set(response.json()) == {"until"}
    assert "out of range" in response.json()["until"] and "9999-12-30" in response.json()["until"]


@pytest.mark.parametrize("param, value", [
    ("since", "0001-01-01T00:00:00+05:00"),
    ("until", "9999-12-31T23:59:59-05:00"),
    ("since", "9999-12-31T23:00:00-02:00"),
])
def test_an_offset_that_moves_a_moment_past_the_calendar_is_a_400_naming_the_parameter(sw, param, value):
    response = api(sw).get("/api/audit/", {param: value})
    assert response.status_code == 400
    assert set(response.json()) == {param}
    assert "out of range" in response.json()[param]


@override_settings(TIME_ZONE="Asia/Tokyo")  # east of UTC: a naive first day starts before year 1 in UTC
def test_a_naive_first_day_east_of_utc_is_a_400_not_a_500(sw):
    response = api(sw).get("/api/audit/", {"since": "0001-01-01"})
    assert response.status_code == 400 and "out of range" in response.json()["since"]


def test_the_edges_that_fit_still_filter(sw):
    client = api(sw)
    assert client.get("/api/audit/", {"since": "0001-01-01", "until": "9999-12-30"}).json()["results"]
    assert client.get("/api/audit/", {"until": "9999-12-31T23:59:59+00:00"}).status_code == 200


def test_a_nul_character_in_a_text_filter_is_a_400(sw):
    # PostgreSQL refuses NUL in a string literal (a 500 there); SQLite would answer an empty list
    response = api(sw).get("/api/audit/", {"actor": "ope\x00rator"})
    assert response.status_code == 400 and "NUL" in response.json()["actor"]


# --- console list filters -----------------------------------------------------------------------
@pytest.mark.parametrize("page", ["syncrecord", "failedrecord", "heldrecord"])
@pytest.mark.parametrize("run", [HUGE, "9223372036854775808", "0", "abc", "1" * 5000])
def test_a_run_number_no_run_can_have_is_the_consoles_invalid_filter(sw, page, run):
    response = sw.client("viewer").get(f"/admin/integrations/{page}/", {"run": run})
    assert response.status_code == 302
    assert response["Location"] == f"/admin/integrations/{page}/?e=1"


def test_a_real_run_still_filters_the_records(sw):
    run = SyncRun.objects.filter(integration=sw.acme, stream="invoices").order_by("pk").first()
    response = sw.client("viewer").get("/admin/integrations/syncrecord/", {"run": run.pk})
    assert response.status_code == 200 and f"run #{run.pk}" in body_of(response)


@pytest.mark.parametrize("month", [f"{HUGE}-1", f"1-{HUGE}", "9999-12", "2024-13", "2024-0", "0-1", "May"])
def test_a_month_past_the_calendar_is_the_consoles_invalid_filter(sw, month):
    response = sw.client("viewer").get("/admin/integrations/auditevent/", {"month": month})
    assert response.status_code == 302
    assert response["Location"] == "/admin/integrations/auditevent/?e=1"


def test_exporting_a_month_past_the_calendar_is_a_400(sw):
    response = sw.client("viewer").get("/admin/integrations/auditevent/export/", {"month": f"{HUGE}-1"})
    assert response.status_code == 400


@override_settings(TIME_ZONE="Asia/Tokyo")
def test_the_first_month_of_the_calendar_east_of_utc_is_an_invalid_filter(sw):
    response = sw.client("viewer").get("/admin/integrations/auditevent/", {"month": "0001-01"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


# --- mapping target choices ---------------------------------------------------------------------
@pytest.mark.parametrize("page", [str(10**30), str(2**62), "0", "-5", "two"])
def test_a_target_page_no_list_has_is_a_400_naming_page(sw, page):
    mapping = Mapping.objects.filter(integration=sw.acme).order_by("pk").first()
    response = sw.client("approver").get(f"/admin/integrations/mapping/{mapping.pk}/targets/", {"page": page})
    assert response.status_code == 400
    assert "page" in response.json()["error"]


def test_target_pages_within_reach_still_answer(sw):
    mapping = Mapping.objects.filter(integration=sw.acme, kind="gl_account").order_by("pk").first()
    client = sw.client("approver")
    first = client.get(f"/admin/integrations/mapping/{mapping.pk}/targets/", {"page": 1}).json()
    far = client.get(f"/admin/integrations/mapping/{mapping.pk}/targets/", {"page": 50_000}).json()
    assert first["results"] and far == {"results": [], "pagination": {"more": False}}


# --- the connection form (settings validation is another change of issue 13) -------------------
def test_saving_a_connection_with_null_settings_says_what_is_wrong(sw):
    connection = sw.acme.source
    url = f"/admin/integrations/connection/{connection.pk}/change/"
    client = sw.client("owner")
    form = client.get(url).context["adminform"].form
    data = {name: form.initial.get(name) if form.initial.get(name) is not None else "" for name in form.fields}
    data.update({"tenant": connection.tenant_id, "settings": "null", "forget": []})
    response = client.post(url, data)
    assert response.status_code < 500
    assert response.status_code == 200 and "settings" in response.context["adminform"].form.errors
    assert Connection.objects.get(pk=connection.pk).settings == connection.settings


@pytest.mark.parametrize("query", [{"q": "PI\x00"}, {"stream": "inv\x00ices"}, {"missing": "gl_account:\x00"}])
def test_a_nul_character_in_a_console_search_or_filter_is_an_invalid_filter(sw, query):
    # PostgreSQL refuses NUL in any text it is given (a 500 there); SQLite matched nothing
    response = sw.client("viewer").get("/admin/integrations/heldrecord/", query)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


@pytest.mark.parametrize("query", [{"pk__in": HUGE}, {"business_key__range": "x"}, {"source_snapshot__contains": "x"}])
def test_a_lookup_no_filter_of_the_page_offers_is_a_400(sw, query):
    # Django's admin takes ?<column>__<lookup>= for any column and the database refused these (500s)
    assert sw.client("viewer").get("/admin/integrations/syncrecord/", query).status_code == 400


@pytest.mark.parametrize("bound", ["9999-12-31 23:59:59-05:00", "0001-01-01 00:00:00+05:00"])
def test_a_date_filter_bound_past_the_calendar_is_an_invalid_filter(sw, bound):
    response = sw.client("viewer").get("/admin/integrations/syncrun/", {"started_at__gte": bound})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_the_console_filters_still_filter(sw):
    response = sw.client("viewer").get("/admin/integrations/syncrecord/", {
        "status__exact": "held", "integration__id__exact": sw.acme.pk, "stream": "invoices"})
    assert response.status_code == 200 and response.context["cl"].result_count > 0


def test_a_nul_character_in_a_target_search_is_a_400(sw):
    mapping = Mapping.objects.filter(integration=sw.acme).order_by("pk").first()
    response = sw.client("approver").get(f"/admin/integrations/mapping/{mapping.pk}/targets/", {"term": "6\x00"})
    assert response.status_code == 400 and "term" in response.json()["error"]
