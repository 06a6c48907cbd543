"""What a person decides in one integration informs the tenant's others; a rejected pair stays rejected."""

from __future__ import annotations

import pytest

from integrations.engine.mapping_csv import import_csv
from integrations.engine.mappings import approve, refresh_suggestions, reject
from integrations.models import Integration, Mapping, MappingReason, MappingStatus, ReferenceRecord, Side

SOURCE = [("S0001", "O'Brien Hydraulics Ltd"), ("S0002", "Müller & Sons GmbH"), ("S0003", "Castellano Cleaning")]
TARGET = [("SUP-17", "OBRIEN HYDRAULICS LIMITED"), ("SUP-18", "Mueller and Sons"), ("SUP-19", "Brennan Hydraulics"),
          ("SUP-20", "Castellano Janitorial & Cleaning Co"), ("SUP-21", "Castellanos Cleaning Services")]


def _integration(base: Integration, name: str) -> Integration:
    integ = base if base.name == name else Integration.objects.create(
        tenant=base.tenant, name=name, kind=base.kind, source=base.source, target=base.target)
    ReferenceRecord.objects.bulk_create(
        [ReferenceRecord(integration=integ, side=Side.SOURCE, kind="gl_account", code=c, label=label)
         for c, label in SOURCE]
        + [ReferenceRecord(integration=integ, side=Side.TARGET, kind="gl_account", code=c, label=label)
           for c, label in TARGET])
    refresh_suggestions(integ, "gl_account")
    return integ


@pytest.mark.django_db
def test_an_approval_in_one_integration_is_suggested_in_the_next_and_a_rejection_is_never_offered(integration):
    first = _integration(integration, integration.name)
    obrien = Mapping.objects.get(integration=first, source_code="S0001")
    assert (obrien.target_code, obrien.reason) == ("SUP-17", MappingReason.NAME_MATCH)
    castellano = Mapping.objects.get(integration=first, source_code="S0003")
    # a person rejects the fuzzy guess and maps the code by hand to the other Castellano
    reject([castellano])
    wrong = castellano.target_code
    castellano.refresh_from_db()
    castellano.status, castellano.target_code = MappingStatus.SUGGESTED, next(c for c, _ in TARGET[3:] if c != wrong)
    approve([castellano])

    second = _integration(integration, "x3-to-sn-eu")
    learned = Mapping.objects.get(integration=second, source_code="S0003")
    assert (learned.status, learned.target_code, learned.reason) == (
        MappingStatus.SUGGESTED, castellano.target_code, MappingReason.LEARNED)
    assert integration.name in learned.candidates[0]["reason"]
    assert all(c["code"] != wrong for c in learned.candidates), "a rejected pair is never suggested again"


@pytest.mark.django_db
def test_a_spreadsheets_suggestion_survives_a_new_look_and_once_approved_teaches_the_others(integration):
    first = _integration(integration, integration.name)
    result = import_csv("kind,source_code,target_code\ngl_account,S0003,SUP-21\n", [first], default=first)
    assert not result.errors and result.updated == 1
    refresh_suggestions(first, "gl_account")
    imported = Mapping.objects.get(integration=first, source_code="S0003")
    assert (imported.status, imported.reason, imported.target_code) == (
        MappingStatus.SUGGESTED, MappingReason.IMPORTED, "SUP-21")
    approve([imported])
    second = _integration(integration, "x3-to-sn-eu")
    assert Mapping.objects.get(integration=second, source_code="S0003").target_code == "SUP-21"
