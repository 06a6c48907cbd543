"""Scored mapping suggestions on realistic messy data: the two systems rarely spell alike."""

from __future__ import annotations

import random

import pytest

from integrations.engine.mappings import approve, reject
from integrations.engine.suggest import SUGGEST_AT, Scorer, Target, normalise
from integrations.models import Mapping, MappingReason, MappingStatus, ReferenceRecord, Side

SURNAMES = ["O'Brien", "Müller", "García", "Nakamura", "Okafor", "Lindqvist", "Kowalski", "Dubois", "Ferreira",
            "Haddad", "Johansson", "Moreau", "Novak", "Petrov", "Rossi", "Schmidt", "Tanaka", "Van Dijk",
            "Walsh", "Zhang", "Abernathy", "Brennan", "Castellano", "Delacroix", "Eriksen", "Fitzgerald",
            "Gonzalez", "Hargreaves", "Ivanova", "Jablonski", "Kaminski", "Lachance", "MacAllister",
            "Nordstrom", "Oyelaran", "Pemberton", "Quintero", "Rasmussen", "Sokolov", "Thibodeaux"]
TRADES = ["Hydraulics", "Steel Supply", "Industrial Fasteners", "Freight", "Electrical", "Packaging",
          "Machine Tools", "Plastics", "Welding Gases", "Office Products"]
LEGAL = [("Ltd", "Limited"), ("Inc", "Incorporated"), ("Co", "Company"), ("GmbH", ""), ("LLC", "L.L.C."),
         ("& Sons", "and Sons"), ("Corp.", "Corporation")]
ACCENTS = str.maketrans("üéíçôáñ", "ueicoan")


def messy(name: str, rng: random.Random) -> str:
    """The same supplier as another system's clerk typed it."""
    variant = name.translate(ACCENTS) if rng.random() < 0.5 else name
    variant = variant.replace("'", "") if rng.random() < 0.5 else variant
    variant = variant.upper() if rng.random() < 0.3 else variant
    if rng.random() < 0.3 and len(variant) > 8:  # one typo
        i = rng.randrange(3, len(variant) - 2)
        variant = variant[:i] + variant[i + 1] + variant[i] + variant[i + 2:]
    return variant


def world(seed: int = 11) -> tuple[list[tuple[str, str]], list[Target], dict[str, str], list[tuple[str, str]]]:
    rng = random.Random(seed)
    sources, targets, truth, decoys = [], [], {}, []
    n = 0
    for surname in SURNAMES:
        for trade in rng.sample(TRADES, 4):
            n += 1
            short, long = rng.choice(LEGAL)
            source_name = f"{surname} {trade} {short}".strip()
            target_name = messy(f"{surname} {trade} {long}".strip(), rng)
            sources.append((f"V{n:04d}", source_name))
            targets.append(Target(f"SUP-{n:05d}", target_name))
            truth[f"V{n:04d}"] = f"SUP-{n:05d}"
    # Decoys: suppliers only the ERP has, in the same trades as real ones, with look-alike names. (A name
    # one letter off a real one cannot be told from a typo: it may be suggested, and a person decides.)
    for i, surname in enumerate(["Walker", "Okonkwo", "Novotny", "Rosales", "Brenner", "Morales", "Schneider",
                                 "Nakagawa", "Lindgren", "Pavlovic", "Dubrovsky", "Castellanos Ruiz"]):
        decoys.append((f"D{i:04d}", f"{surname} {rng.choice(TRADES)} Ltd"))
    return sources, targets, truth, decoys


def test_names_are_normalised_the_way_clerks_differ():
    assert normalise("O'Brien Hydraulics Ltd.") == normalise("OBrien HYDRAULICS Limited") == "obrien hydraulics"
    assert normalise("Freight-In") == normalise("freight in")
    assert normalise("Müller & Sons GmbH") == "muller and sons"


@pytest.mark.parametrize("seed", [11, 3])
def test_nine_in_ten_true_pairs_come_first_and_no_decoy_reaches_the_threshold(seed):
    sources, targets, truth, decoys = world(seed)
    scorer = Scorer(targets)
    first = 0
    for code, name in sources:
        candidates = scorer.candidates(code, name)
        if candidates and candidates[0].code == truth[code] and candidates[0].score >= SUGGEST_AT:
            first += 1
    assert first / len(sources) >= 0.9, f"{first} of {len(sources)} true pairs suggested first"
    for code, name in decoys:
        candidates = scorer.candidates(code, name)
        assert not candidates or candidates[0].score < SUGGEST_AT, (name, candidates[:1])


def test_each_candidate_says_why_in_words():
    scorer = Scorer([Target("6100", "Freight-In"), Target("6110", "Freight out"), Target("70000", "Rent")])
    exact, *_ = scorer.candidates("70000", "Office rent")
    assert (exact.code, exact.score, exact.reason) == ("70000", 100, "same code on both sides")
    same_name, *others = scorer.candidates("5000", "Freight in")
    assert same_name.code == "6100" and same_name.score == 97 and "same name" in same_name.reason
    assert others and others[0].reason.startswith("names ") and others[0].reason.endswith("% alike")


@pytest.mark.django_db
def test_decisions_in_one_integration_inform_the_others_and_a_rejected_pair_never_comes_back(integration):
    """A second X3 → ServiceNow integration of the tenant learns what a person decided in the first."""
    from integrations.engine.mappings import refresh_suggestions
    from integrations.models import Integration

    second = Integration.objects.create(tenant=integration.tenant, name="x3-to-sn-2", kind=integration.kind,
                                        source=integration.source, target=integration.target)
    for target in (integration, second):
        ReferenceRecord.objects.bulk_create([
            ReferenceRecord(integration=target, side=Side.SOURCE, kind="gl_account", code="61200", label="Freight in"),
            ReferenceRecord(integration=target, side=Side.TARGET, kind="gl_account", code="69900", label="Suspense"),
            ReferenceRecord(integration=target, side=Side.TARGET, kind="gl_account", code="61210",
                            label="FREIGHT-IN"),
        ])
        refresh_suggestions(target, "gl_account")
    first = Mapping.objects.get(integration=integration, source_code="61200")
    assert first.target_code == "61210" and first.reason == MappingReason.NAME_MATCH, first.candidates
    reject([first])
    first.refresh_from_db()
    Mapping.objects.filter(pk=first.pk).update(status=MappingStatus.SUGGESTED, target_code="69900",
                                               target_label="Suspense")
    approve([Mapping.objects.get(pk=first.pk)])

    Mapping.objects.filter(integration=second).delete()
    refresh_suggestions(second, "gl_account")
    learned = Mapping.objects.get(integration=second, source_code="61200")
    assert (learned.status, learned.target_code, learned.reason) == (
        MappingStatus.SUGGESTED, "69900", MappingReason.LEARNED)
    assert "x3-to-sn" in learned.candidates[0]["reason"]
    assert all(c["code"] != "61210" for c in learned.candidates), "a rejected pair is never suggested again"


@pytest.mark.django_db
def test_the_command_approves_only_suggestions_above_the_chosen_confidence(integration):
    import json as jsonlib
    from io import StringIO

    from django.core.management import call_command

    from integrations.engine.mappings import refresh_suggestions

    ReferenceRecord.objects.bulk_create([
        ReferenceRecord(integration=integration, side=Side.SOURCE, kind="supplier", code="V1", label="O'Brien Hydraulics Ltd"),
        ReferenceRecord(integration=integration, side=Side.SOURCE, kind="supplier", code="V2", label="Acme Freight"),
        ReferenceRecord(integration=integration, side=Side.TARGET, kind="supplier", code="S1",
                        label="OBrien Hydraulics Limited"),
        ReferenceRecord(integration=integration, side=Side.TARGET, kind="supplier", code="S2", label="ACME Freight Inc"),
    ])
    set_suggest_at = integration.settings or {}
    integration.settings = {**set_suggest_at, "suggest_at": 90}
    integration.save(update_fields=["settings"])
    refresh_suggestions(integration, "supplier")
    assert set(Mapping.objects.filter(kind="supplier").values_list("status", flat=True)) == {MappingStatus.SUGGESTED}

    out = StringIO()
    call_command("mappings", tenant=integration.tenant.slug, integration=integration.name, kind="supplier",
                 approve_suggested=True, min_confidence=98, json=True, stdout=out)
    assert jsonlib.loads(out.getvalue())["approved"] == 0, "name matches are 97% sure"
    call_command("mappings", tenant=integration.tenant.slug, integration=integration.name, kind="supplier",
                 approve_suggested=True, min_confidence=95, json=True, stdout=StringIO())
    assert Mapping.objects.filter(kind="supplier", status=MappingStatus.APPROVED).count() == 2


def test_suggestions_are_written_beside_a_mapping_another_refresh_inserted_first(integration):
    """Two refreshes at once (a scheduled run and a person's "suggest again") may both find a code
    unmapped: the second insert keeps the row the first wrote and still adds the others."""
    from integrations.engine.bulk import insert_many

    Mapping.objects.create(integration=integration, kind="gl_account", source_code="61200", source_label="Freight",
                           status=MappingStatus.APPROVED, target_code="61210")
    insert_many(Mapping, [Mapping(integration=integration, kind="gl_account", source_code=code, source_label=code)
                          for code in ("61200", "61300")], ignore_conflicts=True)
    rows = dict(Mapping.objects.filter(integration=integration, kind="gl_account").values_list("source_code", "status"))
    assert rows == {"61200": MappingStatus.APPROVED, "61300": MappingStatus.UNMAPPED}


def test_a_refresh_updates_what_it_suggested_when_the_target_side_arrives(integration):
    """Source codes read before any target row are unmapped; the target rows' refresh suggests them."""
    from integrations.engine.mappings import refresh_suggestions

    ReferenceRecord.objects.create(integration=integration, side=Side.SOURCE, kind="gl_account", code="61200",
                                   label="Freight in")
    refresh_suggestions(integration, "gl_account")
    first = Mapping.objects.get(integration=integration, source_code="61200")
    assert (first.status, first.target_code) == (MappingStatus.UNMAPPED, "")
    ReferenceRecord.objects.create(integration=integration, side=Side.TARGET, kind="gl_account", code="61200",
                                   label="Freight inbound", external_id="sys-61200")
    refresh_suggestions(integration, "gl_account")
    again = Mapping.objects.get(pk=first.pk)
    assert (again.status, again.reason, again.target_code, again.target_external_id) == (
        MappingStatus.SUGGESTED, MappingReason.EXACT_CODE, "61200", "sys-61200")
    assert again.candidates[0]["code"] == "61200" and again.updated_at > first.updated_at


def test_a_refresh_of_more_codes_than_a_chunk_suggests_every_one_and_audits_once(integration):
    """Thousands of purchase orders are refreshed a chunk at a time: every code is suggested or left
    unmapped as one pass would, a person's decision still stands, and one audit event tells the totals."""
    from integrations.engine.mappings import REFRESH_CHUNK, refresh_suggestions
    from integrations.models import AuditEvent

    count = REFRESH_CHUNK + 150
    ReferenceRecord.objects.bulk_create(
        [ReferenceRecord(integration=integration, side=Side.SOURCE, kind="gl_account", code=f"6{n:05d}",
                         label=f"Account {n}" if n < count - 10 else "") for n in range(count)]  # no name: no fuzzy
        + [ReferenceRecord(integration=integration, side=Side.TARGET, kind="gl_account", code=f"6{n:05d}",
                           label=f"Account {n}") for n in range(count - 10)])
    decided = Mapping.objects.create(integration=integration, kind="gl_account", source_code="600007",
                                     source_label="Account 7", status=MappingStatus.APPROVED, target_code="699999")
    refresh_suggestions(integration, "gl_account")
    rows = dict(Mapping.objects.filter(integration=integration, kind="gl_account").values_list("source_code", "status"))
    assert len(rows) == count
    assert sum(status == MappingStatus.SUGGESTED for status in rows.values()) == count - 10 - 1
    assert [code for code, status in rows.items() if status == MappingStatus.UNMAPPED] == [
        f"6{n:05d}" for n in range(count - 10, count)]
    assert Mapping.objects.get(pk=decided.pk).target_code == "699999"
    event = AuditEvent.objects.get(action="mapping.suggested", integration_id=integration.pk)
    assert event.detail == {"kind": "gl_account", "suggested": count - 11, "changed": count - 1}
