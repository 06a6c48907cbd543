from integrations.engine.mappings import approve
from integrations.engine.replay import replay_records
from integrations.engine.runner import run_integration
from integrations.models import Mapping, MappingStatus, RecordStatus, SyncRecord


def test_first_sync_moves_everything(integration, sn_sim):
    runs = run_integration(integration)
    assert all(r.status == "succeeded" for r in runs)
    # nothing mapped yet: every invoice waits
    assert SyncRecord.objects.filter(stream="invoices", status=RecordStatus.HELD).count() == 60
    decision = approve(list(Mapping.objects.filter(status=MappingStatus.SUGGESTED)))
    assert len(decision.released_ids) == 60
    replay_records(decision.released_ids, trigger="mapping")
    assert len(sn_sim.rows("sn_apo_invoice")) == 54
    held = SyncRecord.objects.filter(stream="invoices", status=RecordStatus.HELD)
    assert held.count() == 6
    assert all(r.missing_keys == ["gl_account:61200"] for r in held)
