"""Invoice payments recorded in ServiceNow, posted to Sage Intacct as AP payments exactly once.

The seed: "post approved invoices and payment records from ServiceNow back into Sage Intacct".
The stream polls the connection's logical ``payment`` table (table profile: ``sn_apo_invoice_payment``
for "seed", ``sn_shop_invoice_payment_detail`` for "apo", both [U] as to their columns; renamable
with ``settings["field_names"]["payment"]``) by ``sys_updated_on``. A payment row names the invoice
it pays (``invoice``, a reference to the invoice row this integration staged from an Intacct bill,
whose source-id column holds the bill's RECORDNO), ``payment_amount``, ``payment_date``,
``payment_method``, ``payment_reference_id`` and ``currency``.

Each becomes one ``create`` of an ``APPYMT`` [D: developer.intacct.com/api/accounts-payable/ap-payments/]
paid from the integration's ``payment_bank_account`` (``FINANCIALENTITY``), for the bill's vendor,
with one ``APPYMTDETAIL`` applying ``TRX_PAYMENTAMOUNT`` to the bill (``RECORDKEY``). Nothing is
posted while ``payment_bank_account`` is empty: that setting turns the stream on.

Exactly once: the function goes out with ``uniqueid=true`` and a controlid derived from the payment
and its content, so a retried request is refused by Intacct and resolved to the payment it made;
the payment's ``DESCRIPTION`` carries the ServiceNow row's source identity, and a payment whose
earlier attempt may have committed unseen (a lost answer, a crash) is looked up by it
(``readByQuery`` on APPYMT) before anything is sent again. A payment posted once is never posted
again: a submitted Intacct payment cannot be edited, so a payment changed in ServiceNow afterwards
fails (data) with what to do. A bill Intacct refuses to pay (already paid, overpaid, another
vendor's) fails with Intacct's message and its correction, in the Failed queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.flows.base import (
    Checkpoint,
    InvalidRecord,
    Money,
    RecordStream,
    SkipRecord,
    SourceRecord,
    StreamContext,
    WriteItem,
    WriteResult,
    as_day,
    as_decimal,
    canonical_hash,
)
from integrations.flows.intacct_approvals import SOURCE_SYSTEM, ApprovedInvoices, source_system_field
from integrations.flows.values import text
from integrations.systems.errors import DataError, SyncError, TransientError
from integrations.systems.intacct import WriteOp, derived_controlid, intacct_date
from integrations.systems.schema import MAP, TEXT, Setting

# ServiceNow's documented payment-method choices [D: SNDOCS inbound-invoice-payment-fields.md] →
# Intacct PAYMENTMETHOD values [D: ap-payments page]. Which Intacct method a debit card or a wire
# is recorded as is the customer's choice [U]: settings["payment_methods"] overrides any of them.
DEFAULT_PAYMENT_METHODS = {
    "bank_transfer": "EFT",
    "wire_transfer": "EFT",
    "debit_card": "EFT",
    "cash_payment": "Cash",
    "cheque": "Printed Check",
    "credit_card": "Credit Card",
}
COLUMNS = ("invoice", "payment_amount", "payment_date", "payment_method", "payment_reference_id", "currency")
SETTINGS = (
    Setting("payment_bank_account", TEXT, default="", max_length=80,
            help="Intacct checking account (FINANCIALENTITY) that invoices paid in ServiceNow are paid from; "
                 "empty: payments are not posted to Intacct."),
    Setting("payment_methods", MAP, max_length=80,
            help="ServiceNow payment method → Intacct payment method (EFT, Cash, Printed Check, Credit Card, ACH...), "
                 "overriding the defaults."),
    Setting("default_payment_method", TEXT, default="EFT", max_length=80,
            help="Intacct payment method of a ServiceNow payment that names none."),
)


def _column(ctx: StreamContext, name: str) -> str:
    """The payment table's column for a logical name (settings["field_names"]["payment"] renames it)."""
    return str(((ctx.setting("field_names", {}) or {}).get("payment") or {}).get(name) or name)


def payment_description(ctx: StreamContext, key: str) -> str:
    """The APPYMT DESCRIPTION that names the ServiceNow payment: what a lost answer is looked up by."""
    return f"ServiceNow payment {ctx.identity(key)}"


class PaymentsToIntacct(RecordStream):
    name = "payments"
    label = "Payments (ServiceNow → Intacct AP payments)"
    reads = "target"
    depends_on = ("bills", ApprovedInvoices.name)
    default_schedule = "hourly"

    def __init__(self) -> None:
        self._bills: dict[str, dict[str, Any]] = {}
        self._read_error: SyncError | None = None

    # --- reading ServiceNow -------------------------------------------------------------------
    def _fields(self, ctx: StreamContext) -> list[str]:
        sn = ctx.target
        invoice = _column(ctx, "invoice")
        return ["sys_id", "sys_updated_on", "sys_mod_count", *(_column(ctx, name) for name in COLUMNS),
                f"{invoice}.number", f"{invoice}.{sn.source_id_field}", f"{invoice}.{source_system_field(ctx)}"]

    def _record(self, ctx: StreamContext, row: dict[str, Any]) -> SourceRecord:
        reference = text(row.get(_column(ctx, "payment_reference_id")))
        invoice_number = text(row.get(f"{_column(ctx, 'invoice')}.number"))
        return SourceRecord(key=text(row.get("sys_id")), cursor=text(row.get("sys_updated_on")),
                            data={k: v for k, v in row.items() if k != "sys_updated_on"},
                            business_key=reference or (f"payment of {invoice_number}" if invoice_number else ""))

    def read(self, ctx: StreamContext, checkpoint: Checkpoint) -> Iterator[list[SourceRecord]]:
        if not ctx.setting("payment_bank_account", ""):
            return  # off until a bank account is set: not one call
        sn = ctx.target
        for page in sn.iter_updated_since(sn.table("payment"), checkpoint.cursor, after_id=checkpoint.after_key,
                                          fields=self._fields(ctx)):
            yield [self._record(ctx, row) for row in page if row.get("sys_id")]

    def fetch_one(self, ctx: StreamContext, key: str) -> SourceRecord | None:
        sn = ctx.target
        rows, _ = sn.list(sn.table("payment"), f"sys_id={key}", fields=self._fields(ctx), limit=2)
        rows = [row for row in rows if text(row.get("sys_id")) == key]
        return self._record(ctx, rows[0]) if rows else None

    def document(self, snapshot: dict[str, Any], source_settings: dict[str, Any]) -> Money | None:
        """The payment for the console (not counted by reconciliation): known by its business key
        (its reference, else "payment of <invoice>"), dated and valued as paid; no supplier (the
        row names only the invoice). Read under the default column names: a snapshot of renamed
        columns (the integration's ``field_names``, not at hand here) has no document."""
        paid = as_decimal(snapshot.get("payment_amount"))
        if paid is None:
            return None
        reference, invoice = text(snapshot.get("payment_reference_id")), text(snapshot.get("invoice.number"))
        return Money(as_day(snapshot.get("payment_date")), text(snapshot.get("currency")).strip(), paid,
                     number=reference or (f"payment of {invoice}" if invoice else ""))

    # --- transform ------------------------------------------------------------------------------
    def _bill_of(self, ctx: StreamContext, record: SourceRecord) -> str:
        """The Intacct bill the paid invoice is linked to (its source identity), or ""."""
        identity = text(record.data.get(f"{_column(ctx, 'invoice')}.{ctx.target.source_id_field}"))
        return (ctx.key_of(identity) or "") if identity else ""

    def prepare_page(self, ctx: StreamContext, records: list[SourceRecord]) -> None:
        bills = sorted({b for r in records if (b := self._bill_of(ctx, r))})
        ctx.prefetch("bills", bills)
        ctx.prefetch(ApprovedInvoices.name, [text(r.data.get(_column(ctx, "invoice"))) for r in records])
        self._bills, self._read_error = {}, None
        if not bills:
            return
        try:
            self._bills = {text(row.get("RECORDNO")): row
                           for row in ctx.source.read("APBILL", bills, ["RECORDNO", "VENDORID", "CURRENCY", "STATE",
                                                                        "TOTALDUE", "RECORDID"])}
        except SyncError as exc:  # each payment fails (and is retried) on its own
            self._read_error = exc

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, Any]:
        d = record.data
        bank = text(ctx.setting("payment_bank_account", ""))
        if not bank:
            raise SkipRecord("No payment_bank_account is set for this integration; payments are not posted")
        invoice = text(d.get(_column(ctx, "invoice")))
        if not invoice:
            raise InvalidRecord("The payment names no invoice")
        system = text(d.get(f"{_column(ctx, 'invoice')}.{source_system_field(ctx)}"))
        if system and system != SOURCE_SYSTEM:
            raise SkipRecord(f"Payment of an invoice from {system}, not from Sage Intacct")
        bill = self._bill_of(ctx, record)
        if not bill:
            identity = text(d.get(f"{_column(ctx, 'invoice')}.{ctx.target.source_id_field}"))
            if identity:
                raise SkipRecord(f"Payment of an invoice staged from another source ({identity.partition(':')[0]})")
            raise SkipRecord("Payment of an invoice that is not linked to an Intacct bill")
        if ctx.lineage_of("bills", bill) is None and ctx.lineage_of(ApprovedInvoices.name, invoice) is None:
            raise SkipRecord(f"Payment of Intacct bill {bill}, which this integration did not sync")
        if self._read_error is not None:
            raise self._read_error
        current = self._bills.get(bill)
        if not current:
            raise InvalidRecord(f"Intacct bill {bill} no longer exists")
        amount = _amount(d.get(_column(ctx, "payment_amount")))
        day = text(d.get(_column(ctx, "payment_date")))
        try:
            paid_on = intacct_date(day)
        except ValueError:
            raise InvalidRecord(f"Payment date {day!r} is not a date (YYYY-MM-DD)") from None
        if not paid_on:
            raise InvalidRecord("The payment has no payment date")
        currency = text(d.get(_column(ctx, "currency"))) or text(current.get("CURRENCY"))
        values = {
            "FINANCIALENTITY": bank,
            "PAYMENTMETHOD": self._method(ctx, text(d.get(_column(ctx, "payment_method")))),
            "VENDORID": text(current.get("VENDORID")),
            "DOCNUMBER": text(d.get(_column(ctx, "payment_reference_id"))) or None,
            "DESCRIPTION": payment_description(ctx, record.key),
            "PAYMENTDATE": paid_on,
            "CURRENCY": currency or None,
            "APPYMTDETAILS": {"APPYMTDETAIL": [{"RECORDKEY": bill, "TRX_PAYMENTAMOUNT": format(amount, "f")}]},
        }
        return {"bill": bill, "values": {k: v for k, v in values.items() if v is not None}}

    @staticmethod
    def _method(ctx: StreamContext, method: str) -> str:
        if not method:
            return text(ctx.setting("default_payment_method", "EFT")) or "EFT"
        methods = {**DEFAULT_PAYMENT_METHODS, **(ctx.setting("payment_methods", {}) or {})}
        found = methods.get(method) or methods.get(method.lower())
        if not found:
            raise InvalidRecord(f"Payment method {method!r} has no Intacct payment method; add it to the "
                                "integration's payment_methods setting")
        return str(found)

    # --- writing Intacct ------------------------------------------------------------------------
    def write_page(self, ctx: StreamContext, items: list[WriteItem]) -> dict[str, WriteResult]:
        intacct = ctx.source
        results: dict[str, WriteResult] = {}
        todo: list[tuple[WriteItem, WriteOp, str]] = []
        for item in items:
            p = item.payload
            digest = canonical_hash(p["values"])
            if item.target_id:
                if item.target_refs.get("posted") == digest:
                    results[item.key] = WriteResult("unchanged", item.target_id)
                else:
                    results[item.key] = WriteResult("", error=DataError(
                        f"Already posted to Intacct as payment {item.target_id}; a submitted Intacct payment cannot "
                        "be changed", detail=f"Correction: reverse payment {item.target_id} in Intacct and record the "
                                             "corrected payment there, or restore the payment in ServiceNow"))
                continue
            controlid = derived_controlid(self.name, item.key, digest)
            op = WriteOp(item.key, "create", "APPYMT", dict(p["values"]), controlid,
                         {"DESCRIPTION": p["values"]["DESCRIPTION"]})
            todo.append((item, op, digest))
        todo = self._found_after_lost_answers(intacct, todo, results)
        outcomes = intacct.write([op for _, op, _ in todo]) if todo else {}
        for item, op, digest in todo:
            outcome = outcomes[item.key]
            if outcome.error is not None:
                results[item.key] = WriteResult("", error=outcome.error)
                continue
            if not outcome.record_no:
                results[item.key] = WriteResult("", error=TransientError(
                    "Intacct accepted the payment but did not say its record number; it is looked up before "
                    "anything is sent again", ambiguous=True))
                continue
            results[item.key] = WriteResult("created", outcome.record_no, target_refs={
                "posted": digest, "bill": item.payload["bill"], "controlid": op.controlid,
                "duplicate_refused": "yes" if outcome.duplicate else ""})
        return results

    @staticmethod
    def _found_after_lost_answers(intacct: Any, todo: list[tuple[WriteItem, WriteOp, str]],
                                  results: dict[str, WriteResult]) -> list[tuple[WriteItem, WriteOp, str]]:
        """Payments whose earlier attempt may have committed unseen, found by DESCRIPTION, are done."""
        uncertain = [(index, op) for index, (item, op, _) in enumerate(todo) if item.uncertain]
        if not uncertain:
            return todo
        found = intacct.find("APPYMT", [op.identity for _, op in uncertain], fields=["RECORDNO", "DESCRIPTION"])
        done: set[int] = set()
        for position, (index, op) in enumerate(uncertain):
            row = found.get(position)
            if row is None:
                continue
            item, _, digest = todo[index]
            done.add(index)
            results[item.key] = WriteResult("created", text(row.get("RECORDNO")), target_refs={
                "posted": digest, "bill": item.payload["bill"], "controlid": op.controlid,
                "found_after_lost_answer": "yes"})
        return [entry for index, entry in enumerate(todo) if index not in done]


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(text(value).strip())
    except InvalidOperation:
        raise InvalidRecord(f"Payment amount {value!r} is not an amount") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidRecord(f"Payment amount {text(value)!r} must be greater than zero")
    # Intacct rounds amounts to two decimals [D: ap-payments page]: send what it will book.
    return amount.quantize(Decimal("0.01"))
