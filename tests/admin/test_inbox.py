"""The dashboard's inbox: what needs a person, in their words, the biggest money first, each with
what to do and a link to where it is done; only the user's own tenants."""

from __future__ import annotations

import re

from integrations.models import Connection, Mapping, MappingStatus, RecordStatus, SyncRecord


def inbox(w, user: str = "viewer") -> str:
    body = w.client(user).get("/admin/").content.decode()
    start = body.find('id="inbox"')
    return body[start:body.index("</table>", start)] if start >= 0 else ""


def items(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>|\s+", " ", row).strip() for row in re.findall(r"<tr class=\"inbox-[a-z]+\">(.*?)</tr>",
                                                                             html, re.S)]


def test_held_invoices_are_listed_by_the_code_they_wait_for_with_their_money_and_a_way_to_map(w):
    html = inbox(w)
    waiting = Mapping.objects.filter(integration=w.acme, held_count__gt=0).exclude(
        status__in=[MappingStatus.APPROVED, MappingStatus.IGNORED]).order_by("-held_amount")
    assert waiting.exists()
    rows = [row for row in items(html) if " wait for " in row]
    assert len(rows) == waiting.count()
    first = waiting.first()
    assert rows[0].startswith(f"{first.held_documents} invoice") and f"GL account {first.source_code}" in rows[0]
    money = next(iter(first.held_money))
    assert money in rows[0]  # e.g. "6 invoices · EUR 96,177.28 wait for GL account 61200"
    assert f"/admin/integrations/mapping/{first.pk}/change/" in html
    assert "Map now" in rows[0] or "Approve the suggestion" in rows[0]
    amounts = [float(a.replace(",", "")) for row in rows for a in re.findall(r"[A-Z]{3} ([0-9,]+\.[0-9]{2})", row)[:1]]
    assert amounts == sorted(amounts, reverse=True), "the most money first"


def test_failures_say_how_many_where_and_whether_they_retry_by_themselves(w):
    failed = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.FAILED).count()
    rows = [row for row in items(inbox(w)) if " failed in " in row]
    assert rows and rows[0].startswith(f"{failed} failed in Supplier invoices")
    assert "temporary, retrying by itself" in rows[0]  # the world's failures are transient


def test_a_connection_that_needs_new_credentials_comes_first(w):
    Connection.objects.filter(pk=w.acme.source_id).update(needs_reauth=True, last_error="401 invalid_grant")
    rows = items(inbox(w))
    assert rows[0].startswith("The Sage X3 connection x3 needs new credentials") and "Fix the connection" in rows[0]


def test_the_morning_check_counts_integrations_holding_records_as_needing_attention(w):
    body = w.client("viewer").get("/admin/").content.decode()
    assert re.search(r"[1-9][0-9]* needs? attention", body), "held invoices need someone"


def test_another_tenants_inbox_stays_theirs(w):
    acme_codes = {m.source_code for m in Mapping.objects.filter(integration=w.acme, held_count__gt=0)}
    outsider = items(inbox(w, "outsider"))
    assert not any("acme" in row.lower() for row in outsider)
    assert all("Globex" in row for row in outsider)
    assert acme_codes  # and none of Acme's mappings link from Globex's page
    html = inbox(w, "outsider")
    for mapping in Mapping.objects.filter(integration=w.acme, held_count__gt=0):
        assert f"/admin/integrations/mapping/{mapping.pk}/change/" not in html
