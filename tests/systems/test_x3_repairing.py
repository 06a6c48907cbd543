"""A refresh answer lost after Sage X3 rotated the refresh token leaves the old token spent and the new
one never delivered: the connection says "re-pairing needed" with what to do, instead of failing
on and on with a bare "refused the grant"."""

from __future__ import annotations

import pytest
import requests
import responses

from integrations.engine.runner import run_stream
from integrations.models import Connection, RunStatus
from integrations.systems.auth import REPAIR, oauth2_fetcher
from integrations.systems.errors import AuthError
from integrations.systems.http import HttpClient

pytestmark = pytest.mark.django_db


def test_a_lost_answer_to_a_rotating_refresh_asks_for_re_pairing(integration, x3_sim):
    x3_sim.oauth.state.access_tokens.clear()  # the next X3 call needs a refresh
    x3_sim.oauth.lose_refresh_answers = 1  # X3 rotates the refresh token, then the answer is lost

    run = run_stream(integration, "x3_gl_accounts")

    assert run.status == RunStatus.FAILED
    assert "Re-pairing needed" in run.error and "Pair the connection again" in run.error
    x3 = Connection.objects.get(pk=integration.source_id)
    assert x3.needs_reauth and "Re-pairing needed" in x3.last_error


@responses.activate
def test_a_refresh_whose_first_answer_is_lost_is_asked_once_more_and_accepted():
    """Lost before the server did anything: the second ask with the same token is answered."""
    url = "https://x3.test/token"
    responses.post(url, body=requests.exceptions.ConnectionError("reset by peer"))
    responses.post(url, json={"access_token": "a2", "token_type": "Bearer", "expires_in": 300,
                              "refresh_token": "r2", "refresh_token_expires_in": 86400})
    fetch = oauth2_fetcher(HttpClient("https://x3.test"), url, client_id="c", client_secret="s",
                           grant="refresh_token", refresh_token="r1")
    token = fetch(None)
    assert (token.access_token, token.refresh_token) == ("a2", "r2")
    assert len(responses.calls) == 2
    assert all("refresh_token=r1" in call.request.body for call in responses.calls)


@responses.activate
def test_a_refused_second_ask_after_a_lost_answer_is_re_pairing_not_a_retry_loop():
    url = "https://x3.test/token"
    responses.post(url, body=requests.exceptions.ConnectionError("reset by peer"))
    responses.post(url, status=400, json={"error": "invalid_grant", "error_description": "Refresh token already used"})
    fetch = oauth2_fetcher(HttpClient("https://x3.test"), url, client_id="c", client_secret="s",
                           grant="refresh_token", refresh_token="r1")
    with pytest.raises(AuthError, match="Re-pairing needed") as caught:
        fetch(None)
    assert caught.value.code == REPAIR and len(responses.calls) == 2
