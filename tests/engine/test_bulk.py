"""The plain-SQL bulk writers on both backends: every value arrives as the ORM would have
written it, and a batch larger than one statement's parameter limit lands whole."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

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


@pytest.mark.django_db
def test_an_update_writes_each_value_as_the_orm_would_and_touches_only_its_rows(integration):
    from integrations.models import SyncRecord

    records = [SyncRecord.objects.create(integration=integration, stream="bills", source_key=str(n),
                                         source_hash="h", source_snapshot={"n": n}) for n in range(3)]
    when = datetime(2026, 12, 4, 22, 30, 5, 123456, tzinfo=UTC)
    first, second, untouched = records
    first.status, first.target_id, first.target_refs, first.missing = "synced", "T-1", {"amount": Decimal("1.10")}, ""
    first.synced_at, first.next_retry_at, first.error_message = when, None, ""
    second.status, second.target_id, second.target_refs, second.missing = "held", "", {}, "gl_account:6100"
    second.synced_at, second.next_retry_at, second.error_message = None, when, "Café ß: no approved account"
    update_many(SyncRecord, [first, second], ["status", "target_id", "target_refs", "missing", "synced_at",
                                              "next_retry_at", "error_message", "updated_at"])
    got = {r.source_key: r for r in SyncRecord.objects.filter(integration=integration)}
    assert (got["0"].status, got["0"].target_id, got["0"].target_refs, got["0"].missing) == (
        "synced", "T-1", {"amount": "1.10"}, "")
    assert (got["0"].synced_at, got["0"].next_retry_at, got["0"].error_message) == (when, None, "")
    assert (got["1"].status, got["1"].target_id, got["1"].missing, got["1"].synced_at) == (
        "held", "", "gl_account:6100", None)
    assert (got["1"].next_retry_at, got["1"].error_message) == (when, "Café ß: no approved account")
    assert (got["2"].status, got["2"].target_id, got["2"].updated_at) == (untouched.status, "", untouched.updated_at)
    assert got["0"].updated_at > untouched.updated_at and got["0"].source_snapshot == {"n": 0}


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the statements counted are SQLite's")
def test_on_sqlite_an_update_of_many_rows_is_a_statement_per_batch_not_per_row(integration):
    # The driver lets go of the interpreter lock around each statement it steps: one per row
    # (executemany) meant a wait for the lock per row while the page's HTTP threads were busy.
    insert_many(Mapping, [Mapping(integration=integration, kind="gl_account", source_code=f"{n:05d}")
                          for n in range(2000)])
    stored = list(Mapping.objects.filter(integration=integration))
    for mapping in stored:
        mapping.target_code = f"T{mapping.source_code}"
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(len(list(params)) if many else 1)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        update_many(Mapping, stored, ["target_code", "updated_at"])
    per_statement = connection.features.max_query_params // 3
    assert len(statements) == -(-2000 // per_statement) and set(statements) == {1}
    assert Mapping.objects.filter(integration=integration, target_code__startswith="T").count() == 2000
    assert Mapping.objects.get(integration=integration, source_code="01234").target_code == "T01234"
