"""The SYSPRO benchmark pair: its seed, its minimum, and a bare client that moves what the portal moves."""

from __future__ import annotations

import responses

from integrations.benchmark.bare_syspro_servicenow import BareRun
from integrations.benchmark.pairs import PAIRS
from integrations.sandbox.bench import SN_BATCH_MAX, build_benchmark_simulator
from integrations.sandbox.inprocess import mount

from .conftest import SN_URL, URL


def test_the_minimum_counts_a_last_empty_page_for_syspro_tables_only():
    pair = PAIRS["syspro-servicenow"]
    minimum = pair.minimum_calls({"ApInvoice": 2000, "ApInvoiceDistr": 10_500, "GenMaster": 13,
                                  "cmn_cost_center": 6}, {"sn_apo_invoice": 2000, "u_ml_gl_posting": 12_000})
    # SYSPRO: 2000 → 3 (two full pages, then an empty one), 10,500 → 11, 13 → 1; ServiceNow: 1
    assert minimum == {"read": 3 + 11 + 1 + 1, "write": 2 + 12, "auth": 3, "total": 16 + 14 + 3}


def test_the_bare_client_stages_every_row_of_the_benchmark_ledger_in_the_fewest_calls():
    syspro = build_benchmark_simulator("syspro", invoices=30, lines_per_invoice=3, suppliers=4)
    sn = build_benchmark_simulator("servicenow")
    config = PAIRS["syspro-servicenow"].bare_config(URL, SN_URL)
    config["page_size"] = 10
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(syspro, URL, rsps)
        mount(sn, SN_URL, rsps)
        bare = BareRun(config)
        bare.run()
    assert (syspro.logons, syspro.logoffs, syspro.open_sessions, syspro.writes) == (1, 1, 0, [])
    assert bare.writes == {"itfm_gl_accounts": 1, "proc_vendor": 4, "sn_apo_invoice": 30, "sn_apo_invoice_line": 90,
                           "u_ml_gl_posting": 120}  # the AP control account is the one ServiceNow lacks
    assert bare.reads["ApInvoice"] == 30 and bare.reads["ApInvoiceDistr"] == 90
    expected = PAIRS["syspro-servicenow"]
    # at a page of 10 rows: the benchmark's own page size is 1000, this checks the counting
    reads = sum(rows // 10 + 1 if not table.islower() else 1 for table, rows in bare.reads.items())
    # pages smaller than a batch: one batch call per page written (GL accounts and suppliers: one)
    assert SN_BATCH_MAX >= 10
    writes = 1 + 1 + 3 + 3 + 12  # invoices and their lines per page of 10, journal entries per page of 10
    assert bare.calls == {"read": reads, "write": writes, "auth": expected.auth_calls}
