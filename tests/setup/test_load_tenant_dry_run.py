"""``load_tenant --dry-run`` prints the fit check of each integration in the document, and keeps nothing."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from accounts.models import Tenant
from integrations.models import AuditEvent, Connection, Integration, Mapping, ReferenceRecord
from tests.support import writes


@pytest.mark.django_db
def test_dry_run_prints_the_fit_check_and_keeps_nothing(tmp_path, sandbox, tenant_doc, sn_sim, capsys):
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(tenant_doc))
    call_command("load_tenant", str(path), "--dry-run")
    out = capsys.readouterr().out
    assert "would create integration x3-to-sn" in out
    assert "Fit check of x3-to-sn (Sage X3 → ServiceNow)" in out
    assert "Verdict: Ready after these" in out and "Supplier invoices" in out and "call budget" in out
    assert "Dry run: nothing changed." in out
    assert writes(sn_sim.requests) == []
    assert not any(model.objects.exists() for model in (Tenant, Connection, Integration, Mapping, ReferenceRecord,
                                                         AuditEvent))


@pytest.mark.django_db
def test_dry_run_without_the_fit_check_reaches_no_system(tmp_path, sandbox, tenant_doc, sn_sim, x3_sim, capsys):
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(tenant_doc))
    call_command("load_tenant", str(path), "--dry-run", "--no-fit-check")
    assert "Fit check" not in capsys.readouterr().out
    assert sn_sim.requests == [] and x3_sim.requests == []
