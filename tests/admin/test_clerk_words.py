"""Record lists, runs and the replay question speak of document kinds, not streams: the technical
name is only in a tooltip (or, for a filter, in the address)."""

from __future__ import annotations

import re

from integrations.engine.documents import document_of
from integrations.models import RecordStatus, SyncRecord

INVOICES = "Supplier invoices (X3 → ServiceNow AP)"
PURCHASE_ORDERS = "Purchase orders (X3 → ServiceNow)"


def _headers(body: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", body, re.S)]


def test_the_records_filter_is_by_document_kind_in_words_with_the_stream_in_the_address(w):
    body = w.client("viewer").get("/admin/integrations/syncrecord/").content.decode()
    assert "By document kind" in body and "By stream" not in body
    assert 'href="?stream=purchase_orders"' in body.replace("&amp;", "&")
    choice = re.search(r'<a href="\?stream=purchase_orders"[^>]*>([^<]+)</a>', body)
    assert choice and choice.group(1).strip() == PURCHASE_ORDERS


def test_the_record_lists_name_each_documents_kind_with_the_stream_in_the_tooltip(w):
    client = w.client("viewer")
    for queue in ("syncrecord", "failedrecord", "heldrecord"):
        body = client.get(f"/admin/integrations/{queue}/?all=").content.decode()
        headers = _headers(body)
        assert "Document kind" in headers and "Stream" not in headers, (queue, headers)
    body = client.get("/admin/integrations/syncrecord/?stream=invoices&all=").content.decode()
    assert f'<span title="technical name: invoices">{INVOICES}</span>' in body
    assert '<td class="field-stream">' not in body


def test_the_runs_list_names_what_each_run_synced_in_words(w):
    body = w.client("viewer").get("/admin/integrations/syncrun/").content.decode()
    headers = _headers(body)
    assert "What it synced" in headers and "Stream" not in headers
    assert f'<span title="technical name: purchase_orders">{PURCHASE_ORDERS}</span>' in body


def test_the_replay_question_shows_each_document_as_a_clerk_knows_it(w):
    held = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.HELD, stream="invoices").first()
    document = document_of(held, w.acme.kind, w.acme.source.settings)
    assert document.supplier and document.amount_text
    page = w.client("operator").get(f"/admin/integrations/syncrecord/{held.pk}/replay/").content.decode()
    headers = _headers(page[page.index('<table class="console-table">'):])
    assert headers[:7] == ["record", "supplier", "amount", "kind", "integration", "status", "error"], headers
    assert f'<td title="technical name: invoices">{INVOICES}</td>' in page
    assert f"<td>{document.supplier}</td>" in page and f"<td>{document.amount_text}</td>" in page
    assert f'<td title="source key {held.source_key}">{held.business_key}</td>' in page
    assert f"<td>{held.get_status_display()}</td>" in page
    assert "<td>invoices</td>" not in page and ">stream<" not in page
