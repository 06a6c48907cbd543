"""X-Request-ID (issue 13, defect 6): validated once, by one middleware, for the admin and the API.

The id groups every audit event of one click or one API call. A caller's id is kept only when it
is 1-64 characters of ``A-Z a-z 0-9 . _ -``; anything else is replaced by a fresh one (never
truncated or cleaned into something the caller did not send), and the id in force is echoed in
the response.
"""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from integrations.models import AuditEvent
from portal.middleware import clean_request_id

FRESH = re.compile(r"[0-9a-f]{32}")
GOOD = ["click-42", "a", "A.b_c-9", "x" * 64, "0f8fad5b-d9cb-469f-a165-70867728950e"]
BAD = ["", "x" * 65, "two words", "<script>", "tab\there", "colon:id", "semi;colon", "ünïcode", "new\nline", "'quote'"]


@pytest.mark.parametrize("value", GOOD)
def test_an_acceptable_id_is_kept_as_sent(value):
    assert clean_request_id(value) == value


@pytest.mark.parametrize("value", [*BAD, None])
def test_anything_else_is_replaced_by_a_fresh_id(value):
    assert FRESH.fullmatch(clean_request_id(value))


def api(sw, name: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(sw.users[name])
    return client


def pause_in_console(sw, **headers):
    return sw.client("operator").post("/admin/integrations/integration/",
                                     {"action": "pause", "_selected_action": [sw.acme.pk]}, **headers)


def pause_through_api(sw, **headers):
    return api(sw, "operator").post(f"/api/integrations/{sw.acme.pk}/pause/", **headers)


def latest_pause_event() -> AuditEvent:
    return AuditEvent.objects.filter(action="integration.paused").latest("pk")


@pytest.mark.parametrize("act", [pause_in_console, pause_through_api], ids=["admin", "api"])
def test_the_callers_id_is_echoed_and_groups_the_audit_events(sw, act):
    response = act(sw, HTTP_X_REQUEST_ID="run-book-7.step_2")
    assert response.status_code in (200, 302)
    assert response["X-Request-ID"] == "run-book-7.step_2"
    assert latest_pause_event().request_id == "run-book-7.step_2"


@pytest.mark.parametrize("act", [pause_in_console, pause_through_api], ids=["admin", "api"])
@pytest.mark.parametrize("sent", ["x" * 100, "id with spaces", "<b>id</b>", "colon:id"])
def test_an_unacceptable_id_is_replaced_the_same_way_for_admin_and_api(sw, act, sent):
    response = act(sw, HTTP_X_REQUEST_ID=sent)
    echoed = response["X-Request-ID"]
    assert FRESH.fullmatch(echoed)
    assert latest_pause_event().request_id == echoed  # not a truncated or cleaned copy of what was sent


@pytest.mark.parametrize("act", [pause_in_console, pause_through_api], ids=["admin", "api"])
def test_without_an_id_the_request_gets_a_fresh_one(sw, act):
    given = act(sw)["X-Request-ID"]
    assert FRESH.fullmatch(given)
    assert latest_pause_event().request_id == given
    assert sw.client("viewer").get("/admin/")["X-Request-ID"] not in ("", given)


def test_every_answer_carries_the_id_even_a_refusal(sw):
    anonymous = APIClient().get("/api/records/", HTTP_X_REQUEST_ID="probe-1")
    assert anonymous.status_code == 401 and anonymous["X-Request-ID"] == "probe-1"
    missing = sw.client("viewer").get("/admin/integrations/syncrecord/999999999/change/", HTTP_X_REQUEST_ID="probe-2")
    assert missing["X-Request-ID"] == "probe-2"
