"""``manage.py benchmark --scale`` at CI size: the production shape (a throwaway PostgreSQL
database, a Redis of its own, ``qcluster`` workers) with two tenants, through 1 and 2 workers.

Asserted: every record of both tenants is synced in each round, no target row is doubled, no
run is skipped for a lock or fails, and the figures that explain a speed-up are printed. No
speed is asserted: speed is the benchmark's printed figure, not a test's verdict. Skipped only
when the PostgreSQL server binaries or redis-server are missing.
"""

from __future__ import annotations

import pytest

from tests.support import manage_json

TENANTS, INVOICES = 2, 10

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def figures() -> dict:
    return manage_json("benchmark", "--scale", "--tenants", str(TENANTS), "--records", str(INVOICES),
                       "--lines-per-invoice", "1", "--workers", "1,2", "--latency-ms", "5",
                       needs="benchmark --scale", env={"PORTAL_DEV": "true"})


@pytest.mark.parametrize("workers", [1, 2])
def test_every_record_of_every_tenant_is_synced_once(figures, workers):
    prefix = f"scale.workers_{workers}"
    # per tenant: the sandbox's suppliers, one purchase order and one invoice per invoice seeded
    assert figures[f"{prefix}.records_synced"] >= TENANTS * 2 * INVOICES
    assert figures[f"{prefix}.records_not_synced"] == 0
    assert figures[f"{prefix}.doubled_target_rows"] == 0
    assert (figures[f"{prefix}.lock_skips"], figures[f"{prefix}.runs_failed"]) == (0, 0)


@pytest.mark.parametrize("workers", [1, 2])
def test_each_round_says_how_busy_the_machine_was_and_how_long_one_sync_took(figures, workers):
    prefix = f"scale.workers_{workers}"
    assert 0 < figures[f"{prefix}.machine_cpu_busy_pct"] <= 100
    assert 0 < figures[f"{prefix}.one_sync_seconds_mean"] <= figures[f"{prefix}.wall_seconds"]
    assert figures[f"{prefix}.speedup"] > 0 and figures["scale.tenants"] == TENANTS
