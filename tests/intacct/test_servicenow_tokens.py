"""ServiceNow OAuth tokens on the Intacct pair: refreshed on a 401, or when within 5 minutes of expiry."""

from __future__ import annotations

from datetime import timedelta

from integrations.engine.runner import run_stream
from integrations.models import AuditEvent
from integrations.systems.auth import Token, utcnow


def token_grants(sn_sim) -> int:
    return sum(1 for r in sn_sim.requests if r.path == "/oauth_token.do")



def test_a_token_refused_with_401_is_refreshed_once_and_the_call_retried(intacct_integration, sn_sim):
    assert run_stream(intacct_integration, "sn_gl_accounts").status == "succeeded"
    sn_sim.expire_tokens()  # the instance drops the token before its announced expiry
    run = run_stream(intacct_integration, "sn_cost_centers")
    assert run.status == "succeeded" and run.read == 6
    assert token_grants(sn_sim) == 2
    assert AuditEvent.objects.filter(action="connection.reauthenticated",
                                     connection_id=intacct_integration.target_id).exists()


def test_a_token_within_five_minutes_of_expiry_is_refreshed_before_it_is_used(intacct_integration, sn_sim):
    run_stream(intacct_integration, "sn_gl_accounts")
    target = intacct_integration.target
    target.refresh_from_db()
    cached = Token.from_dict(target.token_cache)
    now = utcnow()
    ageing = Token(cached.access_token, expires_at=now + timedelta(minutes=4), issued_at=now - timedelta(minutes=26))
    type(target).objects.filter(pk=target.pk).update(token_cache={k: v for k, v in ageing.to_dict().items() if v})
    target.refresh_from_db()
    requests_before = len(sn_sim.requests)
    run = run_stream(intacct_integration, "sn_cost_centers")
    assert run.status == "succeeded"
    first = sn_sim.requests[requests_before]
    assert first.path == "/oauth_token.do"  # refreshed first: no call went out on the ageing token
    assert token_grants(sn_sim) == 2


def test_a_token_with_more_than_five_minutes_left_is_reused(intacct_integration, sn_sim):
    run_stream(intacct_integration, "sn_gl_accounts")
    target = intacct_integration.target
    target.refresh_from_db()
    cached = Token.from_dict(target.token_cache)
    now = utcnow()
    fresh = Token(cached.access_token, expires_at=now + timedelta(minutes=6), issued_at=now - timedelta(minutes=24))
    type(target).objects.filter(pk=target.pk).update(token_cache={k: v for k, v in fresh.to_dict().items() if v})
    target.refresh_from_db()
    run_stream(intacct_integration, "sn_cost_centers")
    assert token_grants(sn_sim) == 1
