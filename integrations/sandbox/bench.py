"""Simulators seeded for the benchmark: volume, documented limits, and every code mappable.

``python -m integrations.sandbox.server sage_x3 --bulk-invoices 10000 --lines-per-invoice 5``
serves what :func:`build_benchmark_simulator` builds: the X3 ledger holds only the bulk data
(suppliers, one purchase order per invoice, invoices with their lines, the demo GL accounts and
cost centers) and answers at most ``page_max`` records per page; the ServiceNow instance is the
demo instance plus the one GL account the demo leaves out on purpose (61200), so every code
the ledger uses has a match and no invoice is held. The request log every simulator keeps
for test assertions is bounded here, so a long run does not grow the simulator's memory.
"""

from __future__ import annotations

import importlib
from collections import deque

from .base import Faults, Simulator
from .sage_x3_seed import GL_ACCOUNTS, UNMAPPED_ACCOUNT

# The largest page the X3 simulator serves in the benchmark ([U]: X3 documents no maximum for
# ``count=``; 1000 keeps a page of invoices with lines well under a few MB) and the largest
# Batch API call the ServiceNow simulator services (ServiceNow documents no item limit, only
# 5 MB per item and the transaction timeout).
X3_PAGE_MAX = 1000
SN_BATCH_MAX = 1000
REQUEST_LOG = 100
X3_BENCH_USER = ("admin", "x3-demo-pass")


def build_benchmark_simulator(
    name: str,
    *,
    invoices: int = 0,
    lines_per_invoice: int = 3,
    suppliers: int = 50,
    page_max: int = X3_PAGE_MAX,
    batch_max_items: int = SN_BATCH_MAX,
    faults: Faults | None = None,
) -> Simulator:
    """A simulator seeded for a benchmark run (see the module docstring)."""
    if name == "sage_x3":
        module = importlib.import_module(".sage_x3", __package__)
        sim = module.SageX3Simulator(faults=faults, page_max=page_max)
        sim.add_folder("SEED")
        sim.add_user(*X3_BENCH_USER)
        sim.add_oauth_client("ml-connector", "x3-demo-secret")
        sim.seed_bulk(invoices, lines_per_invoice, suppliers=suppliers, folder="SEED")
    elif name == "servicenow":
        module = importlib.import_module(".servicenow", __package__)
        sim = module.ServiceNowSimulator(faults=faults, batch_max_items=batch_max_items)
        sim.seed_demo()
        label = dict(GL_ACCOUNTS)[UNMAPPED_ACCOUNT]
        for table in ("itfm_gl_accounts", "sn_fin_gl_account"):
            sim.insert(table, {"account_number": UNMAPPED_ACCOUNT, "name": label, "description": label,
                               "active": "true", "sys_created_on": "2025-12-01 09:00:00",
                               "sys_updated_on": "2025-12-01 09:00:00"})
    else:
        raise ValueError(f"no benchmark seed for {name!r}")
    sim.requests = deque(maxlen=REQUEST_LOG)  # type: ignore[assignment]
    return sim
