"""The ``qcluster`` process loads what every sync needs before it forks its workers, so that no
worker spends its first task importing the flows or deriving the credential keys."""

from __future__ import annotations

import sys

import pytest
from django.apps import apps
from encrypted_fields.fields import EncryptedFieldMixin

from integrations.flows import flow_kinds
from integrations.tasks import warm_up


def _encrypted_fields():
    return [field for model in apps.get_models() for field in model._meta.concrete_fields
            if isinstance(field, EncryptedFieldMixin)]


@pytest.fixture
def keys_forgotten():
    fields = _encrypted_fields()
    assert fields, "the credentials are stored in encrypted fields"
    for field in fields:
        field.__dict__.pop("f", None)
        field.__dict__.pop("keys", None)
    return fields


def test_warm_up_derives_each_encrypted_fields_keys_and_loads_every_pair(keys_forgotten):
    warm_up()
    assert all("f" in field.__dict__ and field.__dict__["keys"] for field in keys_forgotten)
    assert {kind for kind, _ in flow_kinds()} == {"sage_x3__servicenow", "sage_intacct__servicenow",
                                                  "sage_300__servicenow", "syspro__servicenow",
                                                  "servicetitan__sage_x3"}


@pytest.mark.parametrize(("argv", "warmed"), [(["manage.py", "qcluster"], True),
                                              (["manage.py", "runserver"], False),
                                              (["gunicorn", "portal.wsgi"], False)])
def test_only_the_cluster_process_warms_up_at_start(keys_forgotten, monkeypatch, argv, warmed):
    monkeypatch.setattr(sys, "argv", argv)
    apps.get_app_config("integrations").ready()
    assert all(("f" in field.__dict__) is warmed for field in keys_forgotten)
