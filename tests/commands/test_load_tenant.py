import copy
import json

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Tenant
from integrations.models import AuditEvent, Connection, Integration, StreamState


def _write(tmp_path, doc) -> str:
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _counts():
    return (Tenant.objects.count(), Connection.objects.count(), Integration.objects.count(),
            StreamState.objects.count(), AuditEvent.objects.count())


@pytest.mark.django_db
def test_it_creates_the_tenant_connections_and_integration(tmp_path, tenant_doc, capsys):
    call_command("load_tenant", _write(tmp_path, tenant_doc))
    integration = Integration.objects.get(tenant__slug="acme", name="x3-to-sn")
    assert integration.source.system == "sage_x3" and integration.target.system == "servicenow"
    assert integration.source.secrets["refresh_token"] == tenant_doc["connections"][0]["auth"]["refresh_token"]
    assert StreamState.objects.get(integration=integration, stream="invoices").schedule == "daily"
    assert "create integration x3-to-sn" in capsys.readouterr().out


@pytest.mark.django_db
def test_loading_twice_updates_by_name_instead_of_duplicating(tmp_path, tenant_doc):
    call_command("load_tenant", _write(tmp_path, tenant_doc))
    changed = copy.deepcopy(tenant_doc)
    changed["tenant"]["name"] = "Acme Renamed"
    changed["integrations"][0]["schedules"] = {"invoices": "weekly"}
    call_command("load_tenant", _write(tmp_path, changed))
    assert Tenant.objects.get(slug="acme").name == "Acme Renamed"
    assert Connection.objects.count() == 2 and Integration.objects.count() == 1
    assert StreamState.objects.get(stream="invoices").schedule == "weekly"


@pytest.mark.django_db
def test_dry_run_changes_nothing(tmp_path, tenant_doc, capsys):
    before = _counts()
    call_command("load_tenant", _write(tmp_path, tenant_doc), "--dry-run")
    assert _counts() == before
    assert "would create tenant acme" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["connections"][0]["auth"].pop("client_secret"), "$.connections[0].auth.client_secret: required"),
        (lambda d: d["connections"][1].update(system="oracle"), "$.connections[1].system"),
        (lambda d: d["integrations"][0].update(target="nope"), "$.integrations[0].target: no connection named 'nope'"),
        (lambda d: d["integrations"][0].update(kind="sap__servicenow"), "$.integrations[0].kind"),
        (lambda d: d["integrations"][0]["schedules"].update(invoices="fortnightly"), "$.integrations[0].schedules.invoices"),
        (lambda d: d["connections"][0].update(port="8124"), "$.connections[0].port"),
        (lambda d: d["connections"][0].pop("folder"), "$.connections[0].folder: required"),
        (lambda d: d["tenant"].pop("slug"), "$.tenant.slug: required"),
        (lambda d: d["integrations"][0].update(source="sn"), "$.integrations[0].source: sage_x3__servicenow needs a sage_x3"),
    ],
)
@pytest.mark.django_db
def test_bad_documents_are_rejected_naming_the_json_path_and_change_nothing(tmp_path, tenant_doc, mutate, path):
    call_command("load_tenant", _write(tmp_path, tenant_doc))  # an existing tenant must stay untouched too
    before = _counts()
    bad = copy.deepcopy(tenant_doc)
    bad["tenant"]["name"] = "Changed Name"
    mutate(bad)
    with pytest.raises(CommandError) as error:
        call_command("load_tenant", _write(tmp_path, bad))
    assert path in str(error.value)
    assert "nothing changed" in str(error.value)
    assert _counts() == before
    assert Tenant.objects.get(slug="acme").name == tenant_doc["tenant"]["name"]


@pytest.mark.django_db
def test_invalid_json_is_reported_with_its_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"tenant": {')
    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("load_tenant", str(path))
    assert Tenant.objects.count() == 0
