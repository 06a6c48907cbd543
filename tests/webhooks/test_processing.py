"""A pushed event is a hint: the records it names are read again from the source and go through
their stream like polled records, under the stream's lock, through the mapping gate, once."""

from __future__ import annotations

import json
from typing import Any

import django_q.conf
import pytest

from integrations.engine import locks
from integrations.engine.webhooks import process_pending
from integrations.models import RecordStatus, StreamState, SyncRecord, SyncRun, Trigger, WebhookEvent
from integrations.systems import registry
from integrations.systems.webhooks import Received
from tests.conformance import fake
from tests.conformance.harnesses import fake_harness
from tests.conformance.test_mapping_kinds import CodedFlow

pytestmark = pytest.mark.django_db


class PushingFlow(fake.LedgerToStore):
    def webhook_records(self, event_type: str, payload: dict[str, Any]) -> list[tuple[str, str]]:
        return [("entries", str(payload["data"]["key"]))] if event_type == "entry.changed" else []


class PushingCodedFlow(CodedFlow):
    webhook_records = PushingFlow.webhook_records


def receiver(spec: Any, body: bytes, headers: Any) -> Received:
    """The ledger signs with the connection's password (a stand-in for a vendor's HMAC)."""
    if headers.get("X-Ledger-Key") != spec.secret("password"):
        return Received(False, "wrong key")
    event = json.loads(body)
    return Received(True, event_id=event["id"], event_type=event["type"], payload=event)


@pytest.fixture
def inline_tasks(settings, monkeypatch):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(django_q.conf.Conf, "SYNC", True)


def push(client, key: str, event_id: str, event_type: str = "entry.changed"):
    body = json.dumps({"id": event_id, "type": event_type, "data": {"key": key}}).encode()
    return client.post(f"/webhooks/{fake.SOURCE_SYSTEM}/conformance/ledger/", data=body,
                       content_type="application/json", HTTP_X_LEDGER_KEY=fake.PASSWORD)


def test_an_event_leads_to_exactly_one_write_of_the_record_read_again(client, monkeypatch, inline_tasks):
    monkeypatch.setitem(registry.WEBHOOK_RECEIVERS, fake.SOURCE_SYSTEM, receiver)
    with fake_harness(PushingFlow)(monkeypatch).running() as h:
        h.source_sim.put("NEW1", "pushed v1", fake.stamp(1))
        assert push(client, "NEW1", "e1").status_code == 202  # processed inline by the queued task

        event = WebhookEvent.objects.get(event_id="e1")
        record = SyncRecord.objects.get(source_key="NEW1")
        assert event.status == WebhookEvent.Status.PROCESSED and event.record_id == record.pk
        assert record.status == RecordStatus.SYNCED
        assert SyncRun.objects.get(trigger=Trigger.WEBHOOK).created == 1
        assert [row.value for row in h.target_rows()["NEW1"]] == ["pushed v1"], "read again from the ledger"

        assert push(client, "NEW1", "e1").status_code == 200  # the sender's retry
        assert SyncRun.objects.filter(trigger=Trigger.WEBHOOK).count() == 1, "never processed twice"
        assert len(h.target_rows()["NEW1"]) == 1

        h.run()  # the poll reads the same record: unchanged, not written again
        assert len(h.target_rows()["NEW1"]) == 1 and h.target_rows()["NEW1"][0].version == 0


def test_an_event_never_bypasses_the_mapping_gate(client, monkeypatch, inline_tasks):
    monkeypatch.setitem(registry.WEBHOOK_RECEIVERS, fake.SOURCE_SYSTEM, receiver)
    with fake_harness(PushingCodedFlow)(monkeypatch).running() as h:
        h.source_sim.put("NEW2", "needs a job type", fake.stamp(2))
        push(client, "NEW2", "e2")
        assert SyncRecord.objects.get(source_key="NEW2").status == RecordStatus.HELD
        assert not h.target_rows(), "held: nothing written"


def test_events_wait_while_their_stream_is_busy_and_are_taken_up_later(client, monkeypatch):
    monkeypatch.setitem(registry.WEBHOOK_RECEIVERS, fake.SOURCE_SYSTEM, receiver)
    with fake_harness(PushingFlow)(monkeypatch).running() as h:
        h.source_sim.put("NEW3", "while busy", fake.stamp(3))
        push(client, "NEW3", "e3")  # queued, not processed: no worker in this test
        state = h.state()
        holder = locks.claim(state)
        assert process_pending(h.integration.source_id).waiting == 1
        assert WebhookEvent.objects.get(event_id="e3").status == WebhookEvent.Status.RECEIVED
        locks.release(StreamState.objects.get(pk=state.pk), holder)

        assert process_pending(h.integration.source_id).processed == 1
        assert SyncRecord.objects.get(source_key="NEW3").status == RecordStatus.SYNCED


def test_an_event_no_stream_uses_is_closed_with_the_reason(client, monkeypatch):
    monkeypatch.setitem(registry.WEBHOOK_RECEIVERS, fake.SOURCE_SYSTEM, receiver)
    with fake_harness(PushingFlow)(monkeypatch).running() as h:
        push(client, "X", "e4", event_type="something.else")
        process_pending(h.integration.source_id)
        event = WebhookEvent.objects.get(event_id="e4")
        assert event.status == WebhookEvent.Status.PROCESSED and "polling covers it" in event.reason


def test_the_inbox_shows_the_record_an_event_led_to(admin_client, client, monkeypatch, inline_tasks):
    monkeypatch.setitem(registry.WEBHOOK_RECEIVERS, fake.SOURCE_SYSTEM, receiver)
    with fake_harness(PushingFlow)(monkeypatch).running() as h:
        h.source_sim.put("NEW5", "shown", fake.stamp(5))
        push(client, "NEW5", "e5")
        record = SyncRecord.objects.get(source_key="NEW5")
        page = admin_client.get("/admin/integrations/webhookevent/").content.decode()
        assert f"/admin/integrations/syncrecord/{record.pk}/change/" in page


def test_a_sync_cycle_first_processes_what_is_still_waiting(client, monkeypatch):
    from integrations.engine.runner import run_integration

    monkeypatch.setitem(registry.WEBHOOK_RECEIVERS, fake.SOURCE_SYSTEM, receiver)
    with fake_harness(PushingFlow)(monkeypatch).running() as h:
        h.source_sim.put("NEW6", "waiting", fake.stamp(6))
        push(client, "NEW6", "e6")  # no worker picked it up
        assert WebhookEvent.objects.get(event_id="e6").status == WebhookEvent.Status.RECEIVED
        run_integration(h.integration)
        assert WebhookEvent.objects.get(event_id="e6").status == WebhookEvent.Status.PROCESSED
        assert SyncRun.objects.filter(trigger=Trigger.WEBHOOK).count() == 1
        assert len(h.target_rows()["NEW6"]) == 1, "and the poll after it did not write it again"
