"""What people and systems send the portal, drawn at random: never a 5xx, whoever sends it.

- API: every operation of the OpenAPI schema, with drawn query strings (its declared filters,
  cursors and page sizes among random keys) and drawn JSON bodies, by every role, on both tenants'
  ids and on ids that cannot exist.
- Console: every changelist with drawn query strings (the keys its own filters read, found from
  the page's filter specs, plus sorting, paging, search and random keys); the mapping targets and
  the audit export; the connection form saved with drawn settings (``null`` included).
- Webhook inbox: drawn pushed payloads, shown on the inbox pages, never unescaped.

The two tenants come from ``tests/security/conftest.py``; each example runs in a savepoint that
is rolled back, so one example's writes never change the next one's world.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from integrations.admin.base import TenantScopedAdmin
from integrations.models import Connection, Mapping, WebhookEvent
from tests.fuzz.wire import JSON, STORABLE_JSON, STORABLE_TEXT
from tests.security.conftest import ROLE_USERS, XSS, body_of

HUGE = "99999999999999999999"
EDGES = st.sampled_from([
    "", " ", "0", "-1", "1", HUGE, "1" * 5000, "1e400", "NaN", "true", "null", "[]", "{}", "\x00", "%00", "%",
    "9999-12-31", "0001-01-01", "2024-02-30", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
    "2024-05-31T10:00:00+99:00", f"{HUGE}-1", "9999-12", "2024-13", "' OR 1=1 --", "a" * 1000, XSS[0], XSS[1],
    "failed", "held", "transient", "gl_account:61200", "invoices", "acme", "globex", "-created_at", "0.1",
])
VALUES = st.one_of(EDGES, EDGES, st.text(max_size=40), st.integers(-(2**70), 2**70).map(str))
CURSOR = st.one_of(
    st.text(max_size=30),
    st.tuples(st.sampled_from(["o", "r", "p"]), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.lists(st.tuples(st.sampled_from(["o", "r", "p", "x"]), VALUES), max_size=3).map(
        lambda kvs: urlencode(kvs)),
).map(lambda raw: base64.b64encode(raw.encode("utf-8", "replace")).decode("ascii"))
SETTINGS_TEXT = st.one_of(st.sampled_from(["null", "", "[]", "1", '"x"', "{", '{"page_size": "x"}',
                                           '{"page_size": -1}', '{"page_size": 1e400}', '{"tables": []}']),
                          JSON.map(lambda v: json.dumps(v, allow_nan=True)))

pytestmark = pytest.mark.django_db
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def by_role(sworld, django_db_blocker) -> dict[str, Client]:
    """A signed-in client per role (one session each for the whole module)."""
    made = {}
    with django_db_blocker.unblock():
        for role, username in ROLE_USERS.items():
            made[role] = Client(raise_request_exception=False)
            if username:
                made[role].force_login(sworld.users[username])
    return made


def outcome(response: Any) -> str:
    exc = getattr(response, "exc_info", None)
    return f"HTTP {response.status_code}" + (f" {exc[0].__name__}: {exc[1]}" if exc else "")


def rolled_back(send):
    with transaction.atomic():
        response = send()
        body = body_of(response)
        transaction.set_rollback(True)
    return response, body


# --- the API ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api_operations() -> list[tuple[str, str, list[str], bool]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method.upper(), [p["name"] for p in op.get("parameters", []) if p["in"] == "query"],
             "requestBody" in op)
            for path, methods in schema["paths"].items() for method, op in methods.items()]


@FUZZ
@given(data=st.data())
def test_any_api_list_query_is_answered_without_a_5xx(sw, by_role, api_operations, data):
    lists = [(path, params) for path, method, params, _ in api_operations if method == "GET" and params]
    path, params = data.draw(st.sampled_from(lists), label="list")
    role = data.draw(st.sampled_from(sorted(by_role)), label="role")
    keys = st.one_of(st.sampled_from([*params, "cursor", "page", "page_size"]), st.sampled_from(["format", "x"]))
    query = data.draw(st.dictionaries(keys, VALUES, min_size=1, max_size=3), label="query")
    if "cursor" in query:
        query["cursor"] = data.draw(CURSOR, label="cursor")
    url = f"{path}?{urlencode(query)}"
    response, _ = rolled_back(lambda: by_role[role].get(url, headers={"Accept": "application/json"}))
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, f"{role} GET {url}: {outcome(response)}"


@FUZZ
@given(data=st.data())
def test_any_api_request_body_is_answered_without_a_5xx(sw, by_role, api_operations, data):
    path, method, _, has_body = data.draw(st.sampled_from([op for op in api_operations if op[1] != "GET"]),
                                          label="operation")
    role = data.draw(st.sampled_from(sorted(by_role)), label="role")
    pk = data.draw(st.sampled_from([str(sw.acme.pk), str(sw.globex.pk), "0", HUGE, "1" * 30]), label="id")
    url = path.replace("{id}", pk)
    body = data.draw(st.one_of(JSON, st.fixed_dictionaries({}, optional={
        "ids": st.one_of(JSON, st.lists(st.one_of(st.integers(-5, 2**70), st.text(max_size=5)), max_size=3)),
        "reason": VALUES, "tenant": VALUES, "name": VALUES, "settings": JSON, "secrets": JSON, "url": VALUES,
        "enabled": JSON, "target_code": VALUES, "streams": JSON, "system": VALUES, "username": VALUES,
        "password": VALUES})) if has_body else JSON, label="body")
    garbled = data.draw(st.booleans(), label="garbled")
    raw = json.dumps(body, allow_nan=True)
    raw = raw[:-1] + "\xff" if garbled else raw
    response, _ = rolled_back(lambda: by_role[role].generic(method, url, raw, content_type="application/json"))
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, f"{role} {method} {url}: {outcome(response)}"


# --- the console --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def changelists(sworld) -> list[tuple[str, list[str], list[str]]]:
    """Each console list with the keys its own filters read (from the page's filter specs) and free
    lookups on each of its columns (``?pk__in=``, ``?name__range=``), which Django's admin would take.

    The portal's own pages only: the pages of Django's user admin, django-q, knox and axes are
    Django's and those apps' as they ship (superusers only), and accept free lookups Django checks
    only at the database (see the report of issue 13).
    """
    request = RequestFactory().get("/")
    request.user = sworld.users["root"]
    pages = []
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, TenantScopedAdmin):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        changelist = model_admin.get_changelist_instance(request)
        keys = {key for spec in changelist.filter_specs for key in spec.expected_parameters()}
        free = {f"{f.name}__{lookup}" for f in model._meta.concrete_fields for lookup in ("in", "gt", "range")}
        pages.append((url, sorted(keys), sorted(free)))
    return pages


@FUZZ
@given(data=st.data())
def test_any_changelist_query_string_is_answered_without_a_5xx(sw, by_role, changelists, data):
    url, keys, free = data.draw(st.sampled_from(changelists), label="page")
    role = data.draw(st.sampled_from(sorted(by_role)), label="role")
    own = st.sampled_from([*keys, "q", "o", "p", "all", "e", "_popup", "_to_field", "_changelist_filters"])
    names = st.one_of(own, own, own, own, own, st.sampled_from([*free, "integration__tenant__slug", "x"]))
    query = data.draw(st.dictionaries(names, VALUES, max_size=4), label="query")
    export = url.endswith("/auditevent/") and data.draw(st.booleans(), label="export")
    target = (url + "export/" if export else url) + ("?" + urlencode(query) if query else "")
    response, _ = rolled_back(lambda: by_role[role].get(target))
    event(f"HTTP {response.status_code}")
    assert response.status_code < 500, f"{role} GET {target}: {outcome(response)}"


@FUZZ
@given(data=st.data())
def test_any_mapping_target_query_is_answered_without_a_5xx(sw, by_role, data):
    mapping = Mapping.objects.filter(integration=sw.acme).order_by("pk").first()
    query = data.draw(st.dictionaries(st.sampled_from(["page", "term", "x"]), VALUES, max_size=3), label="query")
    url = f"/admin/integrations/mapping/{mapping.pk}/targets/?{urlencode(query)}"
    response, _ = rolled_back(lambda: by_role["approver"].get(url))
    assert response.status_code < 500, f"GET {url}: {outcome(response)}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(settings_text=SETTINGS_TEXT)
def test_the_connection_form_saved_with_any_settings_answers_without_a_5xx(sw, by_role, settings_text):
    connection = sw.acme.target
    url = f"/admin/integrations/connection/{connection.pk}/change/"
    client = by_role["admin"]
    form = client.get(url).context["adminform"].form
    data = {name: form.initial.get(name) if form.initial.get(name) is not None else "" for name in form.fields}
    data.update({"tenant": connection.tenant_id, "settings": settings_text, "forget": []})
    response, _ = rolled_back(lambda: client.post(url, data))
    assert response.status_code < 500, f"settings={settings_text!r}: {outcome(response)}"
    if response.status_code == 200:  # not saved: the form says why, on the settings field
        assert "settings" in response.context["adminform"].form.errors
    assert Connection.objects.get(pk=connection.pk).settings == connection.settings  # rolled back either way


# --- the webhook inbox ----------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(payload=STORABLE_JSON.filter(lambda v: v is not None), event_type=STORABLE_TEXT, event_id=STORABLE_TEXT)
def test_any_pushed_event_shows_in_the_inbox_escaped(sw, by_role, payload, event_type, event_id):
    def send():
        event = WebhookEvent.objects.create(connection=sw.acme.target, event_id=f"fuzz-{event_id}"[:200],
                                            event_type=event_type[:100], payload=payload)
        client = by_role["viewer"]
        listing = client.get("/admin/integrations/webhookevent/")
        page = client.get(f"/admin/integrations/webhookevent/{event.pk}/change/")
        return listing, page

    with transaction.atomic():
        listing, page = send()
        bodies = [body_of(listing), body_of(page)]
        transaction.set_rollback(True)
    assert listing.status_code == 200 and page.status_code == 200, (outcome(listing), outcome(page))
    for body in bodies:
        assert not any(marker in body for marker in XSS)
