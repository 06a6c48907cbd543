"""The plain-SQL bulk writers on both backends: every value arrives as the ORM would have
written it, and a batch larger than one statement's parameter limit lands whole."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from integrations.engine.bulk import insert_many, update_many
from integrations.models import AuditEvent, Mapping, MappingStatus


@pytest.mark.django_db
def test_values_arrive_as_the_orm_writes_them(integration):
    insert_many(AuditEvent, [AuditEvent(tenant_id=integration.tenant_id, integration_id=integration.pk,
                                        action="record.created", message="Café 12,10 €", actor_name="system",
                                        detail={"amount": Decimal("12.10"), "lines": [1, None, True], "note": "ß"})])
    event = AuditEvent.objects.get(action="record.created")
    assert (event.message, event.integration_id, event.actor_id) == ("Café 12,10 €", integration.pk, None)
    assert event.detail == {"amount": "12.10", "lines": [1, None, True], "note": "ß"}
    assert event.created_at.tzinfo is not None and abs(event.created_at - datetime.now(UTC)).total_seconds() < 60


@pytest.mark.django_db
def test_a_batch_past_one_statements_parameter_limit_lands_whole(integration):
    # 6,000 mappings of ~20 columns: 120,000 values, past PostgreSQL's 65,535 per statement
    rows = [Mapping(integration=integration, kind="gl_account", source_code=f"{n:05d}", source_label=f"Account {n}")
            for n in range(6000)]
    insert_many(Mapping, rows, ignore_conflicts=True)
    assert Mapping.objects.filter(integration=integration, kind="gl_account").count() == 6000
    stored = list(Mapping.objects.filter(integration=integration, kind="gl_account").order_by("source_code"))
    for mapping in stored:
        mapping.status, mapping.target_code = MappingStatus.SUGGESTED, mapping.source_code
    update_many(Mapping, stored, ["status", "target_code", "updated_at"])
    assert Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED,
                                  target_code="05999").count() == 1
    assert Mapping.objects.filter(integration=integration, status=MappingStatus.SUGGESTED).count() == 6000
