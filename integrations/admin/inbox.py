"""The dashboard's inbox: what needs a person, in their words, the biggest money first.

Connection problems come first (nothing moves until they are fixed), then stopped integrations,
then the codes holding invoices (most money held first, from each mapping's stored figures), the
failures by integration and document kind, reconciliations with differences, and paused
integrations. Each item says what to do and links to where it is done; technical names stay in
the tooltip. Built from a fixed handful of queries over the rows the dashboard already has.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.urls import reverse

from accounts.scoping import scope
from integrations.engine.documents import amount_text, document_of, stream_label
from integrations.engine.mappings import held_text, refresh_stale_held
from integrations.models import ErrorClass, Mapping, MappingStatus, RecordStatus, SyncRecord
from integrations.setup.words import kind_label
from integrations.systems.registry import system_label

# how many failed records are read for their money per integration and document kind
FAILED_MONEY_ROWS = 500
MAX_ITEMS = 25
RANK = {"fix": 0, "stopped": 1, "decide": 2, "failed": 3, "reconcile": 4, "paused": 5}


@dataclass
class Item:
    kind: str  # fix | stopped | decide | failed | reconcile | paused
    text: str
    action: str
    url: str
    where: str  # tenant · integration
    money: Decimal = Decimal("0")  # what ordering by money uses (the largest amount, any currency)
    hint: str = ""  # the technical names, for the tooltip

    @property
    def sort_key(self) -> tuple[int, Decimal]:
        return RANK[self.kind], -self.money






def build(rows: list[Any], user: Any) -> list[Item]:
    """The inbox for ``user``, from the dashboard's rows (one per integration, with its health)."""
    if not rows:
        return []
    items: list[Item] = []
    connections_seen: set[int] = set()
    for row in rows:
        integration = row.integration
        where = f"{integration.tenant.name} · {integration.name}"
        for side in (integration.source, integration.target):
            if side.needs_reauth and side.pk not in connections_seen:
                connections_seen.add(side.pk)
                items.append(Item("fix", f"The {system_label(side.system)} connection {side.name} needs new credentials",
                                  "Fix the connection", reverse("admin:integrations_connection_change", args=[side.pk]),
                                  integration.tenant.name, hint=f"connection {side.name}: {side.last_error[:200]}"))
        if row.state == "failing":
            items.append(Item("stopped", f"{integration.name} stopped: {'; '.join(map(str, row.reasons))[:200]}",
                              "Open the integration", reverse("admin:integrations_integration_change",
                                                              args=[integration.pk]), where))
        elif row.state == "paused":
            items.append(Item("paused", f"{integration.name} is paused: nothing moves until it is resumed", "Resume",
                              reverse("admin:integrations_integration_change", args=[integration.pk]), where))
        recon = row.reconciliation
        if recon is not None and recon.status == "differences":
            items.append(Item("reconcile", f"Month end {recon.period_label} of {integration.name}: {recon.verdict}",
                              "Review", reverse("admin:integrations_reconciliationrun_change", args=[recon.pk]),
                              where))
    items += _held(rows, user)
    items += _failed(rows)
    items.sort(key=lambda item: item.sort_key)
    return items[:MAX_ITEMS]


def _held(rows: list[Any], user: Any) -> list[Item]:
    """Each code that holds records, with what it holds (the mappings' stored figures, which runs
    and replays keep up to date): one query."""
    held_any = [row.integration.pk for row in rows if row.held]
    if not held_any:
        return []
    query = (scope(Mapping.objects.select_related("integration__tenant"), user, "integration__tenant")
             .filter(integration_id__in=held_any, held_count__gt=0)
             .exclude(status__in=[MappingStatus.APPROVED, MappingStatus.IGNORED])
             .order_by("-held_amount", "-held_count"))
    mappings = list(query[:MAX_ITEMS])
    counted = {m.integration_id for m in mappings}
    # records held since the figures were last counted (e.g. loaded by hand): count them now
    if any(pk not in counted for pk in held_any) and refresh_stale_held(
            [row.integration for row in rows if row.integration.pk in held_any]):
        mappings = list(query[:MAX_ITEMS])
    items = []
    for mapping in mappings:
        money = {k: Decimal(str(v)) for k, v in (mapping.held_money or {}).items()}
        what = held_text(mapping.held_count, mapping.held_documents, mapping.held_money or {})
        action = "Approve the suggestion" if mapping.status == MappingStatus.SUGGESTED else "Map now"
        items.append(Item(
            "decide", f"{what} wait for {kind_label(mapping.kind)} {mapping.source_code}"
            f"{f' ({mapping.source_label})' if mapping.source_label else ''}", action,
            reverse("admin:integrations_mapping_change", args=[mapping.pk]),
            f"{mapping.integration.tenant.name} · {mapping.integration.name}",
            money=max(money.values(), default=Decimal("0")), hint=f"mapping {mapping.kind}:{mapping.source_code}"))
    return items


def _failed(rows: list[Any]) -> list[Item]:
    """Failed records per integration and document kind, with their money where they carry one:
    one query over at most ``FAILED_MONEY_ROWS`` failed records."""
    by_id = {row.integration.pk: row.integration for row in rows if row.failed}
    if not by_id:
        return []
    counts: dict[tuple[int, str], int] = defaultdict(int)
    money: dict[tuple[int, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    classes: dict[tuple[int, str], set[str]] = defaultdict(set)
    for record in (SyncRecord.objects.filter(integration_id__in=list(by_id), status=RecordStatus.FAILED)
                   .only("integration_id", "stream", "business_key", "source_key", "source_snapshot", "error_class")
                   .order_by("integration_id", "stream")[:FAILED_MONEY_ROWS]):
        group = (record.integration_id, record.stream)
        counts[group] += 1
        classes[group].add(record.error_class)
        integration = by_id[record.integration_id]
        document = document_of(record, integration.kind, integration.source.settings)
        if document.amount is not None:
            money[group][document.currency] += document.amount
    items = []
    for (integration_id, stream), count in counts.items():
        integration = by_id[integration_id]
        amounts = " · ".join(amount_text(c, a) for c, a in sorted(money[(integration_id, stream)].items()))
        will_retry = classes[(integration_id, stream)] <= {ErrorClass.TRANSIENT}
        url = (reverse("admin:integrations_failedrecord_changelist")
               + f"?integration__id__exact={integration.pk}&stream={stream}")
        items.append(Item(
            "failed", f"{count} failed in {stream_label(integration.kind, stream)}{f' ({amounts})' if amounts else ''}"
            + (": temporary, retrying by itself" if will_retry else ""),
            "Review" if will_retry else "Fix and replay", url, f"{integration.tenant.name} · {integration.name}",
            money=max(money[(integration_id, stream)].values(), default=Decimal("0")), hint=f"stream {stream}"))
    return items
