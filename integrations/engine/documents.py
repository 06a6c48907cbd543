"""A record as AP people know it: the document (invoice, bill, journal), its supplier, date and money.

The money streams of each pair say how to read their snapshots (``RecordStream.money``, the same
reading month-end reconciliation uses); other records (suppliers, GL accounts, vendors) are known
by their business key alone. Reads only the snapshot the portal recorded: no vendor is asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from integrations.flows import get_flow
from integrations.flows.base import Money, RecordStream


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


def stream_label(kind: str, name: str) -> str:
    stream = stream_of(kind, name)
    return (stream.label or name) if stream is not None else name


def document_of(record: Any, kind: str, source_settings: dict[str, Any] | None) -> Document:
    """The record's document; its money when its stream is a money stream and the snapshot has it."""
    label = stream_label(kind, record.stream)
    number = record.business_key or record.source_key
    stream = stream_of(kind, record.stream)
    money: Money | None = None
    if stream is not None and stream.ledger is not None and isinstance(record.source_snapshot, dict):
        try:
            money = stream.money(record.source_snapshot, source_settings or {})
        except (KeyError, TypeError, ValueError, ArithmeticError):  # an old or partial snapshot
            money = None
    if money is None:
        return Document(label, number)
    return Document(label, money.number or number, money.supplier, money.day, money.currency, money.amount,
                    money.void)
