"""Suggestions on a generated chart of accounts and supplier list, spelt as two systems' clerks do.

Each true pair is the same account or supplier typed differently (case, punctuation, accents,
Ltd/Limited, "&"/"and", word order, codes renumbered on the target side); decoys are source rows
the target does not have at all, and must never reach the threshold a suggestion needs.
"""

from __future__ import annotations

import random

import pytest

from integrations.engine.suggest import SUGGEST_AT, Scorer, Target

ACCOUNTS = [
    "Freight In", "Freight Out", "Office Supplies", "Travel & Entertainment", "Repairs and Maintenance",
    "Bank Charges", "Telephone & Internet", "Rent - Warehouse", "Rent - Head Office", "Utilities Electricity",
    "Utilities Water", "Vehicle Fuel", "Vehicle Insurance", "Professional Fees - Legal",
    "Professional Fees - Audit", "Software Subscriptions", "Computer Equipment", "Salaries & Wages",
    "Payroll Taxes", "Employee Benefits", "Training & Development", "Advertising", "Trade Shows",
    "Postage & Courier", "Bad Debt Expense", "Depreciation - Plant", "Depreciation - Vehicles",
    "Raw Materials Purchases", "Packaging Materials", "Subcontractor Costs", "Warranty Provision",
    "Customs Duties", "Foreign Exchange Loss", "Interest Expense", "Cleaning Services",
    "Security Services", "Printing & Stationery", "Consulting Fees", "Recruitment Costs", "Donations",
]
SUPPLIERS = [
    "O'Brien Hydraulics Ltd", "Müller & Sons GmbH", "García Steel Supply S.A.", "Nakamura Industrial Fasteners Inc",
    "Okafor Freight Co", "Lindqvist Packaging AB", "Kowalski Machine Tools LLC", "Dubois Électrique SARL",
    "Ferreira Plastics Lda", "Haddad Welding Gases Ltd", "Johansson & Partners", "Moreau Office Products",
    "Novak Electrical Corp.", "Petrov Logistics Limited", "Rossi Ceramiche S.p.A.", "Schmidt Verpackung GmbH",
    "Tanaka Precision Inc.", "Van Dijk Transport B.V.", "Walsh & Daughters Ltd", "Zhang Components Co., Ltd",
    "Abernathy Printing Company", "Brennan Security Services", "Castellano Cleaning & Janitorial",
    "Delacroix Consulting Group", "Eriksen Marine Supply", "Fitzgerald Legal LLP", "Hargreaves Audit & Assurance",
    "MacAllister Recruitment Ltd", "Nordström Software AB", "Pemberton Telecom plc",
]
# rows the target side simply does not have: a good suggester stays below the threshold for them
DECOYS = [
    ("9001", "Lobbying Expenses"), ("9002", "Crypto Asset Gains"), ("9003", "Goodwill Amortisation"),
    ("9004", "Sponsorship of Local Football Club"), ("9005", "Quantum Research Grants"),
    ("V901", "Yellowstone Aviation Charters"), ("V902", "Kilimanjaro Coffee Roasters"),
    ("V903", "Aurora Borealis Photography"), ("V904", "Quixote Windmill Restorations"),
    ("V905", "Zephyr Balloon Rides"),
]
ACCENTS = str.maketrans("üéöçíñáÉ", "ueocinaE")
SWAPS = [(" & ", " and "), (" and ", " & "), ("Ltd", "Limited"), ("Limited", "Ltd"), ("Inc", "Incorporated"),
         ("Co", "Company"), ("LLC", "L.L.C."), (" - ", ": "), ("GmbH", ""), ("S.A.", "SA"), ("plc", "PLC")]


def clerk(name: str, rng: random.Random) -> str:
    """How the other system's clerk typed the same thing."""
    text = name
    for old, new in rng.sample(SWAPS, 4):
        if old in text:
            text = text.replace(old, new, 1)
    if rng.random() < 0.5:
        text = text.translate(ACCENTS)
    if rng.random() < 0.4:
        text = text.replace("'", "").replace(".", "")
    if rng.random() < 0.25 and " - " in name:  # "Rent - Warehouse" → "Warehouse Rent"
        head, tail = name.split(" - ", 1)
        text = f"{tail} {head}"
    if rng.random() < 0.3:
        text = text.upper()
    elif rng.random() < 0.3:
        text = text.lower()
    if rng.random() < 0.2:
        text = text.replace("-", "").replace("  ", " ")
    return text.strip()


def generated(seed: int) -> tuple[list[tuple[str, str]], list[Target], dict[str, str]]:
    """Source rows (code, label), target rows, and the truth: source code → target code."""
    rng = random.Random(seed)
    sources, targets, truth = [], [], {}
    for i, name in enumerate(ACCOUNTS):
        source_code = f"{6000 + i * 10}"
        # half the accounts keep their number on the target side, half were renumbered
        target_code = source_code if rng.random() < 0.5 else f"7{i:03d}"
        sources.append((source_code, name))
        targets.append(Target(target_code, clerk(name, rng)))
        truth[source_code] = target_code
    for i, name in enumerate(SUPPLIERS):
        source_code, target_code = f"S{i:04d}", f"SUP-{rng.randrange(10000, 99999)}"
        sources.append((source_code, name))
        targets.append(Target(target_code, clerk(name, rng)))
        truth[source_code] = target_code
    rng.shuffle(targets)
    return sources, targets, truth


@pytest.mark.parametrize("seed", [1, 7, 42, 2026])
def test_nine_in_ten_true_pairs_are_suggested_first_and_no_decoy_reaches_the_threshold(seed):
    sources, targets, truth = generated(seed)
    scorer = Scorer(targets)
    first, misses = 0, []
    for code, label in sources:
        candidates = scorer.candidates(code, label)
        if candidates and candidates[0].code == truth[code]:
            first += 1
        else:
            misses.append((label, candidates[:1]))
    assert first / len(sources) >= 0.9, f"{first} of {len(sources)} true pairs first; missed: {misses}"
    for code, label in DECOYS:
        candidates = scorer.candidates(code, label)
        assert not candidates or candidates[0].score < SUGGEST_AT, (label, candidates[:1])


def test_the_same_supplier_spelt_apart_is_one_name():
    scorer = Scorer([Target("SUP-1", "OBRIEN HYDRAULICS LIMITED"), Target("SUP-2", "Brennan Hydraulics Ltd"),
                     Target("SUP-3", "Mueller and Sons")])
    best = scorer.candidates("S1", "O'Brien Hydraulics Ltd")[0]
    assert (best.code, best.score) == ("SUP-1", 97) and "same name" in best.reason
    assert scorer.candidates("S2", "Müller & Sons GmbH")[0].code == "SUP-3"
