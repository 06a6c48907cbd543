"""``manage.py benchmark`` at a tiny size: real sandbox processes, real engine, throwaway databases.

No timing is asserted (CI machines differ); the figures must parse and agree with each other.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from integrations.management.commands import benchmark as command

INVOICES, LINES = 30, 2


@pytest.fixture(scope="module")
def figures() -> dict:
    """One run of the command as a script would: ``--json``, with a small ``--admin`` pass."""
    import io

    out = io.StringIO()
    call_command("benchmark", "--records", str(INVOICES), "--lines-per-invoice", str(LINES), "--admin",
                 "--admin-rows", "400", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_every_record_of_the_seeded_ledger_is_synced(figures):
    suppliers = 50
    assert figures["invoices"] == INVOICES and figures["lines_per_invoice"] == LINES
    assert figures["records"] == suppliers + 2 * INVOICES  # one purchase order per invoice
    assert figures["records.synced"] == figures["records"]
    assert figures["records.held"] == figures["records.failed"] == 0
    assert figures["target_rows"] == suppliers + 2 * INVOICES * (1 + LINES)  # headers and their lines
    assert not [name for name in figures if name.startswith("error.")]


def test_http_calls_are_counted_against_the_minimum_of_the_pair(figures):
    assert figures["sync.http_calls"] == (figures["sync.http_reads"] + figures["sync.http_writes"]
                                          + figures["sync.http_auth"])
    assert figures["sync.http_calls"] >= figures["sync.http_calls_minimum"] > 0
    # reads: 5 X3 classes and 2 ServiceNow reference tables, one page each at this size; writes:
    # suppliers, purchase orders, their lines, invoices, their lines, one batch each
    assert figures["sync.http_calls_minimum"] == 7 + 5
    # the same calls, by construction, plus the cycle's one sys_dictionary read before it writes
    # (the source-id column exists: README, "The ServiceNow connection test")
    assert figures["bare.http_calls"] + 1 == figures["sync.http_calls"]
    assert figures["sync.http_calls_vs_minimum"] == pytest.approx(
        figures["sync.http_calls"] / figures["sync.http_calls_minimum"], abs=0.001)


def test_an_unchanged_resync_reads_once_per_stream_and_writes_nothing(figures):
    assert figures["resync.http_writes"] == 0
    assert figures["resync.records_written"] == 0
    assert figures["resync.http_reads"] == 7
    assert figures["check.resync.http_writes"].startswith("pass")


def test_database_and_memory_figures_are_present_and_sane(figures):
    # 30 invoices: the cycle's fixed queries (inbox, schedules, suggestions) weigh; at 2,000 it is ~1.1
    assert 0 < figures["sync.db_queries_per_record"] <= 3.5
    assert figures["sync.db_queries_per_record"] == pytest.approx(
        figures["sync.db_queries"] / figures["records"], abs=0.001)
    assert figures["sync.peak_rss_mb"] > 0 and figures["bare.peak_rss_mb"] > 0
    # the peak of each part of the sync, the whole sync's peak being the highest of them (or the re-sync's)
    phases = [figures[f"sync.peak_rss_mb.{phase}"] for phase in ("reference_data", "approval", "records")]
    assert all(mb > 0 for mb in phases) and max(phases) <= figures["sync.peak_rss_mb"]
    assert figures["sync.wall_seconds"] > 0 and figures["bare.wall_seconds"] > 0
    # the printed seconds are rounded to milliseconds, which at this tiny size moves the ratio a little
    assert figures["sync.overhead_ratio"] == pytest.approx(
        figures["sync.wall_seconds"] / figures["bare.wall_seconds"], rel=0.05)
    assert figures["machine.cores"] >= 1


def test_admin_changelists_answer_with_a_bounded_number_of_queries(figures):
    assert figures["admin.rows"] == 400
    for page in ("records", "records_failed_queue", "audit", "audit_by_action"):
        assert figures[f"admin.{page}.server_ms"] > 0
        assert 0 < figures[f"admin.{page}.queries"] <= 15
        assert f"admin.{page}.status" not in figures  # every page answered 200
        assert f"admin.{page}.operator.server_ms" in figures


def test_without_json_each_figure_is_one_name_value_line(monkeypatch):
    monkeypatch.setattr(command, "run_benchmark", lambda *args, **kwargs: {"sync.wall_seconds": 1.5, "pair": "p"})
    import io

    out = io.StringIO()
    call_command("benchmark", "--records", "1", stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines() == ["sync.wall_seconds=1.5", "pair=p"]


def test_repeat_reports_each_contenders_fastest_round_and_lists_every_round():
    import io
    import json

    out = io.StringIO()
    call_command("benchmark", "--pair", "x3-servicenow", "--records", "5", "--lines-per-invoice", "1",
                 "--repeat", "2", "--json", stdout=out, stderr=io.StringIO())
    figures = json.loads(out.getvalue())
    assert figures["rounds"] == 2
    assert len(figures["rounds.bare_wall_seconds"]) == len(figures["rounds.sync_wall_seconds"]) == 2
    assert figures["bare.wall_seconds"] == min(figures["rounds.bare_wall_seconds"])
    assert figures["sync.wall_seconds"] == min(figures["rounds.sync_wall_seconds"])
    assert figures["records.synced"] == figures["records"] and figures["resync.http_writes"] == 0


def test_repeat_is_bounded():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--repeat"):
        call_command("benchmark", "--records", "1", "--repeat", "0")


# --- the Sage Intacct → ServiceNow pair ----------------------------------------------------------
BILLS, BILL_LINES, VENDORS = 25, 3, 50


@pytest.fixture(scope="module")
def intacct_figures() -> dict:
    import io

    out = io.StringIO()
    call_command("benchmark", "--pair", "intacct-servicenow", "--records", str(BILLS),
                 "--lines-per-invoice", str(BILL_LINES), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_intacct_pair_syncs_every_vendor_and_bill_of_the_seeded_company(intacct_figures):
    f = intacct_figures
    assert (f["pair"], f["invoices"], f["lines_per_invoice"]) == ("intacct-servicenow", BILLS, BILL_LINES)
    assert f["records"] == f["records.synced"] == VENDORS + BILLS
    assert f["records.held"] == f["records.failed"] == 0
    assert f["target_rows"] == VENDORS + BILLS * (1 + BILL_LINES)
    assert not [name for name in f if name.startswith("error.")]


def test_intacct_pair_calls_are_counted_against_an_honest_minimum(intacct_figures):
    f = intacct_figures
    assert f["sync.http_calls"] == f["sync.http_reads"] + f["sync.http_writes"] + f["sync.http_auth"]
    assert f["sync.http_auth"] == 2  # one getAPISession, one ServiceNow token
    # 2 sign-ins; reads: GLACCOUNT, DEPARTMENT, VENDOR, the APBILL scan and one request of `read`s,
    # two ServiceNow reference tables and the approved-invoice poll; writes: suppliers, invoices, lines
    assert f["sync.http_calls_minimum"] == 2 + 8 + 3
    assert f["bare.http_calls"] == f["sync.http_calls_minimum"]  # the bare client makes just those
    assert f["sync.http_calls"] >= f["sync.http_calls_minimum"]
    assert f["sync.http_writes"] == 3  # every batch as full as it can be
    assert f["sync.http_calls_vs_minimum"] == pytest.approx(f["sync.http_calls"] / f["sync.http_calls_minimum"],
                                                          abs=0.001)


def test_intacct_pair_unchanged_resync_writes_nothing(intacct_figures):
    f = intacct_figures
    assert f["resync.http_writes"] == 0 and f["resync.records_written"] == 0
    assert 0 < f["resync.http_reads"] == f["resync.http_calls"]
    assert f["check.resync.http_writes"].startswith("pass")


def test_intacct_pair_database_and_memory_figures_agree(intacct_figures):
    f = intacct_figures
    assert f["sync.db_queries_per_record"] == pytest.approx(f["sync.db_queries"] / f["records"], abs=0.001)
    assert f["sync.peak_rss_mb"] > 0 and f["bare.peak_rss_mb"] > 0
    assert f["sync.wall_seconds"] > 0 and f["bare.wall_seconds"] > 0
    assert f["sync.overhead_ratio"] == pytest.approx(f["sync.wall_seconds"] / f["bare.wall_seconds"], rel=0.05)


# --- the Sage 300 → ServiceNow pair --------------------------------------------------------------
# 120 invoices of 2 details: three invoice batches (50, 50, 20), one page of each collection
S300_INVOICES, S300_LINES, S300_VENDORS, S300_ACCOUNTS = 120, 2, 50, 24


@pytest.fixture(scope="module")
def sage300_figures() -> dict:
    import io

    out = io.StringIO()
    call_command("benchmark", "--pair", "sage300-servicenow", "--records", str(S300_INVOICES),
                 "--lines-per-invoice", str(S300_LINES), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_sage300_pair_syncs_every_account_vendor_and_invoice_of_the_seeded_company(sage300_figures):
    f = sage300_figures
    assert (f["pair"], f["invoices"], f["lines_per_invoice"]) == ("sage300-servicenow", S300_INVOICES, S300_LINES)
    # GL accounts are pushed too (4 naturals x the 6 ServiceNow cost centers)
    assert f["records"] == f["records.synced"] == S300_ACCOUNTS + S300_VENDORS + S300_INVOICES
    assert f["records.held"] == f["records.failed"] == 0
    assert f["target_rows"] == S300_ACCOUNTS + S300_VENDORS + S300_INVOICES * (1 + S300_LINES)
    assert not [name for name in f if name.startswith("error.")]


def test_sage300_pair_calls_are_counted_against_an_honest_minimum(sage300_figures):
    f = sage300_figures
    assert f["sync.http_calls"] == f["sync.http_reads"] + f["sync.http_writes"] + f["sync.http_auth"]
    assert f["sync.http_auth"] == 1  # the ServiceNow token; Sage 300 takes Basic on every call
    # 1 token; reads: ServiceNow cost centers, GLSegmentCodes, GLAccounts, APVendors, APInvoiceBatches;
    # writes: GL accounts, suppliers, invoices, their lines, one batch each
    assert f["sync.http_calls_minimum"] == 1 + 5 + 4
    assert f["bare.http_calls"] == f["sync.http_calls_minimum"]  # the bare client makes just those
    assert f["sync.http_writes"] == 4  # every batch as full as it can be
    # the portal's only extra calls are reads: the chart a second time (the GL accounts stream),
    # one adoption lookup each for new GL accounts and new suppliers (README, Performance) and the
    # cycle's sys_dictionary read before it writes (README, "The ServiceNow connection test")
    assert f["sync.http_calls_minimum"] <= f["sync.http_calls"] <= f["sync.http_calls_minimum"] + 4
    assert f["sync.http_calls_vs_minimum"] == pytest.approx(f["sync.http_calls"] / f["sync.http_calls_minimum"],
                                                          abs=0.001)


def test_sage300_pair_unchanged_resync_writes_nothing(sage300_figures):
    f = sage300_figures
    assert f["resync.http_writes"] == 0 and f["resync.records_written"] == 0
    assert 0 < f["resync.http_reads"] == f["resync.http_calls"]
    assert f["check.resync.http_writes"].startswith("pass")


def test_sage300_pair_database_and_memory_figures_agree(sage300_figures):
    f = sage300_figures
    assert 0 < f["sync.db_queries_per_record"] <= 3
    assert f["sync.db_queries_per_record"] == pytest.approx(f["sync.db_queries"] / f["records"], abs=0.001)
    assert f["sync.peak_rss_mb"] > 0 and f["bare.peak_rss_mb"] > 0
    assert f["sync.wall_seconds"] > 0 and f["bare.wall_seconds"] > 0
    assert f["sync.overhead_ratio"] == pytest.approx(f["sync.wall_seconds"] / f["bare.wall_seconds"], rel=0.05)


def test_sage300_benchmark_seed_is_batched_shuffled_and_mappable_by_code():
    from decimal import Decimal

    from integrations.sandbox.bench import S300_PAGE_SIZE, build_benchmark_simulator
    from integrations.sandbox.snseed import COST_CENTERS

    sim = build_benchmark_simulator("sage_300", invoices=1020, lines_per_invoice=3)
    assert sim.page_size == S300_PAGE_SIZE == 100  # web.config PageSize as installed
    batches = sim.rows("APInvoiceBatches")
    assert [len(b["Invoices"]) for b in batches] == [50] * 20 + [20]
    assert all(len(i["InvoiceDetails"]) == 3 for b in batches for i in b["Invoices"])
    numbers = [b["BatchNumber"] for b in batches]
    by_date = [b["BatchNumber"] for b in sorted(batches, key=lambda b: (b["DateLastEdited"], b["BatchNumber"]))]
    assert by_date != numbers and sorted(by_date) == numbers  # dates shuffled against keys
    assert len(sim.rows("APVendors")) == 50
    codes = {code for code, _ in COST_CENTERS}
    accounts = {a["UnformattedAccount"]: a for a in sim.rows("GLAccounts")}
    assert {a["AccountSegmentCode2"] for a in accounts.values()} == codes  # every department is a cost center
    details = [d for b in batches for i in b["Invoices"] for d in i["InvoiceDetails"]]
    assert {d["GLAccount"] for d in details} <= set(accounts)
    assert all(type(d["DistributedAmount"]) is Decimal for d in details)
    invoice = batches[0]["Invoices"][0]
    assert invoice["DocumentTotalBeforeTaxes"] == sum(d["DistributedAmount"] for d in invoice["InvoiceDetails"])


def test_sage300_minimum_counts_invoice_batches_at_the_server_page_size():
    from integrations.benchmark.pairs import PAIRS

    pair = PAIRS["sage300-servicenow"]
    # 10,000 invoices x 5: 200 batches at 100 per page, 50,000 lines at 1000 per Batch API call
    minimum = pair.minimum_calls(
        {"cmn_cost_center": 6, "GLSegmentCodes": 6, "GLAccounts": 24, "APVendors": 50, "APInvoiceBatches": 200},
        {"itfm_gl_accounts": 24, "proc_vendor": 50, "sn_apo_invoice": 10_000, "sn_apo_invoice_line": 50_000})
    assert minimum == {"read": 6, "write": 62, "auth": 1, "total": 69}


# --- the ServiceTitan → Sage X3 pair -------------------------------------------------------------
# 30 inventory bills of 2 items (each with its purchase order) and 30 completed jobs; 50 vendors
ST_RECORDS, ST_LINES, ST_VENDORS = 30, 2, 50


@pytest.fixture(scope="module")
def servicetitan_figures() -> dict:
    import io

    out = io.StringIO()
    call_command("benchmark", "--pair", "servicetitan-x3", "--records", str(ST_RECORDS),
                 "--lines-per-invoice", str(ST_LINES), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_servicetitan_pair_posts_an_entry_per_job_and_an_invoice_per_bill(servicetitan_figures):
    f = servicetitan_figures
    assert (f["pair"], f["invoices"], f["lines_per_invoice"]) == ("servicetitan-x3", ST_RECORDS, ST_LINES)
    # vendors (each mapped to its same-named supplier, so left as X3 has it: skipped), the X3
    # suppliers checked back against ServiceTitan (nothing differs), the jobs and the bills
    assert f["records"] == 2 * ST_VENDORS + 2 * ST_RECORDS
    assert f["records.skipped"] == ST_VENDORS
    assert f["records.synced"] == ST_VENDORS + 2 * ST_RECORDS
    assert f["records.held"] == f["records.failed"] == 0
    assert f["target_rows"] == 2 * ST_RECORDS  # one GACCENTRY per job, one PINVOICE per bill
    assert not [name for name in f if name.startswith("error.")]


def test_servicetitan_pair_calls_are_counted_against_an_honest_minimum(servicetitan_figures):
    f = servicetitan_figures
    assert f["sync.http_calls"] == f["sync.http_reads"] + f["sync.http_writes"] + f["sync.http_auth"]
    assert f["sync.http_auth"] == 1  # the ServiceTitan token; X3 takes Basic on every call
    # 1 token; reads: six ServiceTitan lists, the bills' export feed and four X3 classes, one page
    # each at this size; writes: a $create per entry and per invoice (X3's api1 has no batch)
    assert f["sync.http_calls_minimum"] == 1 + 11 + 2 * ST_RECORDS
    assert f["bare.http_calls"] == f["sync.http_calls_minimum"]  # the bare client makes just those
    assert f["sync.http_writes"] == 2 * ST_RECORDS  # no lookup-before-post on a first posting
    # the portal's extra reads: the vendors again (the vendors stream), the X3 suppliers and their
    # ServiceTitan vendors (the X3 → ServiceTitan supplier stream), and per page of bills the X3
    # purchase orders (their lines); the orders' ServiceTitan numbers come from the stored list
    assert f["sync.http_calls"] == f["sync.http_calls_minimum"] + 4
    assert f["sync.http_calls_vs_minimum"] == pytest.approx(f["sync.http_calls"] / f["sync.http_calls_minimum"],
                                                          abs=0.001)


def test_servicetitan_pair_unchanged_resync_writes_nothing(servicetitan_figures):
    f = servicetitan_figures
    assert f["resync.http_writes"] == 0 and f["resync.records_written"] == 0
    assert 0 < f["resync.http_reads"] == f["resync.http_calls"]
    assert f["check.resync.http_writes"].startswith("pass")


def test_servicetitan_pair_database_and_memory_figures_agree(servicetitan_figures):
    f = servicetitan_figures
    assert f["sync.db_queries_per_record"] == pytest.approx(f["sync.db_queries"] / f["records"], abs=0.001)
    assert f["sync.peak_rss_mb"] > 0 and f["bare.peak_rss_mb"] > 0
    assert f["sync.wall_seconds"] > 0 and f["bare.wall_seconds"] > 0
    assert f["sync.overhead_ratio"] == pytest.approx(f["sync.wall_seconds"] / f["bare.wall_seconds"], rel=0.05)


def test_servicetitan_minimum_counts_lists_export_pages_and_one_post_per_document():
    from integrations.benchmark.pairs import PAIRS

    pair = PAIRS["servicetitan-x3"]
    # 10,000 bills and jobs: lists at 5000 a page, the export feed at 500, X3 classes at 1000
    minimum = pair.minimum_calls(
        {"jpm/job-types": 3, "settings/business-units": 3, "accounting/gl-accounts": 6, "inventory/vendors": 50,
         "inventory/purchase-orders": 10_000, "jpm/jobs": 10_000, "accounting/export/inventory-bills": 10_000,
         "GACCOUNT": 14, "CACCE": 4, "BPSUPPLIER": 50, "PORDER": 10_000},
        {"GACCENTRY": 10_000, "PINVOICE": 10_000})
    assert minimum == {"read": 4 + 2 + 2 + 20 + 3 + 10, "write": 20_000, "auth": 1, "total": 20_042}
    # the target X3 is seeded to match the source (its orders, suppliers, chart); other pairs' not
    assert pair.target_args(10_000, 5) == ("--field-service", "--invoices", "10000", "--lines-per-invoice", "5")
    assert PAIRS["x3-servicenow"].target_args(10_000, 5) == ()


def test_servicetitan_benchmark_seeds_are_coherent_on_both_sides():
    from integrations.sandbox.bench import X3_BENCH_USER, X3_PAGE_MAX, build_benchmark_simulator

    st = build_benchmark_simulator("servicetitan", invoices=12, lines_per_invoice=3, suppliers=4)
    x3 = build_benchmark_simulator("sage_x3", invoices=12, lines_per_invoice=3, suppliers=4, field_service=True)
    assert st.rate_limit_per_second == 60  # ServiceTitan's documented limit stays on
    bills, jobs = st.rows("accounting", "inventory-bills"), st.rows("jpm", "jobs")
    assert len(bills) == len(jobs) == 12 and all(job["jobStatus"] == "Completed" for job in jobs)
    assert x3.page_max == X3_PAGE_MAX and x3.users[X3_BENCH_USER[0]] == X3_BENCH_USER[1]
    suppliers = {row["BPSNAM"] for row in x3.records("BPSUPPLIER", "FIELD")}
    assert {vendor["name"] for vendor in st.rows("inventory", "vendors")} == suppliers
    orders = {row["POHNUM"]: row for row in x3.records("PORDER", "FIELD")}
    for po in st.rows("inventory", "purchase-orders"):
        assert [line["ITMREF"] for line in orders[po["number"]]["PORDERP"]] == [i["skuCode"] for i in po["items"]]
    with pytest.raises(ValueError):
        build_benchmark_simulator("servicenow", field_service=True)


def test_sandbox_server_serves_the_field_service_folder_only_for_sage_x3():
    from integrations.sandbox.server import build_simulator, main

    sim = build_simulator("sage_x3", field_service=True)
    assert sorted(sim._data) == ["FIELD"] and sim.records("PORDER", "FIELD")
    with pytest.raises(SystemExit):
        main(["servicetitan", "--field-service"])


# --- every pair in one go, and a per-call latency ----------------------------------------------------
def test_all_pairs_run_in_turn_and_end_with_one_table(monkeypatch):
    import io

    from integrations.benchmark.pairs import PAIRS

    ran = []

    def fake_run(name, records, lines, admin_rows, progress=None, latency_ms=0, reconcile=False, x3_transport="rest",
                 write_concurrency=1, repeat=1):
        ran.append((name, latency_ms, write_concurrency))
        return {"records": records, "sync.overhead_ratio": 1.25, "resync.http_writes": 0}

    monkeypatch.setattr(command, "run_benchmark", fake_run)
    out = io.StringIO()
    call_command("benchmark", "--pair", "all", "--records", "7", "--latency-ms", "50", "--write-concurrency", "3",
                 stdout=out, stderr=io.StringIO())
    assert ran == [(name, 50, 3) for name in sorted(PAIRS)]
    lines = out.getvalue().splitlines()
    assert "x3-servicenow.sync.overhead_ratio=1.25" in lines
    table = lines[lines.index("") + 1:]
    assert table[0].split(" | ")[0].strip() == "pair" and len(table) == 2 + len(PAIRS)
    assert all(row.split(" | ")[5].strip() == "1.25" for row in table[2:])  # the ratio column


def test_a_per_call_latency_reaches_every_sandbox_answer():
    import io

    out = io.StringIO()
    call_command("benchmark", "--records", "3", "--lines-per-invoice", "1", "--latency-ms", "20", "--json",
                 stdout=out, stderr=io.StringIO())
    figures = json.loads(out.getvalue())
    assert figures["latency_ms"] == 20
    # every call waited at least the delay, on both contenders
    assert figures["sync.wall_seconds"] >= figures["sync.http_calls"] * 0.02
    assert figures["bare.wall_seconds"] >= figures["bare.http_calls"] * 0.02


def test_reconcile_reads_back_every_synced_invoice_and_writes_nothing():
    import io

    out = io.StringIO()
    call_command("benchmark", "--records", "12", "--lines-per-invoice", "1", "--reconcile", "--json",
                 stdout=out, stderr=io.StringIO())
    figures = json.loads(out.getvalue())
    assert figures["reconcile.documents"] == 12  # every invoice, as the portal recorded it
    assert figures["reconcile.http_writes"] == 0
    assert figures["reconcile.http_calls"] >= 1
    assert figures["reconcile.verdict"] == "Balanced"
