"""Mappings between different kinds (job type → GL account) work like same-kind ones: suggested,
approved or mapped by hand onto rows of the *target* kind, and holding records until approved."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from integrations.engine.mappings import approve, map_manually, refresh_suggestions, store_reference_page, target_kind
from integrations.engine.replay import replay_records
from integrations.flows.base import MappingKind, NeedsMapping, ReferenceStream, RefItem, SourceRecord, StreamContext
from integrations.models import Mapping, MappingReason, MappingStatus, RecordStatus, SyncRecord

from . import fake
from .harnesses import fake_harness

pytestmark = pytest.mark.django_db


class CodedEntries(fake.Entries):
    """Every entry is job work of type INSTALL: it is written on the GL account that type maps to."""

    def transform(self, ctx: StreamContext, record: SourceRecord) -> dict[str, str]:
        missing: list[str] = []
        account, _ = ctx.mappings.resolve("job_type", "INSTALL", missing)
        if missing:
            raise NeedsMapping(missing)
        return {**super().transform(ctx, record), "name": f"{record.data['name']} @ {account}"}


class JobTypes(ReferenceStream):
    name, kind, reads = "job_types", "job_type", "source"


class Accounts(ReferenceStream):
    name, kind, reads = "accounts", "gl_account", "target"


class CodedFlow(fake.LedgerToStore):
    streams = (CodedEntries,)
    mapping_kinds: ClassVar = (MappingKind("job_type", source="job_type", target="gl_account",
                                           match=lambda row: (row.data.get("default_account", ""), "")),)


def store(integration: Any, stream: type[ReferenceStream], rows: list[RefItem]) -> None:
    store_reference_page(integration, stream(), rows)
    refresh_suggestions(integration, stream.kind)


def test_a_job_type_maps_onto_a_gl_account_and_releases_what_it_held(monkeypatch):
    with fake_harness(CodedFlow)(monkeypatch).running() as h:
        h.add_records(3)
        first = h.run()
        assert first.held == 3 + 5 and first.created == 0, first.counts()
        assert set(SyncRecord.objects.values_list("missing", flat=True)) == {"|job_type:INSTALL|"}

        store(h.integration, JobTypes, [RefItem("INSTALL", "Install", data={"default_account": "4000"}),
                                        RefItem("REPAIR", "Repair")])
        store(h.integration, Accounts, [RefItem("4000", "Install revenue"), RefItem("4100", "Repair revenue"),
                                        RefItem("REPAIR", "an account coded like a job type")])

        install = Mapping.objects.get(kind="job_type", source_code="INSTALL")
        assert (install.status, install.reason, install.target_code) == (
            MappingStatus.SUGGESTED, MappingReason.EXACT_CODE, "4000"), "suggested from the target's GL accounts"
        assert target_kind(install) == "gl_account"
        repair = Mapping.objects.get(kind="job_type", source_code="REPAIR")
        assert repair.status == MappingStatus.UNMAPPED, "matched by its default account only, and it has none"
        with pytest.raises(ValueError, match="gl_account"):
            map_manually(repair, "INSTALL")  # a job type is not a GL account
        map_manually(repair, "4100")
        assert Mapping.objects.get(pk=repair.pk).target_code == "4100"

        decision = approve([install])
        assert len(decision.released_ids) == 8
        replay_records(decision.released_ids)

        assert set(SyncRecord.objects.values_list("status", flat=True)) == {RecordStatus.SYNCED}
        assert all(row.value.endswith("@ 4000") for rows in h.target_rows().values() for row in rows)


def test_a_flow_without_declared_kinds_maps_each_reference_kind_onto_itself(monkeypatch):
    with fake_harness(fake.LedgerToStore)(monkeypatch).running() as h:
        store(h.integration, JobTypes, [RefItem("INSTALL", "Install")])
        store(h.integration, type("TargetJobTypes", (ReferenceStream,),
                                  {"name": "t", "kind": "job_type", "reads": "target"}), [RefItem("INSTALL", "Install")])
        mapping = Mapping.objects.get(kind="job_type", source_code="INSTALL")
        assert (mapping.status, mapping.target_code) == (MappingStatus.SUGGESTED, "INSTALL")
        assert target_kind(mapping) == "job_type"
