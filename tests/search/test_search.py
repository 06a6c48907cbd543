"""The header search: an invoice found by each thing a clerk knows of it, grouped by kind,
only in the user's tenants, in a fixed number of indexed queries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from integrations.console.search import Amount, parse_amount
from integrations.models import RecordStatus, SyncRecord

INVOICES = "Supplier invoices (X3 → ServiceNow AP)"
PURCHASE_ORDERS = "Purchase orders (X3 → ServiceNow)"
SUPPLIERS = "Suppliers (X3 → ServiceNow)"


def _search(w, user: str, q: str):
    response = w.client(user).get("/search/", {"q": q})
    assert response.status_code == 200
    return response, response.context["results"]


def _pks(results) -> set[int]:
    return {hit.pk for group in results.groups for hit in group.hits}


def _invoice(w, **filters) -> SyncRecord:
    return (SyncRecord.objects.filter(integration=w.acme, stream="invoices", **filters)
            .exclude(doc_number="").exclude(doc_amount=None).order_by("pk").first())


def test_it_finds_an_invoice_by_its_erp_number(w):
    invoice = _invoice(w)
    _, results = _search(w, "viewer", invoice.business_key)
    assert invoice.pk in _pks(results)
    assert results.groups[0].label == INVOICES


def test_it_finds_an_invoice_by_the_suppliers_invoice_number_in_any_case(w):
    invoice = _invoice(w)
    for q in (invoice.doc_number, invoice.doc_number.lower(), invoice.doc_number[:-1]):
        _, results = _search(w, "viewer", q)
        assert invoice.pk in _pks(results), q
    hit = next(h for g in results.groups for h in g.hits if h.pk == invoice.pk)
    assert hit.supplier_invoice == invoice.doc_number
    assert hit.url == f"/admin/integrations/syncrecord/{invoice.pk}/change/"


@pytest.mark.parametrize("shape", ["{a}", "{a:,}", "{c} {a:,}", "{a:,} {c}", "{c}{a}"])
def test_it_finds_an_invoice_by_its_amount_written_any_usual_way(w, shape):
    invoice = _invoice(w, doc_amount__gte=1000)
    q = shape.format(a=invoice.doc_amount, c=invoice.doc_currency)
    _, results = _search(w, "viewer", q)
    assert invoice.pk in _pks(results), q
    hit = next(h for g in results.groups for h in g.hits if h.pk == invoice.pk)
    assert hit.amount == f"{invoice.doc_currency} {invoice.doc_amount:,.2f}"
    assert hit.day == invoice.doc_date
    assert hit.status_words == invoice.get_status_display()


def test_an_amount_in_another_currency_does_not_find_it(w):
    invoice = _invoice(w)
    other = "JPY" if invoice.doc_currency != "JPY" else "CHF"
    _, results = _search(w, "viewer", f"{other} {invoice.doc_amount}")
    assert invoice.pk not in _pks(results)


def test_it_finds_a_supplier_and_its_invoices_by_the_supplier_code(w):
    invoice = _invoice(w)
    supplier = SyncRecord.objects.get(integration=w.acme, stream="suppliers", source_key=invoice.doc_supplier)
    _, results = _search(w, "viewer", invoice.doc_supplier)
    assert {invoice.pk, supplier.pk} <= _pks(results)


def test_it_finds_a_suppliers_invoices_by_the_suppliers_name(w):
    invoice = _invoice(w)
    supplier = SyncRecord.objects.get(integration=w.acme, stream="suppliers", source_key=invoice.doc_supplier)
    name = supplier.doc_supplier
    assert name and name != supplier.source_key  # X3 keys suppliers by code: the name is BPSNAM
    for q in (name, name.split()[0].lower()):
        _, results = _search(w, "viewer", q)
        assert {invoice.pk, supplier.pk} <= _pks(results), q
    hit = next(h for g in results.groups for h in g.hits if h.pk == invoice.pk)
    assert hit.matched == "supplier's name"


def test_it_finds_a_record_by_its_number_in_the_target(w):
    record = SyncRecord.objects.filter(integration=w.acme, status=RecordStatus.SYNCED).exclude(
        target_id="").order_by("pk").first()
    assert record.target_id  # a ServiceNow sys_id: lower-case hex
    for q in (record.target_id, record.target_id.upper()):
        _, results = _search(w, "viewer", q)
        assert record.pk in _pks(results), q
        hit = next(h for g in results.groups for h in g.hits if h.pk == record.pk)
        assert hit.matched == "number in the target system"


def test_results_are_grouped_by_kind_with_invoices_first(w):
    invoice = _invoice(w)
    response, results = _search(w, "viewer", invoice.doc_supplier)
    labels = [group.label for group in results.groups]
    # invoices, then the supplier's other documents (its orders), then the supplier itself
    assert labels == [INVOICES, PURCHASE_ORDERS, SUPPLIERS]
    assert all(len({hit.pk for hit in group.hits}) == len(group.hits) for group in results.groups)
    page = response.content.decode()
    assert f"<h2>{INVOICES}" in page and f"<h2>{SUPPLIERS}" in page
    assert f'href="/admin/integrations/syncrecord/{invoice.pk}/change/"' in page


def test_a_search_that_finds_nothing_says_what_was_searched(w):
    response, results = _search(w, "viewer", "EUR 0.07")
    assert results.groups == []
    page = response.content.decode()
    assert "Nothing matches “EUR 0.07”" in page
    assert "amounts of EUR 0.07" in page


def test_numbers_that_look_like_amounts_also_search_document_numbers(w):
    invoice = _invoice(w)
    invoice.doc_number = "4711"
    invoice.save(update_fields=["doc_number"])
    _, results = _search(w, "viewer", "4711")
    assert results.amount == Amount(Decimal("4711.00"))
    assert invoice.pk in _pks(results)


def _po(w) -> tuple[SyncRecord, dict]:
    """A purchase order the sync stored, and the X3 order it was read from."""
    po = SyncRecord.objects.filter(integration=w.acme, stream="purchase_orders").order_by("pk").first()
    return po, w.x3.get("PORDER", po.source_key)


def _hit(results, pk: int):
    return next(((g, h) for g in results.groups for h in g.hits if h.pk == pk), (None, None))


def test_a_purchase_order_keeps_its_supplier_amount_and_date_from_x3(w):
    po, order = _po(w)
    assert (po.doc_number, po.doc_supplier, po.doc_amount, po.doc_currency, po.doc_date) == (
        order["POHNUM"], order["BPSNUM"], order["TOTAMTNOT"], order["CUR"], order["ORDDAT"])


def test_it_finds_a_purchase_order_by_its_suppliers_name(w):
    po, order = _po(w)
    name = SyncRecord.objects.get(integration=w.acme, stream="suppliers", source_key=order["BPSNUM"]).doc_supplier
    assert name and name != order["BPSNUM"]
    _, results = _search(w, "viewer", name)
    group, hit = _hit(results, po.pk)
    assert hit is not None, name
    assert (group.label, hit.matched, hit.supplier) == (PURCHASE_ORDERS, "supplier's name", order["BPSNUM"])
    assert hit.supplier_invoice == ""  # a PO is known by its own number, not a supplier's invoice number


def test_it_finds_a_purchase_order_by_its_amount(w):
    po, order = _po(w)
    total = f"{order['CUR']} {order['TOTAMTNOT']:,.2f}"
    for q in (total, f"{order['TOTAMTNOT']}"):
        _, results = _search(w, "viewer", q)
        group, hit = _hit(results, po.pk)
        assert hit is not None, q
        assert (group.label, group.money, hit.number, hit.amount, hit.day, hit.matched) == (
            PURCHASE_ORDERS, True, po.business_key, total, order["ORDDAT"], "amount"), q


def test_another_tenants_records_never_appear(w):
    acme = set(SyncRecord.objects.filter(integration=w.acme).values_list("pk", flat=True))
    invoice = _invoice(w)
    # both tenants are seeded from the same ERP: the same numbers exist in Globex
    for q in (invoice.business_key, invoice.doc_number, invoice.doc_supplier, str(invoice.doc_amount)):
        _, theirs = _search(w, "outsider", q)
        assert _pks(theirs) and not _pks(theirs) & acme, q
        _, ours = _search(w, "viewer", q)
        assert _pks(ours) and _pks(ours) <= acme, q
        _, nobodys = _search(w, "stranger", q)
        assert _pks(nobodys) == set(), q


def test_the_search_needs_a_staff_login(w, client):
    response = client.get("/search/", {"q": "PI00001"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_search_costs_the_same_queries_however_many_records_match(w):
    invoice = _invoice(w)
    supplier_name = SyncRecord.objects.get(integration=w.acme, stream="suppliers",
                                           source_key=invoice.doc_supplier).doc_supplier
    queries = [invoice.doc_supplier, supplier_name.lower(), f"{invoice.doc_amount:,}", "PI0"]
    client = w.client("viewer")
    client.get("/search/", {"q": "warm"})

    def costs() -> list[int]:
        counted = []
        for q in queries:
            with CaptureQueriesContext(connection) as ctx:
                assert client.get("/search/", {"q": q}).status_code == 200
            counted.append(len(ctx.captured_queries))
        return counted

    before = costs()
    SyncRecord.objects.bulk_create([
        SyncRecord(integration=w.acme, stream="invoices", source_key=f"PI9{n:05}", business_key=f"PI9{n:05}",
                   status=RecordStatus.SYNCED, doc_number=f"F-{n}", doc_supplier=invoice.doc_supplier,
                   doc_amount=invoice.doc_amount, doc_currency=invoice.doc_currency, doc_date=invoice.doc_date)
        for n in range(300)
    ])
    after = costs()
    assert after == before
    assert max(after) <= 22


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads SQLite's query plans")
def test_every_record_lookup_of_a_search_uses_an_index(w):
    from integrations.console.search import search_records

    invoice = _invoice(w)
    with CaptureQueriesContext(connection) as ctx:
        search_records(w.users["viewer"], invoice.doc_supplier)
        search_records(w.users["viewer"], f"{invoice.doc_currency} {invoice.doc_amount:,}")
        search_records(w.users["viewer"], "nordic tools")
    lookups = [q["sql"] for q in ctx.captured_queries if 'FROM "integrations_syncrecord"' in q["sql"]]
    assert len(lookups) >= 8
    with connection.cursor() as cursor:
        for sql in lookups:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
            assert "USING INDEX record_" in plan or "USING COVERING INDEX record_" in plan, (sql, plan)
            assert "TEMP B-TREE" not in plan, (sql, plan)  # read in index order: no sort


@pytest.mark.parametrize(("term", "expected"), [
    ("13468.28", Amount(Decimal("13468.28"))),
    ("13,468.28", Amount(Decimal("13468.28"))),
    ("EUR 13,468.28", Amount(Decimal("13468.28"), "EUR")),
    ("13468.28 usd", Amount(Decimal("13468.28"), "USD")),
    ("1,250", Amount(Decimal("1250.00"))),
    ("$ 99.5", Amount(Decimal("99.50"))),
    ("-250.00", Amount(Decimal("-250.00"))),
    ("PI00055", None),
    ("13.468,28", None),
    ("12,34", None),
    ("1.234", None),
    ("EUR 5 USD", None),
])
def test_it_reads_amounts_as_people_type_them(term, expected):
    assert parse_amount(term) == expected
