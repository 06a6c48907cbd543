"""An AP clerk finds an invoice from the header search by the supplier's invoice number, then by
its amount, and opens the record."""

from __future__ import annotations

from playwright.sync_api import expect

from integrations.models import RecordStatus, SyncRecord
from tests.browser.conftest import assert_screenshot, login


def _search(page, portal, q: str) -> None:
    """Through the header box when the page has it, else the results page's own box."""
    page.goto(f"{portal['url']}/admin/")
    box = page.locator("#header-search-q")
    if box.count():
        box.fill(q)
        box.press("Enter")
    else:
        page.goto(f"{portal['url']}/search/?q=")
        page.get_by_label("Find an invoice, a supplier or any record by").fill(q)
        page.get_by_role("button", name="Search").click()
    page.wait_for_load_state("networkidle")


def test_a_clerk_finds_an_invoice_by_supplier_invoice_number_and_by_amount(page, portal):
    invoice = (SyncRecord.objects.filter(stream="invoices", status=RecordStatus.SYNCED, doc_amount__gte=1000)
               .exclude(doc_number="").order_by("pk").first())
    login(page, portal)

    # by the number on the supplier's paper invoice, typed in lower case
    _search(page, portal, invoice.doc_number.lower())
    group = page.locator(".search-group").filter(has_text="Supplier invoices")
    row = group.locator("tr.search-hit").filter(has_text=invoice.business_key)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(invoice.doc_number)
    expect(row).to_contain_text(invoice.doc_supplier)
    expect(row).to_contain_text(f"{invoice.doc_currency} {invoice.doc_amount:,.2f}")
    expect(row).to_contain_text("Synced")

    # by its amount as written on the invoice, thousands separated and with its currency
    amount = f"{invoice.doc_currency} {invoice.doc_amount:,.2f}"
    page.goto(f"{portal['url']}/search/?q={amount.replace(' ', '+')}")
    expect(page.locator("#search-summary")).to_contain_text(f"the amount {amount}")
    row = page.locator(".search-group tr.search-hit").filter(has_text=invoice.business_key)
    expect(row).to_have_count(1)
    assert_screenshot(page, "search")

    # the row opens the record's page
    row.get_by_role("link", name=invoice.business_key).click()
    expect(page).to_have_url(f"{portal['url']}/admin/integrations/syncrecord/{invoice.pk}/change/")

    # and a search that finds nothing says what it looked for
    page.goto(f"{portal['url']}/search/?q=ZZ-no-such-invoice")
    expect(page.locator("#search-nothing")).to_contain_text("Nothing matches “ZZ-no-such-invoice”")
