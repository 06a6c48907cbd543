"""A record as AP people know it: the document (invoice, bill, journal), its supplier, date and money.

Each document stream says how to read its snapshots (``RecordStream.document``: for money streams
the same reading month-end reconciliation uses, ``money``; purchase orders, journal entries and
payments read theirs without being counted by reconciliation); other records (suppliers, GL
accounts, vendors) are known by their business key alone. Reads only the snapshot the portal
recorded: no vendor is asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from integrations.flows import get_flow
from integrations.flows.base import Money, RecordStream
from integrations.flows.values import text
from integrations.systems.sage_x3 import DEFAULT_FIELDS as X3_FIELDS


@dataclass(frozen=True)
class Document:
    """What the console shows first about a record."""

    kind: str  # the stream's words, e.g. "Supplier invoices (X3 → ServiceNow AP)"
    number: str
    supplier: str = ""
    day: date | None = None
    currency: str = ""
    amount: Decimal | None = None
    void: bool = False

    @property
    def amount_text(self) -> str:
        return amount_text(self.currency, self.amount)


def amount_text(currency: str, amount: Decimal | None) -> str:
    """``EUR 13,468.28``; empty without an amount."""
    if amount is None:
        return ""
    return f"{currency} {amount:,.2f}".strip()


@lru_cache(maxsize=256)
def stream_of(kind: str, name: str) -> RecordStream | None:
    """The flow's stream of that name (``None`` for a stream the flow no longer has)."""
    try:
        stream = get_flow(kind).stream(name)
    except KeyError:
        return None
    return stream if isinstance(stream, RecordStream) else None


@lru_cache(maxsize=256)
def stream_label(kind: str, name: str) -> str:
    """A stream's label from its flow, reference streams included ("GL accounts (Sage X3)")."""
    try:
        return get_flow(kind).stream(name).label or name
    except KeyError:  # a stream the flow no longer has
        return name


# what an old or partial snapshot makes a reader raise: read as "no document"
_UNREADABLE = (AttributeError, KeyError, TypeError, ValueError, ArithmeticError)


def read_document(stream: RecordStream | None, snapshot: Any, source_settings: dict[str, Any] | None) -> Money | None:
    """The stream's document in ``snapshot`` (:meth:`RecordStream.document`); ``None`` when the
    stream has none or the snapshot cannot be read."""
    if stream is None or not isinstance(snapshot, dict) or not snapshot:
        return None
    try:
        return stream.document(snapshot, source_settings or {})
    except _UNREADABLE:
        return None


def document_of(record: Any, kind: str, source_settings: dict[str, Any] | None) -> Document:
    """The record's document; its number, supplier, date and amount when its stream reads them
    (:meth:`RecordStream.document`) and the snapshot has them."""
    label = stream_label(kind, record.stream)
    number = record.business_key or record.source_key
    money = read_document(stream_of(kind, record.stream), record.source_snapshot, source_settings)
    if money is None:
        return Document(label, number)
    return Document(label, money.number or number, money.supplier, money.day, money.currency, money.amount,
                    money.void)


# --- what the header search looks records up by ------------------------------------------------
# Copied onto each record when its snapshot is stored (``SyncRecord.doc_*``), so a search is a
# few index lookups and never opens a snapshot.
SEARCH_FIELDS = ("doc_number", "doc_supplier", "doc_amount", "doc_currency", "doc_date")
NO_SEARCH_FIELDS: dict[str, Any] = {"doc_number": "", "doc_supplier": "", "doc_amount": None, "doc_currency": "",
                                    "doc_date": None}
CENT = Decimal("0.01")
# DecimalField(max_digits=18, decimal_places=2): larger amounts are not stored (none is real)
AMOUNT_LIMIT = Decimal(10) ** 16
# Streams of supplier master data are named so in every flow (suppliers, vendors, suppliers_to_x3...)
_SUPPLIER_STREAM = re.compile(r"supplier|vendor")


def is_supplier_stream(name: str) -> bool:
    return bool(_SUPPLIER_STREAM.search(name))


def stored_amount(amount: Decimal | None) -> Decimal | None:
    """An amount as ``doc_amount`` holds it (to the cent), ``None`` when it cannot be."""
    if amount is None:
        return None
    try:
        amount = Decimal(amount).quantize(CENT)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return amount if abs(amount) < AMOUNT_LIMIT else None


def supplier_name(stream: RecordStream, key: str, business_key: str, snapshot: Any,
                  source_settings: dict[str, Any]) -> str:
    """A supplier record's name: its business key where the flow keys it by name (Intacct, Sage 300,
    SYSPRO, ServiceTitan), else the snapshot's name field (X3 by its class's configured names)."""
    if business_key and business_key != key:
        return business_key
    if not isinstance(snapshot, dict):
        return ""
    klass = getattr(stream, "klass", "")
    if klass in X3_FIELDS and "name" in X3_FIELDS[klass]:
        names = {**X3_FIELDS[klass], **(((source_settings or {}).get("x3_fields") or {}).get(klass) or {})}
        return text(snapshot.get(names["name"])).strip()
    return text(snapshot.get("name")).strip()


def search_fields(stream: RecordStream | None, key: str, business_key: str, snapshot: Any,
                  source_settings: dict[str, Any] | None) -> dict[str, Any]:
    """``SyncRecord.doc_*`` for a record: a document's number, supplier code, amount, currency and
    date (:meth:`RecordStream.document`, as the record pages read them); a supplier record's code
    and name; nothing for other records (found by business key and target id).

    Cheap (a few dict reads): it runs for every record a sync stores.
    """
    if stream is None:
        return dict(NO_SEARCH_FIELDS)
    settings = source_settings or {}
    money = read_document(stream, snapshot, settings)
    if money is not None:
        return {"doc_number": (money.number or "")[:100], "doc_supplier": (money.supplier or "")[:200],
                "doc_amount": stored_amount(money.amount), "doc_currency": (money.currency or "")[:3].upper(),
                "doc_date": money.day}
    if is_supplier_stream(stream.name):
        return {**NO_SEARCH_FIELDS, "doc_number": key[:100],
                "doc_supplier": supplier_name(stream, key, business_key, snapshot, settings)[:200]}
    return dict(NO_SEARCH_FIELDS)


def fill_search_fields(record: Any, kind: str, source_settings: dict[str, Any] | None) -> bool:
    """Set ``record.doc_*`` from its stored snapshot (the backfill); whether anything changed."""
    found = search_fields(stream_of(kind, record.stream), record.source_key, record.business_key,
                          record.source_snapshot, source_settings)
    changed = False
    for name, value in found.items():
        if getattr(record, name) != value:
            setattr(record, name, value)
            changed = True
    return changed


@dataclass
class Backfill:
    """What a backfill of ``doc_*`` did: records read and changed, and the last pk (to resume after)."""

    read: int = 0
    changed: int = 0
    last_pk: int = 0


def backfill_search_fields(record_model: Any, *, integration_ids: list[int] | None = None, after_pk: int = 0,
                           batch_size: int = 2000, progress: Any = None) -> Backfill:
    """Fill ``doc_*`` of stored records from their snapshots, ``batch_size`` records at a time in pk
    order (each batch one read and one bulk update, so memory stays flat at any table size).

    ``record_model`` is ``SyncRecord`` or a migration's historical model of it. ``progress`` is
    called with the :class:`Backfill` after each batch; resume with ``after_pk=its last_pk``.
    ``updated_at`` is left alone: nothing a person sees of the record changed.
    """
    integration_model = record_model._meta.get_field("integration").related_model
    integrations = integration_model.objects.select_related("source")
    if integration_ids is not None:
        integrations = integrations.filter(pk__in=integration_ids)
    kinds = {i.pk: (i.kind, dict(i.source.settings or {})) for i in integrations}
    records = record_model.objects.order_by("pk").only(
        "pk", "integration_id", "stream", "source_key", "business_key", "source_snapshot", *SEARCH_FIELDS)
    if integration_ids is not None:
        records = records.filter(integration_id__in=integration_ids)
    done = Backfill(last_pk=after_pk)
    while True:
        batch = list(records.filter(pk__gt=done.last_pk)[:batch_size])
        if not batch:
            return done
        changed = [record for record in batch if fill_search_fields(record, *kinds[record.integration_id])]
        if changed:
            record_model.objects.bulk_update(changed, list(SEARCH_FIELDS), batch_size=500)
        done.read += len(batch)
        done.changed += len(changed)
        done.last_pk = batch[-1].pk
        if progress is not None:
            progress(done)
