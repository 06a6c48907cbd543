"""The header search: one box that finds a record by what an AP clerk knows of it.

An invoice is found by its ERP number, the supplier's invoice number, the supplier (code or
name), its amount ("13468.28", "13,468.28", "EUR 13,468.28") or the target's number (a
ServiceNow sys_id, an X3 document number). Only the user's tenants are searched.

Built for a million records: every probe is a range or an equality on one index of
``SyncRecord`` (``integration`` first, then the searched column), read in that index's order
with a limit, so no probe sorts or scans; snapshots are never opened (the searched values were
copied onto the record when it was stored, see ``engine.documents.search_fields``). A search
costs a fixed number of queries whatever the table's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.scoping import scope
from integrations.admin import display
from integrations.engine.documents import amount_text, is_supplier_stream, stream_label
from integrations.models import Integration, SyncRecord

MAX_QUERY = 200
# rows one probe reads; a term that matches more is narrowed by typing more of it
PROBE_LIMIT = 50
# rows shown in all
MAX_RESULTS = 200
# the end of a prefix range: any text starting with the term sorts below term + this
_HIGHEST = "\U0010ffff"
# "13468.28", "13,468.28", "EUR 13,468.28", "13468.28 usd", "-250", "$ 1,250.00"
_AMOUNT = re.compile(
    r"^(?:(?P<before>[A-Za-z]{3})\s*|[$€£]\s*)?"
    r"(?P<sign>[-+])?(?P<units>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<cents>\d{1,2}))?"
    r"(?:\s*(?P<after>[A-Za-z]{3}))?$"
)
# what a match on each column means, in the clerk's words
_NUMBER = "number"
_SUPPLIER_INVOICE = "supplier's invoice number"
_SUPPLIER_CODE = "supplier code"
_SUPPLIER = "supplier"
_AMOUNT_WORDS = "amount"
_TARGET = "number in the target system"
_SUPPLIER_NAME = "supplier's name"


@dataclass(frozen=True)
class Amount:
    value: Decimal
    currency: str = ""

    @property
    def text(self) -> str:
        return amount_text(self.currency, self.value)


def parse_amount(term: str) -> Amount | None:
    """The amount a search term means, with its currency when given; ``None`` when it is not one."""
    found = _AMOUNT.match(term.strip())
    if not found or (found["before"] and found["after"]):
        return None
    digits = found["units"].replace(",", "") + "." + (found["cents"] or "0")
    try:
        value = Decimal(digits).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None
    if found["sign"] == "-":
        value = -value
    return Amount(value, (found["before"] or found["after"] or "").upper())


@dataclass(frozen=True)
class Hit:
    """One record found, as the results page shows it."""

    pk: int
    url: str
    number: str
    supplier_invoice: str
    supplier: str
    day: date | None
    amount: str
    status: str
    status_words: str
    badge: str
    integration: str
    matched: str


@dataclass
class Group:
    label: str
    hits: list[Hit] = field(default_factory=list)
    money: bool = False


@dataclass
class Results:
    query: str
    amount: Amount | None = None
    groups: list[Group] = field(default_factory=list)
    total: int = 0
    truncated: bool = False

    @property
    def searched(self) -> str:
        """What was looked for, in words, for "nothing found"."""
        what = "record numbers, suppliers' invoice numbers, suppliers (name or code), numbers in the target system"
        if self.amount is not None:
            what += f" and amounts of {self.amount.text}"
        return what


def _variants(term: str) -> list[str]:
    """The term as typed, upper case (ERP keys) and capitalised (names): SQLite and PostgreSQL
    compare case-sensitively, and a case-folding lookup would not use the index."""
    return list(dict.fromkeys(v for v in (term, term.upper(), term.title()) if v))


def _starting_with(records: QuerySet, column: str, term: str) -> QuerySet:
    """Records whose ``column`` is ``term`` or starts with it: one range on (integration, column),
    read in that index's order (no sort), at most ``PROBE_LIMIT`` rows."""
    return records.filter(**{f"{column}__gte": term, f"{column}__lt": term + _HIGHEST}).order_by(
        "integration_id", column)[:PROBE_LIMIT]


def search_records(user: Any, query: str) -> Results:
    """Records of ``user``'s tenants matching ``query``, grouped by kind of document."""
    term = " ".join(query.split())[:MAX_QUERY]
    results = Results(term, parse_amount(term))
    if not term:
        return results
    integrations = {i.pk: i for i in scope(Integration.objects.only("pk", "name", "kind", "tenant_id"), user)}
    if not integrations:
        return results
    records = SyncRecord.objects.filter(integration_id__in=list(integrations)).defer(
        "source_snapshot", "target_refs", "error_message")

    found: dict[int, tuple[SyncRecord, str]] = {}

    def take(rows: QuerySet, matched: str) -> None:
        rows = list(rows)
        if len(rows) >= PROBE_LIMIT:
            results.truncated = True
        for row in rows:
            found.setdefault(row.pk, (row, matched))

    for variant in _variants(term):
        take(_starting_with(records, "business_key", variant), _NUMBER)
        take(_starting_with(records, "doc_number", variant), _SUPPLIER_INVOICE)
        take(_starting_with(records, "doc_supplier", variant), _SUPPLIER)
        take(_starting_with(records, "target_id", variant), _TARGET)
    if term.lower() not in _variants(term):  # ServiceNow sys_ids are lower-case hex
        take(_starting_with(records, "target_id", term.lower()), _TARGET)
    if results.amount is not None:
        amount = results.amount
        # a credit note of that amount too
        rows = records.filter(doc_amount__in=sorted({amount.value, -amount.value}))
        if amount.currency:
            rows = rows.filter(doc_currency=amount.currency)
        take(rows.order_by("integration_id", "doc_amount")[:PROBE_LIMIT], _AMOUNT_WORDS)
    # A supplier found (by name or code) brings its documents: they carry its code. One more
    # lookup on (integration, doc_supplier), no join.
    codes: dict[int, set[str]] = {}
    for row, _ in found.values():
        if is_supplier_stream(row.stream) and row.doc_number:
            codes.setdefault(row.integration_id, set()).add(row.doc_number)
    if codes:
        of_supplier = Q()
        for integration_id, its_codes in sorted(codes.items()):
            of_supplier |= Q(integration_id=integration_id, doc_supplier__in=sorted(its_codes))
        take(records.filter(of_supplier).order_by("integration_id", "doc_supplier")
             [:PROBE_LIMIT], _SUPPLIER_NAME)

    groups: dict[str, Group] = {}
    for row, matched in found.values():
        integration = integrations[row.integration_id]
        label = stream_label(integration.kind, row.stream)
        group = groups.setdefault(label, Group(label))
        money = row.doc_amount is not None or row.doc_date is not None
        group.money = group.money or money
        number = row.business_key or row.source_key
        # a document known by our number alone (a purchase order, a journal) has no supplier's invoice number
        supplier_invoice = row.doc_number if money and row.doc_number != number else ""
        if matched == _SUPPLIER_INVOICE and not money:
            matched = _SUPPLIER_CODE
        elif matched == _SUPPLIER_INVOICE and not supplier_invoice:
            matched = _NUMBER
        group.hits.append(Hit(
            pk=row.pk,
            url=reverse("admin:integrations_syncrecord_change", args=[row.pk]),
            number=number,
            supplier_invoice=supplier_invoice,
            supplier=row.doc_supplier,
            day=row.doc_date,
            amount=amount_text(row.doc_currency, row.doc_amount),
            status=row.status,
            status_words=row.get_status_display(),
            badge=display.badge(row.status, row.get_status_display()),
            integration=integration.name,
            matched=matched,
        ))
    shown = 0
    # invoices (known by a supplier's invoice number) first, then other documents (orders,
    # journals, payments), then master data
    for group in sorted(groups.values(), key=lambda g: (not g.money, not any(h.supplier_invoice for h in g.hits),
                                                         g.label)):
        group.hits.sort(key=lambda h: (h.day or date.min, h.number), reverse=True)
        room = MAX_RESULTS - shown
        if room <= 0:
            results.truncated = True
            break
        if len(group.hits) > room:
            group.hits = group.hits[:room]
            results.truncated = True
        shown += len(group.hits)
        results.groups.append(group)
    results.total = shown
    return results


def search_view(request: HttpRequest) -> HttpResponse:
    """``/search/?q=…``: the results page of the header search box."""
    query = request.GET.get("q", "")
    results = search_records(request.user, query)
    context = {
        **admin.site.each_context(request),
        "title": f"Search: {results.query}" if results.query else "Search",
        "results": results,
        "search_query": results.query,
    }
    return TemplateResponse(request, "console/search_results.html", context)
