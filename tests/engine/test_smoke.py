from integrations.engine.mappings import approve
from integrations.engine.runner import run_integration
from integrations.models import Mapping, MappingStatus, RecordStatus, SyncRecord


def test_first_sync_moves_everything(integration, sn_sim):
    runs = run_integration(integration)
    assert all(r.status == "succeeded" for r in runs)
    # nothing mapped yet: every invoice waits
    assert SyncRecord.objects.filter(stream="invoices", status=RecordStatus.HELD).count() == 60
    approve(list(Mapping.objects.filter(status=MappingStatus.SUGGESTED)))
    run_integration(integration, streams=["invoices"])
    assert len(sn_sim.rows("sn_apo_invoice")) == 54
    held = SyncRecord.objects.filter(stream="invoices", status=RecordStatus.HELD)
    assert held.count() == 6
    assert all(r.missing_keys == ["gl_account:61200"] for r in held)
