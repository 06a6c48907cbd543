"""A 401 refreshes the token once and resends the call once; a second 401 stops the run.

ServiceNow tokens are expired in the simulator between two pages of a run (the run's own
progress callback), so the run holds a token ServiceNow no longer accepts, exactly as when an
instance admin revokes tokens or the instance restarts.
"""

from __future__ import annotations

import pytest

from integrations.engine.runner import run_integration, run_stream
from integrations.models import AuditEvent, Connection, RecordStatus, RunStatus, StreamState, SyncRecord
from integrations.sandbox.base import Faults
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import AuthError
from integrations.systems.servicenow import build_client
from integrations.systems.spec import ConnectionSpec
from tests.conftest import SN_URL
from tests.support import REFERENCE_STREAMS, SUPPLIER, set_integration_settings, source_key_counts

pytestmark = pytest.mark.django_db


def token_requests(sn_sim) -> int:
    return sum(1 for r in sn_sim.requests if r.path == "/oauth_token.do")


def bearer(request) -> str:
    return (request.header("Authorization") or "").removeprefix("Bearer ")


class AfterFirstPage:
    """A run's progress callback that breaks ServiceNow's tokens once, after page one."""

    def __init__(self, sn_sim, faults: Faults | None = None) -> None:
        self.sn_sim = sn_sim
        self.faults = faults
        self.revoked_token = ""
        self.requests_before = 0

    def __call__(self, run) -> None:
        if self.revoked_token:
            return
        self.revoked_token = Connection.objects.get(pk=run.integration.target_id).token_cache["access_token"]
        self.requests_before = len(self.sn_sim.requests)
        self.sn_sim.expire_tokens()
        if self.faults:
            self.sn_sim.set_faults(self.faults)


@pytest.fixture
def paged(integration):
    run_integration(integration, streams=REFERENCE_STREAMS)
    set_integration_settings(integration, page_size=10)  # 25 suppliers: three pages
    return integration


def test_a_401_mid_run_refreshes_the_token_once_and_resends_the_call_once(paged, sn_sim):
    hook = AfterFirstPage(sn_sim)

    run = run_stream(paged, "suppliers", progress=hook)

    assert run.status == RunStatus.SUCCEEDED, run.error
    after = sn_sim.requests[hook.requests_before:]
    refused = [r for r in after if bearer(r) == hook.revoked_token]
    assert len(refused) == 1, "only one call went out with the revoked token"
    resent = after[after.index(refused[0]) + 1:]
    assert resent[0].path == "/oauth_token.do", "the refusal is followed by one token request..."
    assert (resent[1].method, resent[1].path, resent[1].body) == (refused[0].method, refused[0].path,
                                                                   refused[0].body), "...and the same call again"
    assert sum(1 for r in after if r.path == "/oauth_token.do") == 1
    assert set(source_key_counts(sn_sim, SUPPLIER).values()) == {1}
    assert len(source_key_counts(sn_sim, SUPPLIER)) == 25
    events = AuditEvent.objects.filter(action="connection.reauthenticated", connection_id=paged.target_id)
    assert events.count() == 1 and events.get().run_id == run.pk
    assert not Connection.objects.get(pk=paged.target_id).needs_reauth


def test_a_second_401_after_the_refresh_stops_the_run_and_flags_the_servicenow_connection(paged, sn_sim):
    # Tokens are still issued, but ServiceNow refuses every one of them: credentials are dead.
    hook = AfterFirstPage(sn_sim, Faults(token_lifetime=0))

    run = run_stream(paged, "suppliers", progress=hook)

    assert run.status == RunStatus.FAILED
    assert "HTTP 401" in run.error
    after = sn_sim.requests[hook.requests_before:]
    assert sum(1 for r in after if r.path == "/api/now/v1/batch") == 2, "one call, resent once, then no more"
    assert Connection.objects.get(pk=paged.target_id).needs_reauth
    assert not Connection.objects.get(pk=paged.source_id).needs_reauth, "X3 is fine: only ServiceNow is flagged"
    assert AuditEvent.objects.filter(action="connection.reauthenticated", run_id=run.pk).count() == 1
    systemic = AuditEvent.objects.get(action="run.systemic_error", run_id=run.pk)
    assert systemic.detail["error_class"] == "systemic"
    failed = SyncRecord.objects.filter(stream="suppliers", status=RecordStatus.FAILED)
    assert failed.count() == 10 and set(failed.values_list("error_class", flat=True)) == {"systemic"}
    assert AuditEvent.objects.filter(action="record.failed", run_id=run.pk).count() == 10
    first_page = sorted(SyncRecord.objects.filter(stream="suppliers", status=RecordStatus.SYNCED)
                        .values_list("source_cursor", flat=True))
    state = StreamState.objects.get(integration=paged, stream="suppliers")
    assert state.cursor == first_page[-1], "the page that could not be written is not checkpointed"


def test_after_reauthentication_the_next_run_delivers_what_the_failed_run_could_not(paged, sn_sim):
    run_stream(paged, "suppliers", progress=AfterFirstPage(sn_sim, Faults(token_lifetime=0)))
    sn_sim.set_faults(Faults())  # the admin fixed the OAuth application

    run = run_stream(paged, "suppliers")

    assert run.status == RunStatus.SUCCEEDED, run.error
    counts = source_key_counts(sn_sim, SUPPLIER)
    assert len(counts) == 25 and set(counts.values()) == {1}
    assert SyncRecord.objects.filter(stream="suppliers", status=RecordStatus.SYNCED).count() == 25
    assert not Connection.objects.get(pk=paged.target_id).needs_reauth


def test_the_client_raises_auth_error_when_the_refreshed_token_is_refused_too(sn_sim, sandbox):
    sn_sim.set_faults(Faults(token_lifetime=0))
    spec = ConnectionSpec("servicenow", SN_URL, "oauth2_client_credentials",
                          settings={"client_id": "ml-connector"}, secrets={"client_secret": "sn-demo-secret"})
    client = build_client(spec, MemoryTokenStore())

    with pytest.raises(AuthError):
        client.list("cmn_cost_center", limit=1)

    api = [r for r in sn_sim.requests if r.path.startswith("/api/now/table/")]
    assert len(api) == 2 and token_requests(sn_sim) == 2
