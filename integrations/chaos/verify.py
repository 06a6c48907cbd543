"""The end-state check: every target against its source, read over HTTP, by source identity.

For each record in a source system (supplier/vendor, purchase order, invoice/bill, with lines)
the ServiceNow rows carrying its key in the source-id column (``u_source_key``) are counted and
compared field by field. The portal's own database is asked only to classify a record that is
*not* in the target: held for a mapping nobody approved (terminal, listed), failed (visible in
the Failed queue, listed) or neither, which is a lost record. Definitions:

- **duplicates**: rows beyond the first for one source key, headers and lines alike, in
  ServiceNow; and in Intacct, bills beyond the first per (vendor, bill number).
- **lost**: a source record with no target row whose portal record is not held or failed
  (missing, synced, skipped or still pending), and an approved ServiceNow invoice that was
  never posted to Intacct.
- **mismatched**: a target row whose amounts, name or set of lines differ from the source
  (a lost update).
- **held**: waiting for a mapping that is not approved (expected: GL account 61200 in the X3
  tenants); **held_stranded**: still held although every mapping it waited for is approved.
- **orphans**: target rows whose source key no source record has (e.g. a line never deleted).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.chaos.outside import X3, Intacct, ServiceNow
from integrations.chaos.workload import TenantSpec
from integrations.flows.base import bare_key

SOURCE_KEY = "u_source_key"


def dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


@dataclass
class Expected:
    """One source record as the target should hold it."""

    stream: str
    table: str
    key: str
    fields: dict[str, Any]  # target column -> expected value (Decimals compared as numbers)
    line_table: str = ""
    lines: dict[str, dict[str, Any]] = field(default_factory=dict)  # "<key>/<n>" -> expected columns


@dataclass
class TenantResult:
    slug: str
    pair: str
    records: int = 0
    equal: int = 0
    duplicates: int = 0
    lost: int = 0
    mismatched: int = 0
    held: int = 0
    held_stranded: int = 0
    failed: int = 0
    orphans: int = 0
    details: list[str] = field(default_factory=list)

    def note(self, kind: str, message: str) -> None:
        if len(self.details) < 200:
            self.details.append(f"{self.slug} {kind}: {message}")


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, Decimal):
        return dec(actual) == expected
    return str(expected) == str(actual if actual is not None else "")


# --- what each source says the target must hold -----------------------------------------------
def x3_expected(spec: TenantSpec) -> list[Expected]:
    x3 = X3(spec.source_url)
    out = [Expected("suppliers", "proc_vendor", row["BPSNUM"], {"name": row["BPSNAM"]})
           for row in x3.list("BPSUPPLIER")]
    for row in x3.list("PORDER"):
        key = row["POHNUM"]
        out.append(Expected("purchase_orders", "proc_po", key, {"total_amount": dec(row["TOTAMTNOT"])},
                            "proc_po_item", {f"{key}/{line['POPLIN']}": {"total_amount": dec(line["LINAMT"])}
                                             for line in row.get("PORDERP") or []}))
    for row in x3.list("PINVOICE"):
        key = row["NUM"]
        out.append(Expected("invoices", "sn_apo_invoice", key,
                            {"subtotal": dec(row["AMTNOT"]), "amount_invoiced": dec(row["AMTATI"])},
                            "sn_apo_invoice_line",
                            {f"{key}/{line['PIDLIN']}": {"line_amount_invoiced": dec(line["AMTNOTLIN"])}
                             for line in row.get("PINVOICED") or []}))
    return out


def intacct_client(spec: TenantSpec) -> Intacct:
    from integrations.sandbox.intacct_seed import COMPANY_ID, SENDER_ID, SENDER_PASSWORD, USER_ID, USER_PASSWORD

    return Intacct(spec.source_url.rstrip("/") + "/ia/xml/xmlgw.phtml", sender=(SENDER_ID, SENDER_PASSWORD),
                   company=COMPANY_ID, user=(USER_ID, USER_PASSWORD))


def intacct_expected(spec: TenantSpec, bills: list[dict[str, Any]]) -> list[Expected]:
    intacct = intacct_client(spec)
    out = [Expected("vendors", "proc_vendor", row["VENDORID"], {"name": row["NAME"]})
           for row in intacct.query("VENDOR", "RECORDNO,VENDORID,NAME")]
    for bill in bills:
        key = bill["RECORDNO"]
        out.append(Expected("bills", "sn_apo_invoice", key, {"amount_invoiced": dec(bill["TRX_TOTALENTERED"])},
                            "sn_apo_invoice_line",
                            {f"{key}/{line['LINE_NO']}": {"line_amount_invoiced": dec(line["TRX_AMOUNT"])}
                             for line in bill.get("APBILLITEMS") or []}))
    return out


# --- the comparison ---------------------------------------------------------------------------
class PortalView:
    """What the portal's database says about records (imported lazily: needs Django set up)."""

    def __init__(self, slug: str, integration_name: str) -> None:
        from integrations.models import Integration, Mapping, MappingStatus, SyncRecord

        self.integration = Integration.objects.get(tenant__slug=slug, name=integration_name)
        self.records = {(r.stream, r.source_key): r for r in SyncRecord.objects.filter(integration=self.integration)}
        self.approved = set(Mapping.objects.filter(integration=self.integration, status=MappingStatus.APPROVED)
                            .values_list("kind", "source_code"))
        self.approved_targets = set(Mapping.objects.filter(integration=self.integration,
                                                           status=MappingStatus.APPROVED)
                                    .values_list("kind", "target_code"))

    def classify_missing(self, stream: str, key: str, result: TenantResult, what: str) -> None:
        """A source record with no target row: held, failed, or lost."""
        record = self.records.get((stream, key))
        status = record.status if record else "never read"
        if record is not None and record.status == "held":
            keys = [k for k in record.missing_keys if not k.startswith("conflict:")]
            waiting = [k for k in keys if tuple(k.split(":", 1)) not in self._approved_for(stream)]
            if waiting or not keys:
                result.held += 1
                result.note("held", f"{what} waits for {', '.join(record.missing_keys)}")
            else:
                result.held_stranded += 1
                result.note("held_stranded", f"{what} still held for {', '.join(keys)}, all approved since")
            return
        if record is not None and record.status == "failed":
            result.failed += 1
            result.note("failed", f"{what}: {record.error_class} {record.error_message[:200]}")
            return
        result.lost += 1
        result.note("lost", f"{what}: not in the target; portal status {status}")

    def _approved_for(self, stream: str) -> set[tuple[str, str]]:
        # ServiceNow → Intacct holds name ServiceNow codes (mappings read in reverse)
        return self.approved_targets if stream == "approved_invoices" else self.approved


def compare(expected: list[Expected], sn: ServiceNow, view: PortalView, result: TenantResult) -> None:
    tables = {e.table for e in expected} | {e.line_table for e in expected if e.line_table}
    rows: dict[str, dict[str, list[dict[str, str]]]] = {}
    for table in tables:
        by_key: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row in sn.rows(table):
            if row.get(SOURCE_KEY):
                by_key[bare_key(row[SOURCE_KEY])].append(row)
        rows[table] = by_key
    known: dict[str, set[str]] = defaultdict(set)
    for item in expected:
        known[item.table].add(item.key)
        if item.line_table:
            known[item.line_table].update(item.lines)
    # duplicates and orphans, whatever the record's state
    for table, by_key in rows.items():
        for key, found in by_key.items():
            if len(found) > 1:
                result.duplicates += len(found) - 1
                result.note("duplicate", f"{table} {key}: {len(found)} rows ({', '.join(r['sys_id'] for r in found)})")
            if key not in known[table]:
                result.orphans += 1
                result.note("orphan", f"{table} {key}: no source record has this key")
    for item in expected:
        result.records += 1
        what = f"{item.stream} {item.key}"
        found = rows[item.table].get(item.key)
        if not found:
            view.classify_missing(item.stream, item.key, result, what)
            continue
        problems = [f"{column} {found[0].get(column)!r} != {value}" for column, value in item.fields.items()
                    if not _same(value, found[0].get(column))]
        if item.line_table:
            for line_key, columns in item.lines.items():
                line = rows[item.line_table].get(line_key)
                if not line:
                    problems.append(f"line {line_key} missing")
                    continue
                problems += [f"line {line_key} {column} {line[0].get(column)!r} != {value}"
                             for column, value in columns.items() if not _same(value, line[0].get(column))]
            prefix = f"{item.key}/"
            extra = [k for k in rows[item.line_table] if k.startswith(prefix) and k not in item.lines]
            problems += [f"line {k} is not in the source" for k in extra]
        if not problems:
            result.equal += 1
            continue
        record = view.records.get((item.stream, item.key))
        if record is not None and record.status in ("held", "failed"):
            # the target holds an older version; the newer one is visible in a queue
            view.classify_missing(item.stream, item.key, result, f"{what} (newer version)")
        else:
            result.mismatched += 1
            result.note("mismatched", f"{what}: {'; '.join(problems)[:300]}")


def check_x3(spec: TenantSpec) -> TenantResult:
    result = TenantResult(spec.slug, spec.pair)
    view = PortalView(spec.slug, spec.integration)
    compare(x3_expected(spec), ServiceNow(spec.sn_url), view, result)
    return result


def check_intacct(spec: TenantSpec) -> TenantResult:
    result = TenantResult(spec.slug, spec.pair)
    view = PortalView(spec.slug, spec.integration)
    intacct = intacct_client(spec)
    sn = ServiceNow(spec.sn_url)
    keys = [row["RECORDNO"] for row in intacct.query("APBILL", "RECORDNO")]
    bills = intacct.read("APBILL", keys)
    compare(intacct_expected(spec, bills), sn, view, result)
    # Intacct side: one bill per (vendor, bill number), and one per invoice keyed in ServiceNow
    per_number = Counter((bill.get("VENDORID"), bill.get("RECORDID")) for bill in bills)
    for (vendor, number), count in per_number.items():
        if number and count > 1:
            result.duplicates += count - 1
            result.note("duplicate", f"Intacct bills {vendor}/{number}: {count}")
    by_number = Counter(bill.get("RECORDID") for bill in bills)
    invoices = sn.rows("sn_apo_invoice", "approval=approved", ["sys_id", "number", "supplier_invoice_number",
                                                               SOURCE_KEY])
    # An invoice keyed in ServiceNow becomes an Intacct bill, which comes back through the bills
    # stream: it must be adopted (linked to that same invoice), never staged as a second invoice.
    staged: dict[str, list[str]] = defaultdict(list)
    for row in sn.rows("sn_apo_invoice", "", ["sys_id", SOURCE_KEY]):
        if row.get(SOURCE_KEY):
            staged[bare_key(row[SOURCE_KEY])].append(row["sys_id"])
    record_no = {bill.get("RECORDID"): bill["RECORDNO"] for bill in bills}
    for invoice in invoices:
        if not str(invoice.get("supplier_invoice_number", "")).startswith("CHAOS-"):
            continue
        others = [sys_id for sys_id in staged.get(record_no.get(invoice["number"], ""), [])
                  if sys_id != invoice["sys_id"]]
        if others:
            result.duplicates += len(others)
            result.note("duplicate", f"invoice {invoice['number']} keyed in ServiceNow was staged again from its "
                                     f"Intacct bill as {', '.join(others)}")
    for invoice in invoices:
        what = f"approved invoice {invoice['number']}"
        result.records += 1
        record = view.records.get(("approved_invoices", invoice["sys_id"]))
        started_in_servicenow = str(invoice.get("supplier_invoice_number", "")).startswith("CHAOS-")
        # posted once = a target bill and the digest of what was posted; a later re-read of the same
        # approval is skipped as already posted (status "skipped"), which is still posted
        posted = record is not None and bool(record.target_id) and bool((record.target_refs or {}).get("posted"))
        if posted and (not started_in_servicenow or by_number[invoice["number"]] == 1):
            result.equal += 1
        elif record is not None and record.status in ("held", "failed"):
            view.classify_missing("approved_invoices", invoice["sys_id"], result, what)
        elif started_in_servicenow and by_number[invoice["number"]] > 1:
            pass  # counted above as an Intacct duplicate
        else:
            result.lost += 1
            result.note("lost", f"{what}: not posted to Intacct; portal status "
                                f"{record.status if record else 'never read'}"
                                f"{': ' + record.error_message[:150] if record and record.error_message else ''}")
    return result


def check_tenant(spec: TenantSpec) -> TenantResult:
    return check_x3(spec) if spec.pair == "x3" else check_intacct(spec)
