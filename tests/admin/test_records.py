"""Records: the Failed and Held queues, filters, search, lineage, and replay with a reason."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from integrations.admin.records import attempt_rows
from integrations.models import AuditEvent, ErrorClass, RecordStatus, SyncAttempt, SyncRecord, SyncRun


def _listed(body: str, records) -> set[int]:
    return {r.pk for r in records if f"/admin/integrations/syncrecord/{r.pk}/change/" in body}


def test_the_failed_and_held_queues_hold_only_their_state(w):
    client = w.client("viewer")
    everything = list(SyncRecord.objects.filter(integration=w.acme))
    failed = {r.pk for r in everything if r.status == RecordStatus.FAILED}
    held = {r.pk for r in everything if r.status == RecordStatus.HELD}
    assert _listed(client.get("/admin/integrations/failedrecord/").content.decode(), everything) == failed
    assert _listed(client.get("/admin/integrations/heldrecord/?all=").content.decode(), everything) == held
    body = client.get("/admin/integrations/heldrecord/").content.decode()
    assert "gl_account:" in body and "/admin/integrations/mapping/?integration__id__exact=" in body


def test_filters_by_integration_stream_status_error_class_and_age(w):
    client = w.client("viewer")
    records = list(SyncRecord.objects.filter(integration__in=[w.acme, w.globex]))
    pos = {r.pk for r in records if r.stream == "purchase_orders" and r.integration_id == w.acme.pk}
    body = client.get(f"/admin/integrations/syncrecord/?stream=purchase_orders&integration__id__exact={w.acme.pk}"
                      "&all=").content.decode()
    assert _listed(body, records) == pos
    transient = {r.pk for r in records if r.error_class == ErrorClass.TRANSIENT}
    assert transient
    body = client.get("/admin/integrations/failedrecord/?error_class__exact=transient").content.decode()
    assert _listed(body, records) == transient
    assert _listed(client.get("/admin/integrations/failedrecord/?error_class__exact=data").content.decode(),
                   records) == set()
    SyncRecord.objects.filter(pk=min(transient)).update(updated_at=timezone.now() - timedelta(days=10))
    body = client.get("/admin/integrations/failedrecord/?age=old").content.decode()
    assert _listed(body, records) == {min(transient)}
    body = client.get("/admin/integrations/failedrecord/?age=24h").content.decode()
    assert _listed(body, records) == transient - {min(transient)}
    assert _listed(client.get("/admin/integrations/syncrecord/?status__exact=failed").content.decode(),
                   records) == transient


def test_search_by_business_key(w):
    record = SyncRecord.objects.filter(integration=w.acme, stream="invoices").first()
    body = w.client("viewer").get("/admin/integrations/syncrecord/", {"q": record.business_key}).content.decode()
    assert _listed(body, SyncRecord.objects.all()) == {record.pk}
    prefix = w.client("viewer").get("/admin/integrations/syncrecord/", {"q": record.business_key[:2].lower(),
                                                                        "all": ""}).content.decode()
    assert record.pk in _listed(prefix, SyncRecord.objects.all())


def test_the_lineage_page_tells_the_whole_story(w):
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).first()
    attempts = list(SyncAttempt.objects.filter(record=record).order_by("number"))
    assert len(attempts) >= 2 and attempts[-1].payload
    body = w.client("viewer").get(f"/admin/integrations/syncrecord/{record.pk}/change/").content.decode()
    assert f"History of {record.business_key}" in body
    # in a clerk's words: no stream, source key or lineage on the page, only in tooltips
    assert "Lineage" not in body and ">source key<" not in body and f"{record.stream} {record.business_key}" not in body
    for key in list(record.source_snapshot)[:3]:
        assert key in body
    assert body.count('<h3 class="attempt">') == len(attempts)
    assert "Nothing was sent." in body and "payload sent" in body  # held first, then a write that failed
    assert "world: ServiceNow down" in body  # the audited reason of the replay
    assert record.error_message[:40] in body
    assert f"run #{attempts[-1].run_id}" in body


def test_the_payload_diff_compares_each_write_with_the_one_before():
    def attempt(number, payload):
        return SyncAttempt(number=number, outcome=RecordStatus.FAILED, payload=payload)

    rows = attempt_rows([attempt(1, {}), attempt(2, {"amount": "10.00", "gl": "A"}),
                         attempt(3, {"amount": "10.00", "gl": "A"}), attempt(4, {"amount": "12.50", "gl": "A"})])
    assert [r["diff"] for r in rows[:3]] == [[], [], []] and rows[2]["same_as_before"]
    assert ("del", '-  "amount": "10.00",') in rows[3]["diff"] and ("add", '+  "amount": "12.50",') in rows[3]["diff"]


def test_a_synced_record_links_into_the_target_system(w):
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.SYNCED).exclude(target_url="").first()
    body = w.client("viewer").get(f"/admin/integrations/syncrecord/{record.pk}/change/").content.decode()
    assert f'href="{record.target_url}" target="_blank" rel="noopener noreferrer">{record.target_id}</a>' in body
    SyncRecord.objects.filter(pk=record.pk).update(target_url="javascript:alert(1)")
    body = w.client("viewer").get(f"/admin/integrations/syncrecord/{record.pk}/change/").content.decode()
    assert "javascript:alert" not in body


def test_replay_asks_for_a_reason_and_audits_it(w):
    failed = list(SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).values_list("pk", flat=True))
    client = w.client("operator")
    page = client.post("/admin/integrations/failedrecord/", {"action": "replay_selected", "index": 0,
                                                             "_selected_action": failed})
    assert page.status_code == 200 and "Replay <strong>2</strong>" in page.content.decode()
    missing_reason = client.post("/admin/integrations/failedrecord/", {
        "action": "replay_selected", "_selected_action": failed, "confirm": "yes", "reason": ""})
    assert missing_reason.status_code == 200 and "This field is required" in missing_reason.content.decode()
    assert not AuditEvent.objects.filter(action="records.replay_requested").exists()
    response = client.post("/admin/integrations/failedrecord/", {
        "action": "replay_selected", "_selected_action": failed, "confirm": "yes",
        "reason": "ServiceNow is back up"}, follow=True)
    assert "Queued 2 record(s) for replay." in response.content.decode()
    request = AuditEvent.objects.get(action="records.replay_requested")
    assert (request.actor_name, request.detail["reason"], sorted(request.detail["records"])) == (
        "operator", "ServiceNow is back up", sorted(failed))
    replayed = AuditEvent.objects.filter(action="record.replayed", record_id__in=failed, actor_name="operator")
    assert replayed.count() == 2 and all(e.detail["reason"] == "ServiceNow is back up" for e in replayed)
    assert SyncRecord.objects.filter(pk__in=failed, status=RecordStatus.SYNCED).count() == 2
    assert SyncRun.objects.filter(trigger="replay", triggered_by="operator").exists()


def test_replay_across_all_pages_of_a_filtered_queue(w):
    held = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.HELD)
    one = held.first().pk
    response = w.client("operator").post("/admin/integrations/heldrecord/?missing=gl_account:61200", {
        "action": "replay_selected", "_selected_action": [one], "select_across": "1", "confirm": "yes",
        "reason": "61200 is mapped now"}, follow=True)
    expected = held.filter(missing__contains="|gl_account:61200|").count()
    assert expected > 1
    assert f"Queued {expected} record(s) for replay." in response.content.decode()


def test_only_failed_and_held_records_are_replayed(w):
    synced = list(SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.SYNCED).values_list("pk", flat=True))
    response = w.client("operator").post("/admin/integrations/syncrecord/", {
        "action": "replay_selected", "_selected_action": synced[:3], "index": 0})
    assert "nothing to replay" in response.content.decode()


def test_replay_from_the_lineage_page(w):
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).first()
    client = w.client("operator")
    lineage = client.get(f"/admin/integrations/syncrecord/{record.pk}/change/").content.decode()
    assert f"/admin/integrations/syncrecord/{record.pk}/replay/" in lineage
    assert "Reason" in client.get(f"/admin/integrations/syncrecord/{record.pk}/replay/").content.decode()
    response = client.post(f"/admin/integrations/syncrecord/{record.pk}/replay/", {"reason": "retry one"})
    assert response.status_code == 302 and response["Location"] == f"/admin/integrations/syncrecord/{record.pk}/change/"
    assert AuditEvent.objects.filter(action="record.replayed", record_id=record.pk, detail__reason="retry one").exists()
    viewer_lineage = w.client("viewer").get(f"/admin/integrations/syncrecord/{record.pk}/change/").content.decode()
    assert "/replay/" not in viewer_lineage


def test_runs_are_read_only_history_linked_to_their_records(w):
    run = SyncRun.objects.filter(integration=w.acme, stream="purchase_orders").first()
    client = w.client("root")
    body = client.get("/admin/integrations/syncrun/").content.decode()
    assert f"?run={run.pk}" in body and "api calls" in body.lower()
    records = client.get(f"/admin/integrations/syncrecord/?run={run.pk}&all=").content.decode()
    touched = SyncRecord.objects.filter(pk__in=SyncAttempt.objects.filter(run=run).values("record_id"))
    assert _listed(records, SyncRecord.objects.all()) == set(touched.values_list("pk", flat=True)) != set()
    detail = client.get(f"/admin/integrations/syncrun/{run.pk}/change/").content.decode()
    assert 'name="_save"' not in detail and str(run.read) in detail
    assert client.post(f"/admin/integrations/syncrun/{run.pk}/change/", {}).status_code == 403
    assert client.get(f"/admin/integrations/syncrun/{run.pk}/delete/").status_code == 403


def test_invoices_are_listed_by_supplier_date_and_amount_as_their_snapshot_says(w):
    from integrations.engine.documents import amount_text
    from integrations.flows.base import as_decimal

    held = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.HELD, stream="invoices").first()
    snap = held.source_snapshot
    body = w.client("viewer").get("/admin/integrations/heldrecord/?all=").content.decode()
    row = body[body.index(f"/admin/integrations/syncrecord/{held.pk}/change/"):]
    row = row[:row.index("</tr>")]
    assert snap["BPR"] in row and str(snap["BPRDAT"])[:10] in row
    assert amount_text(snap["CUR"], as_decimal(snap["AMTATI"])) in row  # e.g. "EUR 13,468.28"
    lineage = w.client("viewer").get(f"/admin/integrations/syncrecord/{held.pk}/change/").content.decode()
    assert 'id="document"' in lineage and amount_text(snap["CUR"], as_decimal(snap["AMTATI"])) in lineage
    assert "Waiting for a mapping – map it, and the approval releases it" in lineage


def test_purchase_orders_are_listed_by_supplier_date_and_amount_from_x3(w):
    from integrations.engine.documents import amount_text

    po = SyncRecord.objects.filter(integration=w.acme, stream="purchase_orders").order_by("pk").first()
    order = w.x3.get("PORDER", po.source_key)
    total = amount_text(order["CUR"], order["TOTAMTNOT"])  # e.g. "EUR 7,731.40"
    body = w.client("viewer").get("/admin/integrations/syncrecord/", {"stream": "purchase_orders", "all": ""}
                                  ).content.decode()
    row = body[body.index(f"/admin/integrations/syncrecord/{po.pk}/change/"):]
    row = row[:row.index("</tr>")]
    assert f'<td class="field-supplier">{order["BPSNUM"]}</td>' in row
    assert f'<td class="field-document_date">{order["ORDDAT"].isoformat()}</td>' in row
    assert f'<td class="field-amount">{total}</td>' in row
    lineage = w.client("viewer").get(f"/admin/integrations/syncrecord/{po.pk}/change/").content.decode()
    assert f"supplier {order['BPSNUM']}" in lineage and f'<span id="amount">{total}</span>' in lineage


def test_a_failure_says_what_to_do_next(w):
    failed = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).first()
    SyncRecord.objects.filter(pk=failed.pk).update(error_class=ErrorClass.DATA)
    body = w.client("viewer").get("/admin/integrations/failedrecord/?all=").content.decode()
    assert "Needs a data fix – will not retry" in body
    SyncRecord.objects.filter(pk=failed.pk).update(error_class=ErrorClass.SYSTEMIC)
    body = w.client("viewer").get(f"/admin/integrations/syncrecord/{failed.pk}/change/").content.decode()
    assert "Connection problem – fix the connection" in body
    retry = timezone.now() + timedelta(minutes=5)
    SyncRecord.objects.filter(pk=failed.pk).update(error_class=ErrorClass.TRANSIENT, next_retry_at=retry)
    body = w.client("viewer").get(f"/admin/integrations/syncrecord/{failed.pk}/change/").content.decode()
    assert f"Temporary – retrying at {timezone.localtime(retry):%Y-%m-%d %H:%M}" in body


def test_a_synced_record_opens_in_its_target_system_by_name(w):
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.SYNCED).exclude(target_url="").first()
    body = w.client("viewer").get(f"/admin/integrations/syncrecord/{record.pk}/change/").content.decode()
    assert f'<a href="{record.target_url}" target="_blank" rel="noopener noreferrer">Open in ServiceNow</a>' in body
