"""``benchmark --admin``: the pages a clerk uses, over a million records, as a multi-pair portal has them.

Runs in the benchmark's worker process against its own throwaway database. Builds one tenant
per pair of :data:`~integrations.benchmark.pairs.PAIRS` (each pair's own document, dummy URLs),
then ``rows`` sync records spread over every pair's record streams (money documents with the
snapshots their flow reads, so the document columns and ``doc_*`` search fields are filled as a
sync fills them; 1% failed, 0.5% held for mapping, over a year), ``rows`` audit events, the
mappings with their held figures, 90 days of hourly stream runs, and twelve monthly
reconciliations per integration that has money streams, whose difference lines add up to about
``rows / 10``. Everything is written in chunks with ``insert_many``: memory stays flat.

Each page is asked as a superuser and as one tenant's operator through Django's test client,
timing the server side (the whole request: middleware, queries, template) and counting its
queries: once to warm up, then ``repeat`` times; the median is reported.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

CHUNK = 20_000
ACTIONS = ("records.posted", "run.started", "run.finished", "record.failed", "record.held", "mapping.approved",
           "connection.token_refreshed", "record.replayed")
# records per stream, relative: a portal moves many more documents than suppliers or accounts
WEIGHT_MONEY, WEIGHT_DOCUMENT, WEIGHT_MASTER = 6, 3, 1
MONTHS = 12  # monthly reconciliations per integration with money streams
RUN_DAYS = 90  # hourly stream runs kept per stream
MAPPINGS_PER_KIND = 300
LINES_PER_DOCUMENT = 5
CURRENCIES = {"x3-servicenow": ("EUR", "GBP"), "intacct-servicenow": ("USD", "CAD"),
              "sage300-servicenow": ("CAD", "USD"), "syspro-servicenow": ("ZAR", "USD"),
              "servicetitan-x3": ("USD", "USD")}
NAMES = ("Vandelay", "Northwind", "Globex", "Initech", "Umbrella", "Cyberdyne", "Soylent", "Hooli", "Wonka",
         "Tyrell", "Stark", "Wayne", "Acme", "Gringotts", "Oceanic", "Aperture", "Monarch", "Dunder")
TRADES = ("Industrial", "Supply", "Logistics", "Metals", "Electric", "Packaging", "Services", "Tools", "Freight")
SUFFIXES = ("Ltd", "GmbH", "SA", "Inc", "LLC", "BV")

# page -> (admin URL name or path, query string); "{...}" are filled from what was built
PAGES: dict[str, tuple[str, str]] = {
    "dashboard": ("admin:index", ""),
    "records": ("admin:integrations_syncrecord_changelist", ""),
    "records_failed_queue": ("admin:integrations_failedrecord_changelist", ""),
    "records_held_queue": ("admin:integrations_heldrecord_changelist", ""),
    "records_search": ("admin:integrations_syncrecord_changelist", "q={record_key}"),
    "record_page": ("admin:integrations_syncrecord_change", "{record_pk}"),
    "search_invoice_number": ("search", "q={invoice_number}"),
    "search_supplier": ("search", "q={supplier_name}"),
    "search_amount": ("search", "q={amount}"),
    "mappings": ("admin:integrations_mapping_changelist", ""),
    "mappings_to_decide": ("admin:integrations_mapping_changelist", "queue=decide"),
    "reconciliations": ("admin:integrations_reconciliationrun_changelist", ""),
    "reconciliation_run": ("admin:integrations_reconciliationrun_change", "{run_pk}"),
    "audit": ("admin:integrations_auditevent_changelist", ""),
    "audit_by_action": ("admin:integrations_auditevent_changelist", "action=record.failed"),
}
# pages whose "query" is the object id of a change page
OBJECT_PAGES = frozenset({"record_page", "reconciliation_run"})


def _status(index: int) -> tuple[str, str]:
    """1% failed (transient/data), 0.5% held, the rest synced (``index`` scrambled, see :func:`_mix`)."""
    if index % 100 == 7:
        return "failed", "transient" if index % 200 == 7 else "data"
    if index % 200 == 13:
        return "held", ""
    return "synced", ""


def _when(now: Any, index: int, rows: int) -> Any:
    """Rows spread over a year, newest last, as a long-lived tenant's would be."""
    return now - timedelta(seconds=(rows - index) * 365 * 86400 // max(rows, 1))


def _mix(index: int, salt: int = 0) -> int:
    """A fixed pseudo-random number per index (statuses, amounts, suppliers), the same on every run:
    nothing follows the index's residue, which also picks the pair."""
    return ((index + salt * 7919) * 2654435761) % 4294967296 >> 8


def supplier_name(number: int) -> str:
    return f"{NAMES[number % len(NAMES)]} {TRADES[number // len(NAMES) % len(TRADES)]} " \
           f"{SUFFIXES[number // (len(NAMES) * len(TRADES)) % len(SUFFIXES)]}"


# --- money documents as each source system's client returns them --------------------------------
@dataclass(frozen=True)
class Doc:
    key: str
    supplier: str
    number: str  # the supplier's invoice number
    day: date
    currency: str
    amount: Decimal
    lines: int


def _lines(doc: Doc) -> list[tuple[int, Decimal]]:
    share = (doc.amount / doc.lines).quantize(Decimal("0.01"))
    return [(n, share if n < doc.lines else doc.amount - share * (doc.lines - 1)) for n in range(1, doc.lines + 1)]


def _x3_invoice(doc: Doc) -> dict[str, Any]:
    net = (doc.amount / Decimal("1.2")).quantize(Decimal("0.01"))
    return {"NUM": doc.key, "BPR": doc.supplier, "BPRVCR": doc.number, "BPRDAT": doc.day.isoformat(),
            "ACCDAT": doc.day.isoformat(), "CUR": doc.currency, "AMTNOT": str(net), "AMTATI": str(doc.amount),
            "UPDDATTIM": f"{doc.day.isoformat()}T10:15:00Z",
            "PINVOICED": [{"PIDLIN": n * 1000, "POHNUM": f"PO{doc.key[3:]}", "POPLIN": n * 1000,
                           "ITMREF": f"ITM{n:04d}", "QTYUOM": "1", "NETPRI": str(a), "AMTNOTLIN": str(a),
                           "ACC": f"6{n}200", "CCE": f"CC{n}"} for n, a in _lines(doc)]}


def _intacct_bill(doc: Doc) -> dict[str, Any]:
    return {"RECORDNO": doc.key[4:], "RECORDID": doc.key, "VENDORID": doc.supplier, "DOCNUMBER": doc.number,
            "WHENCREATED": doc.day.strftime("%m/%d/%Y"), "WHENDUE": (doc.day + timedelta(days=30)).strftime("%m/%d/%Y"),
            "CURRENCY": doc.currency, "TRX_TOTALENTERED": str(doc.amount), "TOTALENTERED": str(doc.amount),
            "STATE": "Posted", "WHENMODIFIED": doc.day.strftime("%m/%d/%Y 10:15:00"),
            "APBILLITEMS": {"apbillitem": [{"LINE_NO": str(n), "ACCOUNTNO": f"6{n}200", "DEPARTMENTID": f"D{n}",
                                            "TRX_AMOUNT": str(a), "ENTRYDESCRIPTION": f"Item {n}"}
                                           for n, a in _lines(doc)]}}


def _sage300_invoice(doc: Doc) -> dict[str, Any]:
    return {"BatchNumber": 1000 + int(doc.key[-3:]), "EntryNumber": int(doc.key[-6:]), "DocumentNumber": doc.number,
            "VendorNumber": doc.supplier, "DocumentDate": f"{doc.day.isoformat()}T00:00:00Z",
            "CurrencyCode": doc.currency, "DocumentTotalIncludingTax": str(doc.amount),
            "InvoiceDetails": [{"LineNumber": n, "GLAccount": f"6{n}200", "DistributedAmount": str(a)}
                               for n, a in _lines(doc)]}


def _syspro_invoice(doc: Doc) -> dict[str, Any]:
    return {"Supplier": doc.supplier, "Invoice": doc.number, "InvoiceDate": doc.day.isoformat(),
            "Currency": doc.currency, "OrigInvValue": str(doc.amount), "InvoiceBal1": "0.00",
            "Journal": doc.key, "Lines": [{"Line": n, "GlCode": f"6{n}200", "Value": str(a)} for n, a in _lines(doc)]}


MONEY_SNAPSHOTS: dict[tuple[str, str], Callable[[Doc], dict[str, Any]]] = {
    ("sage_x3__servicenow", "invoices"): _x3_invoice,
    ("sage_intacct__servicenow", "bills"): _intacct_bill,
    ("sage_300__servicenow", "invoices"): _sage300_invoice,
    ("syspro__servicenow", "invoices"): _syspro_invoice,
}
PREFIXES = {"invoices": "INV", "bills": "BILL", "purchase_orders": "PO", "approved_invoices": "AI", "payments": "PAY",
            "gl_accounts": "GL", "cost_centers": "CC", "gl_postings": "JNL", "job_costs": "JC",
            "inventory_bills": "IB"}


# --- the portal -----------------------------------------------------------------------------------
@dataclass
class Pairing:
    """One pair's tenant and integration, and how its records are spread over its streams."""

    name: str
    integration: Any
    cycle: list[str]  # stream names, each repeated by its weight
    money: str  # the money stream (empty when the flow has none)
    supplier_stream: str
    currencies: tuple[str, str]


@dataclass
class Built:
    users: dict[str, Any]
    seconds: dict[str, float]
    samples: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _pairings() -> list[Pairing]:
    from integrations.benchmark.pairs import PAIRS
    from integrations.engine.documents import is_supplier_stream
    from integrations.engine.runner import ensure_streams
    from integrations.flows import get_flow
    from integrations.models import Integration
    from integrations.tenants import load_document

    pairings = []
    for pair in PAIRS.values():
        document = pair.document("http://127.0.0.1:9", "http://127.0.0.1:9")
        # every pair's document names its tenant "bench": one tenant per pair here
        document["tenant"] = {**document["tenant"], "slug": f"bench-{pair.name}", "name": f"Benchmark {pair.name}"}
        load_document(document, actor="benchmark")
        integration = Integration.objects.select_related("tenant", "source").get(kind=pair.kind)
        ensure_streams(integration)
        streams = [cls.name for cls in get_flow(pair.kind).streams if not cls.is_reference]
        money = next((name for name in streams if (pair.kind, name) in MONEY_SNAPSHOTS), "")
        cycle = []
        for name in streams:
            weight = WEIGHT_MONEY if name == money else WEIGHT_MASTER if (
                is_supplier_stream(name) or name in ("gl_accounts", "cost_centers")) else WEIGHT_DOCUMENT
            cycle += [name] * weight
        supplier_stream = next(name for name in streams if is_supplier_stream(name))
        pairings.append(Pairing(pair.name, integration, cycle, money, supplier_stream, CURRENCIES[pair.name]))
    return pairings


def _supplier_code(pairs: int, p: int, pairing: Pairing, index: int, rows: int) -> str:
    """The code of an existing supplier record of the pair (the key a supplier record was stored under)."""
    length = len(pairing.cycle)
    position = pairing.cycle.index(pairing.supplier_stream)
    suppliers = max(1, (rows - p - pairs * position + pairs * length - 1) // (pairs * length))
    return f"S{p + pairs * (position + length * (_mix(index) % suppliers)):07d}"


def _record(pairing: Pairing, pairs: int, p: int, index: int, rows: int, now: datetime) -> tuple[Any, Doc | None]:
    from integrations.engine.documents import search_fields, stream_of
    from integrations.models import SyncRecord

    kind = pairing.integration.kind
    stream = pairing.cycle[(index // pairs) % len(pairing.cycle)]
    status, error_class = _status(_mix(index, 1))
    when = _when(now, index, rows)
    doc = None
    if stream == pairing.supplier_stream:
        key = f"S{index:07d}"
        number = _mix(index) % 5000
        snapshot: dict[str, Any] = {"BPSNUM": key, "BPSNAM": supplier_name(number), "name": supplier_name(number),
                                    "VENDORID": key, "CURRENCY": pairing.currencies[0], "STATUS": "active"}
    elif stream == pairing.money:
        key = f"{'BPI' if kind.startswith('sage_x3') else PREFIXES[stream]}{index:07d}"
        cents = 1000 + _mix(index) % 5_000_000
        doc = Doc(key, _supplier_code(pairs, p, pairing, index, rows), f"SI-{_mix(index) % 10_000_000:07d}",
                  (when - timedelta(days=index % 5)).date(), pairing.currencies[_mix(index, 5) % 10 == 3],
                  Decimal(cents) / 100, LINES_PER_DOCUMENT)
        snapshot = MONEY_SNAPSHOTS[(kind, stream)](doc)
    else:
        key = f"{PREFIXES.get(stream, stream[:3].upper())}{index:07d}"
        snapshot = {"id": key, "description": f"{stream} {index}", "amount": str(Decimal(_mix(index) % 100000) / 100),
                    "updated": when.isoformat()}
    missing = f"|{_held_key(pairing, index)}|" if status == "held" else ""
    record = SyncRecord(
        integration_id=pairing.integration.pk, stream=stream, source_key=key, business_key=key,
        status=status, error_class=error_class, source_cursor=when.isoformat(), source_snapshot=snapshot,
        source_hash=f"{index:064x}", target_id=f"{index:032x}" if status == "synced" else "",
        target_url=f"https://example.service-now.com/nav_to.do?uri=x_invoice.do?sys_id={index:032x}"
        if status == "synced" else "",
        error_message="HTTP 503 from ServiceNow" if error_class == "transient" else
        "Supplier not found in ServiceNow" if status == "failed" else "",
        missing=missing, attempts=1 if status == "synced" else 3,
        created_at=when, updated_at=when, synced_at=when if status == "synced" else None,
        **search_fields(stream_of(kind, stream), key, key, snapshot, pairing.integration.source.settings),
    )
    return record, doc


def _mapping_kinds(pairing: Pairing) -> list[str]:
    from integrations.flows import get_flow

    return [kind.name for kind in get_flow(pairing.integration.kind).mapping_kinds] or ["gl_account", "cost_center"]


def _held_key(pairing: Pairing, index: int) -> str:
    """What a held record waits for: one of the pair's undecided codes (every tenth mapping)."""
    kinds = _mapping_kinds(pairing)
    number = (_mix(index) % (MAPPINGS_PER_KIND // 10)) * 10
    return f"{kinds[index % len(kinds)]}:{6000 + number}"


@dataclass
class Books:
    """One month of one integration as its reconciliation counts it."""

    totals: dict[str, list[Decimal]] = field(default_factory=lambda: defaultdict(
        lambda: [Decimal(0), Decimal(0), Decimal(0), Decimal(0)]))  # currency -> counts and amounts
    daily: dict[str, dict[str, list[Decimal]]] = field(default_factory=lambda: defaultdict(
        lambda: defaultdict(lambda: [Decimal(0), Decimal(0)])))
    differences: int = 0


def _difference(line_for: Any, doc: Doc, record: Any, index: int, books: Books) -> Any:
    """The month's books for one money document, and its difference line (``None`` when it agrees):
    held and failed documents, and about a fifth of the synced ones (missing, amount or date)."""
    target: Decimal | None = doc.amount
    reason = {"held": "held", "failed": "failed"}.get(record.status, "")
    if not reason and _mix(index, 2) % 5 == 0:
        reason = ("missing", "amount", "amount", "date")[_mix(index, 3) % 4]
    if reason in ("held", "failed", "missing"):
        target = None
    elif reason == "amount":
        target = doc.amount + Decimal(_mix(index) % 5000) / 100 - 25
    total, day = books.totals[doc.currency], books.daily[doc.currency][doc.day.isoformat()]
    total[0] += 1
    total[2] += doc.amount
    day[0] += doc.amount
    if target is not None and reason != "date":
        total[1] += 1
        total[3] += target
        day[1] += target
    if not reason:
        return None
    books.differences += 1
    return line_for(reason, doc, target)


def _months(now: datetime) -> list[tuple[date, date]]:
    last = now.date().replace(day=1) - timedelta(days=1)
    months = []
    for _ in range(MONTHS):
        months.append((last.replace(day=1), last))
        last = last.replace(day=1) - timedelta(days=1)
    return months[::-1]


def _reconciliations(pairings: list[Pairing], now: datetime) -> dict[tuple[int, date], Any]:
    from integrations.models import ReconciliationRun

    runs = {}
    for pairing in pairings:
        if not pairing.money:
            continue
        for first, last in _months(now):
            runs[(pairing.integration.pk, first)] = ReconciliationRun.objects.create(
                integration=pairing.integration, period_start=first, period_end=last, trigger="schedule",
                triggered_by="system")
    return runs


def _close(runs: dict[tuple[int, date], Any], books: dict[tuple[int, date], Books], pairings: list[Pairing]) -> None:
    """Each run's totals, chart and verdict, as the reconciliation stored them."""
    from integrations.models import ReconciliationRun

    money = {p.integration.pk: p.money for p in pairings}
    for (integration_id, first), run in runs.items():
        month = books.get((integration_id, first), Books())
        stream = money[integration_id]
        totals = [{"stream": stream, "label": stream, "currency": currency, "source_count": int(t[0]),
                   "source_amount": str(t[2]), "target_count": int(t[1]), "target_amount": str(t[3])}
                  for currency, t in sorted(month.totals.items())]
        daily = {stream: {currency: {day: [str(s), str(t)] for day, (s, t) in sorted(days.items())}
                          for currency, days in month.daily.items()}}
        started = datetime.combine(run.period_end + timedelta(days=1), datetime.min.time()).replace(
            hour=2, tzinfo=UTC)
        ReconciliationRun.objects.filter(pk=run.pk).update(
            status="differences" if month.differences else "balanced", differences=month.differences,
            totals=totals, daily=daily, api_calls=40, started_at=started, finished_at=started + timedelta(minutes=3))


def _mappings(pairings: list[Pairing], now: datetime) -> int:
    """Every pair's codes: most approved, every tenth undecided (what held records wait for)."""
    from integrations.engine.bulk import insert_many
    from integrations.engine.mappings import refresh_held
    from integrations.models import Mapping

    count = 0
    for pairing in pairings:
        batch = []
        for kind in _mapping_kinds(pairing):
            for n in range(MAPPINGS_PER_KIND):
                code = str(6000 + n)
                undecided = n % 10 == 0
                status = ("suggested" if n % 20 == 0 else "unmapped") if undecided else \
                    "ignored" if n % 50 == 7 else "approved"
                target = "" if status in ("unmapped", "ignored") else f"T{code}"
                batch.append(Mapping(
                    integration_id=pairing.integration.pk, kind=kind, source_code=code,
                    source_label=f"{kind.replace('_', ' ')} {code}", target_code=target,
                    target_label=f"{kind.replace('_', ' ')} {target}" if target else "", status=status,
                    reason="name_match" if status == "suggested" else "exact_code" if status == "approved" else "",
                    confidence=80 if status == "suggested" else 100 if status == "approved" else None,
                    candidates=[{"code": f"T{code}", "label": f"{kind} T{code}", "score": 80, "reason": "name"}]
                    if target else [], ignore_reason="Control account" if status == "ignored" else "",
                    updated_at=now))
        insert_many(Mapping, batch, stamp=False)
        count += len(batch)
        refresh_held(pairing.integration)  # the held figures, as runs and replays keep them
    return count


def _stream_runs(pairings: list[Pairing], now: datetime, days: int) -> int:
    """Hourly runs of every record stream over the last ``days`` days (the dashboard's chart)."""
    from integrations.engine.bulk import insert_many
    from integrations.models import SyncRun

    count, batch = 0, []
    for pairing in pairings:
        for stream in dict.fromkeys(pairing.cycle):
            for hour in range(days * 24, 0, -1):
                started = now - timedelta(hours=hour)
                batch.append(SyncRun(integration_id=pairing.integration.pk, stream=stream, trigger="schedule",
                                     status="succeeded", read=12, created=10, updated=2, api_calls=4,
                                     started_at=started, finished_at=started + timedelta(seconds=20),
                                     triggered_by="system"))
            if len(batch) >= CHUNK:
                insert_many(SyncRun, batch, stamp=False)
                count, batch = count + len(batch), []
    insert_many(SyncRun, batch, stamp=False)
    return count + len(batch)


def build(rows: int, run_days: int = RUN_DAYS) -> Built:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import Membership, Role
    from integrations.engine.bulk import insert_many
    from integrations.models import AuditEvent, ReconciliationLine, SyncAttempt, SyncRecord

    pairings = _pairings()
    pairs = len(pairings)
    now = timezone.now()
    runs = _reconciliations(pairings, now)
    books: dict[tuple[int, date], Books] = defaultdict(Books)
    built = Built(users={}, seconds={})
    started = time.perf_counter()
    lines_written = 0
    for start in range(0, rows, CHUNK):
        records, documents = [], []
        for index in range(start, min(rows, start + CHUNK)):
            p = index % pairs
            record, doc = _record(pairings[p], pairs, p, index, rows, now)
            records.append(record)
            documents.append((index, p, doc))
        insert_many(SyncRecord, records, stamp=False)
        # a fresh table numbers rows in insertion order: the chunk's pks, checked at both ends
        last_pk = SyncRecord.objects.order_by("-pk").values_list("pk", flat=True)[0]
        first_pk = last_pk - len(records) + 1
        assert SyncRecord.objects.get(pk=first_pk).source_key == records[0].source_key
        lines = []
        for offset, (index, p, doc) in enumerate(documents):
            if doc is None:
                continue
            run = runs.get((pairings[p].integration.pk, doc.day.replace(day=1)))
            if run is None:  # this month is not closed yet
                continue
            record = records[offset]

            def line_for(reason: str, doc: Doc, target: Decimal | None, run: Any = run, record: Any = record,
                         pk: int = first_pk + offset, index: int = index) -> Any:
                return ReconciliationLine(
                    run_id=run.pk, stream=record.stream, reason=reason, record_id=pk, source_key=doc.key,
                    business_key=doc.key, supplier=doc.supplier, currency=doc.currency, source_date=doc.day,
                    source_amount=doc.amount, target_id=f"{index:032x}" if target is not None else "",
                    target_currency=doc.currency if target is not None else "",
                    target_date=(doc.day + timedelta(days=40)) if reason == "date" else
                    doc.day if target is not None else None,
                    target_amount=target, missing=record.missing, message=record.error_message)

            month = books[(pairings[p].integration.pk, doc.day.replace(day=1))]
            line = _difference(line_for, doc, record, index, month)
            if line is not None:
                lines.append(line)
            if _mix(index, 4) % 50 == 0:  # a row in the target that no record of ours made
                month.differences += 1
                extra = Decimal(_mix(index + 1) % 100000) / 100
                month.totals[doc.currency][1] += 1
                month.totals[doc.currency][3] += extra
                month.daily[doc.currency][doc.day.isoformat()][1] += extra
                lines.append(ReconciliationLine(
                    run_id=run.pk, stream=record.stream, reason="extra", source_key=f"X{index:07d}",
                    business_key=f"X{index:07d}", supplier=doc.supplier, target_id=f"x{index:031x}",
                    target_currency=doc.currency, target_date=doc.day, target_amount=extra))
        insert_many(ReconciliationLine, lines)
        lines_written += len(lines)
    _close(runs, books, pairings)
    built.seconds["records"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    for start in range(0, rows, CHUNK):
        batch = []
        for index in range(start, min(rows, start + CHUNK)):
            integration = pairings[index % pairs].integration
            batch.append(AuditEvent(tenant_id=integration.tenant_id, integration_id=integration.pk,
                                    actor_name="system", action=ACTIONS[index % len(ACTIONS)],
                                    message=f"event {index}", detail={"n": index},
                                    created_at=_when(now, index, rows)))
        insert_many(AuditEvent, batch, stamp=False)
    built.seconds["audit"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    built.counts["mappings"] = _mappings(pairings, now)
    built.counts["stream_runs"] = _stream_runs(pairings, now, run_days)
    built.counts["reconciliations"] = len(runs)
    built.counts["reconciliation_lines"] = lines_written
    built.seconds["mappings_and_runs"] = round(time.perf_counter() - started, 1)

    # what a clerk looks for, from the first pair's tenant (the operator's)
    first = pairings[0]
    documents = SyncRecord.objects.filter(integration=first.integration, stream=first.money,
                                          doc_amount__isnull=False).order_by("pk").only(
        "pk", "business_key", "doc_number", "doc_amount")
    # a held invoice (a small --admin-rows may have none in this stream: then any invoice)
    held = documents.filter(status="held").first() or documents.first()
    supplier = SyncRecord.objects.filter(integration=first.integration, stream=first.supplier_stream).only(
        "doc_supplier").order_by("pk").first()
    biggest = max((run for run in runs.values() if run.integration_id == first.integration.pk),
                  key=lambda run: run.lines.count())
    for number in range(1, 4):
        SyncAttempt.objects.create(record_id=held.pk, number=number, outcome="held", action="",
                                   payload={"invoice": held.business_key}, error_message="waiting for a mapping")
    built.samples = {"record_key": held.business_key, "record_pk": str(held.pk),
                     "invoice_number": held.doc_number, "supplier_name": supplier.doc_supplier.split()[0],
                     "amount": f"{held.doc_amount:,.2f}", "run_pk": str(biggest.pk)}
    built.counts["reconciliation_run_lines"] = biggest.lines.count()

    user_model = get_user_model()
    admin = user_model.objects.create_superuser("bench-admin", "admin@example.com", "bench-pass-0123456789")
    operator = user_model.objects.create_user("bench-operator", "op@example.com", "bench-pass-0123456789",
                                              is_staff=True)
    Membership.objects.create(user=operator, tenant_id=first.integration.tenant_id, role=Role.OPERATOR)
    built.users = {"superuser": admin, "operator": operator}
    return built


def time_page(client: Any, url: str, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: templates, caches, the database's pages
    timings, queries, status = [], [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        queries.append(len(captured.captured_queries))
        status = response.status_code
    return {"server_ms": round(statistics.median(timings), 1), "queries": max(queries), "status": status}


def page_urls(samples: dict[str, str]) -> dict[str, str]:
    """Each timed page's URL, with what was built filled in."""
    from urllib.parse import quote

    from django.urls import reverse

    urls = {}
    for page, (name, query) in PAGES.items():
        if page in OBJECT_PAGES:
            urls[page] = reverse(name, args=[query.format(**samples)])
        else:
            filled = query.format(**{k: quote(v) for k, v in samples.items()})
            urls[page] = reverse(name) + (f"?{filled}" if filled else "")
    return urls


def admin_timing(config: dict[str, Any]) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command

    rows = int(config["rows"])
    repeat = int(config.get("repeat", 5))
    call_command("migrate", verbosity=0)
    built = build(rows)
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    return {"rows": rows, **{f"build_seconds.{k}": v for k, v in built.seconds.items()},
            **{f"built.{k}": v for k, v in built.counts.items()}, **time_pages(built, repeat)}


def time_pages(built: Built, repeat: int) -> dict[str, Any]:
    from django.test import Client

    figures: dict[str, Any] = {}
    urls = page_urls(built.samples)
    for who, user in built.users.items():
        client = Client()
        client.force_login(user)
        for page, url in urls.items():
            timed = time_page(client, url, repeat)
            prefix = page if who == "superuser" else f"{page}.{who}"
            figures[f"{prefix}.server_ms"] = timed["server_ms"]
            figures[f"{prefix}.queries"] = timed["queries"]
            if timed["status"] != 200:
                figures[f"{prefix}.status"] = timed["status"]
    return figures
