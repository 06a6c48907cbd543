"""The audit trail: read-only and undeletable for everyone, filterable, exported as CSV."""

from __future__ import annotations

import csv
import io

import pytest
from django.http import StreamingHttpResponse

from integrations.engine.audit import audit
from integrations.models import AuditEvent, AuditImmutableError


def _csv(response) -> list[dict[str, str]]:
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_nobody_changes_or_deletes_an_event_not_even_a_superuser(w):
    event = AuditEvent.objects.filter(tenant=w.acme.tenant).first()
    client = w.client("root")
    page = client.get(f"/admin/integrations/auditevent/{event.pk}/change/").content.decode()
    assert 'name="_save"' not in page and "deletelink" not in page
    assert client.post(f"/admin/integrations/auditevent/{event.pk}/change/", {"message": "x"}).status_code == 403
    assert client.get(f"/admin/integrations/auditevent/{event.pk}/delete/").status_code == 403
    assert client.post(f"/admin/integrations/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/integrations/auditevent/add/").status_code == 403
    assert 'value="delete_selected"' not in client.get("/admin/integrations/auditevent/").content.decode()
    with pytest.raises(AuditImmutableError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_filters_by_actor_action_and_month(w):
    client = w.client("viewer")
    audit(w.acme.tenant_id, "mapping.approved", "by hand", actor=w.users["approver"])
    body = client.get("/admin/integrations/auditevent/?actor=approver").content.decode()
    assert "by hand" in body and "run.started" not in body
    body = client.get("/admin/integrations/auditevent/?action=run.").content.decode()
    assert "run.started" in body and "mapping.approved" not in body
    month = AuditEvent.objects.first().created_at
    from django.utils import timezone
    local = timezone.localtime(month)
    assert "by hand" in client.get(f"/admin/integrations/auditevent/?month={local:%Y-%m}").content.decode()
    previous = f"{local.year - 1:04d}-{local.month:02d}"
    assert "by hand" not in client.get(f"/admin/integrations/auditevent/?month={previous}").content.decode()


def test_csv_export_follows_the_filters_and_redacts(w):
    audit(w.acme.tenant_id, "connection.updated", "=HYPERLINK(\"http://evil\")", actor=w.users["owner"],
          detail={"client_secret": "hush-hush", "note": "password=hunter22"})
    client = w.client("viewer")
    page = client.get("/admin/integrations/auditevent/?action=connection.").content.decode()
    assert '/admin/integrations/auditevent/export/?action=connection.' in page
    rows = _csv(client.get("/admin/integrations/auditevent/export/?action=connection."))
    assert rows and all(row["action"].startswith("connection.") for row in rows)
    assert all(row["tenant"] == "acme" for row in rows)
    text = str(rows)
    assert "hush-hush" not in text and "hunter22" not in text
    ours = next(row for row in rows if row["actor"] == "owner")
    assert ours["message"].startswith("'=")  # a formula in evidence is text, never run by a spreadsheet
    assert "+00:00" in ours["time"] or "T" in ours["time"]


def test_the_export_itself_is_on_the_record(w):
    w.client("viewer").get("/admin/integrations/auditevent/export/?month=2026-10")
    event = AuditEvent.objects.get(action="audit.exported")
    assert event.actor_name == "viewer" and event.detail["filters"] == {"month": "2026-10"}
    assert event.tenant_id == w.acme.tenant_id


def test_times_are_shown_in_local_time(w, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+05:30: a shift no rounding hides
    from django.utils import timezone

    event = AuditEvent.objects.filter(tenant=w.acme.tenant).first()
    body = w.client("viewer").get(f"/admin/integrations/auditevent/{event.pk}/change/").content.decode()
    assert timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M") in body
    rows = _csv(w.client("viewer").get(f"/admin/integrations/auditevent/export/?q={event.request_id or event.action}"))
    assert any(row["time"].endswith("+05:30") for row in rows)
