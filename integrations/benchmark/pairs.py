"""The pairs the benchmark knows: which simulators to start, the tenant, the bare client, the minimum.

A pair declares its two sandbox systems, the tenant document that points the portal at them
(at the largest page and batch the simulated systems allow), the module of its bare client,
and how to count the fewest HTTP calls that can move its data. A new pair adds one entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from integrations.demo import (
    INTACCT_COMPANY_ID,
    INTACCT_SENDER_ID,
    INTACCT_SENDER_PASSWORD,
    INTACCT_USER_ID,
    INTACCT_USER_PASSWORD,
    SAGE300_COMPANY,
    SAGE300_PASSWORD,
    SAGE300_USER,
    SN_CLIENT_ID,
    SN_CLIENT_SECRET,
    SN_USER,
    SYSPRO_COMPANY,
    SYSPRO_OPERATOR,
    SYSPRO_OPERATOR_PASSWORD,
    intacct_servicenow_document,
    sage300_servicenow_document,
    servicetitan_x3_document,
    syspro_servicenow_document,
    x3_servicenow_document,
)
from integrations.sandbox.bench import S300_PAGE_SIZE, SN_BATCH_MAX, SYSPRO_PAGE_SIZE, X3_BENCH_USER, X3_PAGE_MAX
from integrations.sandbox.servicetitan import EXPORT_PAGE_SIZE as ST_EXPORT_PAGE_SIZE
from integrations.sandbox.servicetitan_seed import APP_KEY as ST_APP_KEY
from integrations.sandbox.servicetitan_seed import CLIENT_ID as ST_CLIENT_ID
from integrations.sandbox.servicetitan_seed import CLIENT_SECRET as ST_CLIENT_SECRET
from integrations.sandbox.servicetitan_seed import TENANT_ID as ST_TENANT_ID
from integrations.systems.intacct import MAX_PAGE_SIZE as INTACCT_PAGE_MAX
from integrations.systems.servicetitan import MAX_PAGE_SIZE as ST_PAGE_MAX

# The Table API answers up to 10000 rows per page by default (API_FACTS 1.1).
SN_PAGE_MAX = 10000


@dataclass(frozen=True)
class Pair:
    name: str
    kind: str
    source: str  # sandbox system names, as the sandbox server CLI knows them
    target: str
    document: Callable[[str, str], dict[str, Any]]
    bare_config: Callable[[str, str], dict[str, Any]]
    bare_module: str
    read_page: Callable[[str], int]  # table (or class) read -> the largest page its system serves
    write_batch: int
    warm: Callable[[str], None] = lambda url: None  # prepare the source's caches before either contender
    auth_calls: int = 0  # sign-ins the minimum counts (the X3 pair counts none: X3 takes basic auth per call)
    # tables whose reads end only at a short (or empty) page: the source tells no total (SYSPRO's COMFND)
    ends_short: Callable[[str], bool] = lambda table: False
    # (records, lines per invoice) -> the target sandbox's arguments after ``--benchmark``: none
    # for a ServiceNow instance (it holds reference data only); a target that holds what the
    # records refer to (X3's chart, suppliers and orders for ServiceTitan) is seeded to match
    target_args: Callable[[int, int], tuple[str, ...]] = lambda records, lines: ()

    def minimum_calls(self, reads: dict[str, int], writes: dict[str, int]) -> dict[str, int]:
        """Reads at the largest page plus writes at the largest batch.

        ``reads`` is rows per source table (or class), ``writes`` items per target table, as the
        bare client counted them. Every table read needs one call even when empty (a source
        that tells no total needs one more after a last full page); rows of a table can only be
        sent once the rows they refer to exist, so each written table is batched on its own
        (headers before their lines).
        """
        read_calls = sum(rows // self.read_page(table) + 1 if self.ends_short(table)
                         else max(1, math.ceil(rows / self.read_page(table))) for table, rows in reads.items())
        write_calls = sum(math.ceil(items / self.write_batch) for items in writes.values() if items)
        return {"read": read_calls, "write": write_calls, "auth": self.auth_calls,
                "total": read_calls + write_calls + self.auth_calls}


def _x3_servicenow_document(x3_url: str, sn_url: str) -> dict[str, Any]:
    # page and batch sizes at the integration level too, where they override the connections'
    doc = x3_servicenow_document(x3_url, sn_url, slug="bench", name="Benchmark",
                                 settings={"page_size": X3_PAGE_MAX, "batch_size": SN_BATCH_MAX},
                                 schedules={"invoices": "manual"})
    x3, sn = doc["connections"]
    x3["auth"] = {"method": "basic", "username": X3_BENCH_USER[0], "password": X3_BENCH_USER[1]}
    x3["settings"] = {"page_size": X3_PAGE_MAX}
    sn["settings"] = {**sn.get("settings", {}), "batch_size": SN_BATCH_MAX, "page_size": 1000}
    return doc


def _x3_servicenow_bare(x3_url: str, sn_url: str) -> dict[str, Any]:
    return {"x3_url": x3_url, "sn_url": sn_url, "page_size": X3_PAGE_MAX, "batch_size": SN_BATCH_MAX,
            "x3_basic": list(X3_BENCH_USER), "sn_client": [SN_CLIENT_ID, SN_CLIENT_SECRET], "sn_user": SN_USER}


def _x3_warm(x3_url: str) -> None:
    """Ask each class once in the order both contenders read it, so the simulator sorts it now."""
    for klass, key in (("GACCOUNT", "ACC"), ("CACCE", "CCE"), ("BPSUPPLIER", "BPSNUM"), ("PORDER", "POHNUM"),
                       ("PINVOICE", "NUM")):
        requests.get(f"{x3_url}/api1/x3/erp/SEED/{klass}", auth=X3_BENCH_USER, timeout=300, params={
            "representation": f"{klass}.$query", "count": 1, "orderBy": f"UPDDATTIM asc, {key} asc",
        }).raise_for_status()


def _x3_servicenow_page(table: str) -> int:
    # X3 classes are upper case (GACCOUNT...); ServiceNow tables lower case (cmn_cost_center...)
    return SN_PAGE_MAX if table.islower() else X3_PAGE_MAX


# --- Sage Intacct → ServiceNow -----------------------------------------------------------------
# readByQuery has no ORDER BY: the client scans each object once and sorts what changed, at
# most scan_window rows in memory and the rest on disk. The benchmark keeps the connection's
# default window (5000), so its peak memory is what a customer's would be.
def _intacct_servicenow_document(intacct_url: str, sn_url: str) -> dict[str, Any]:
    doc = intacct_servicenow_document(intacct_url, sn_url, slug="bench", name="Benchmark",
                                      settings={"page_size": INTACCT_PAGE_MAX, "batch_size": SN_BATCH_MAX},
                                      schedules={"bills": "manual"})
    intacct, sn = doc["connections"]
    intacct["settings"] = {"page_size": INTACCT_PAGE_MAX}
    sn["settings"] = {**sn.get("settings", {}), "batch_size": SN_BATCH_MAX, "page_size": 1000}
    return doc


def _intacct_servicenow_bare(intacct_url: str, sn_url: str) -> dict[str, Any]:
    return {"intacct_url": intacct_url, "sn_url": sn_url, "page_size": INTACCT_PAGE_MAX, "batch_size": SN_BATCH_MAX,
            "intacct": {"sender_id": INTACCT_SENDER_ID, "sender_password": INTACCT_SENDER_PASSWORD,
                        "company_id": INTACCT_COMPANY_ID, "user_id": INTACCT_USER_ID,
                        "user_password": INTACCT_USER_PASSWORD},
            "sn_client": [SN_CLIENT_ID, SN_CLIENT_SECRET]}


def _intacct_servicenow_page(table: str) -> int:
    # Intacct objects are upper case (GLACCOUNT..., and "APBILL#read": whole bills by `read`, ten
    # functions of 100 keys in one request); ServiceNow tables lower case
    return SN_PAGE_MAX if table.islower() else INTACCT_PAGE_MAX


# --- Sage 300 → ServiceNow ----------------------------------------------------------------------
# Sage 300 answers at most its web.config PageSize per GET whatever $top asks; the benchmark's
# simulator keeps the default, 100 (see integrations/sandbox/bench.py), and the connection asks
# that many. A record of APInvoiceBatches is a whole batch (50 invoices with their details).
def _sage300_servicenow_document(s300_url: str, sn_url: str) -> dict[str, Any]:
    # batch size at the integration level (the Sage 300 client has none); the page size on the
    # Sage 300 connection only: at the integration level it would page ServiceNow reads too
    doc = sage300_servicenow_document(s300_url, sn_url, slug="bench", name="Benchmark",
                                      settings={"batch_size": SN_BATCH_MAX},
                                      connection_settings={"page_size": S300_PAGE_SIZE, "timeout": 120},
                                      schedules={"invoices": "manual"})
    sn = doc["connections"][1]
    sn["settings"] = {**sn.get("settings", {}), "batch_size": SN_BATCH_MAX, "page_size": 1000}
    return doc


def _sage300_servicenow_bare(s300_url: str, sn_url: str) -> dict[str, Any]:
    return {"s300_url": s300_url, "sn_url": sn_url, "company": SAGE300_COMPANY, "page_size": S300_PAGE_SIZE,
            "batch_size": SN_BATCH_MAX, "s300_basic": [SAGE300_USER, SAGE300_PASSWORD],
            "sn_client": [SN_CLIENT_ID, SN_CLIENT_SECRET]}


def _sage300_servicenow_page(table: str) -> int:
    # Sage 300 resources are CamelCase (GLAccounts...); ServiceNow tables lower case
    return SN_PAGE_MAX if table.islower() else S300_PAGE_SIZE


# --- SYSPRO → ServiceNow ------------------------------------------------------------------------
# COMFND answers at most the ReturnRows asked ([U]: SYSPRO documents no maximum; the benchmark asks
# 1000, as X3 serves); it tells no total, so a table's end shows as a short page.
def _syspro_servicenow_document(syspro_url: str, sn_url: str) -> dict[str, Any]:
    # the page size on each connection: at the integration level it would page both sides alike
    doc = syspro_servicenow_document(syspro_url, sn_url, slug="bench", name="Benchmark",
                                     settings={"batch_size": SN_BATCH_MAX},
                                     connection_settings={"page_size": SYSPRO_PAGE_SIZE, "timeout": 120},
                                     schedules={"invoices": "manual"})
    sn = doc["connections"][1]
    sn["settings"] = {**sn.get("settings", {}), "batch_size": SN_BATCH_MAX, "page_size": 1000}
    return doc


def _syspro_servicenow_bare(syspro_url: str, sn_url: str) -> dict[str, Any]:
    return {"syspro_url": syspro_url, "sn_url": sn_url, "company": SYSPRO_COMPANY, "operator": SYSPRO_OPERATOR,
            "operator_password": SYSPRO_OPERATOR_PASSWORD, "page_size": SYSPRO_PAGE_SIZE,
            "batch_size": SN_BATCH_MAX, "sn_client": [SN_CLIENT_ID, SN_CLIENT_SECRET]}


def _syspro_servicenow_page(table: str) -> int:
    # SYSPRO tables are CamelCase (ApInvoice...); ServiceNow tables lower case
    return SN_PAGE_MAX if table.islower() else SYSPRO_PAGE_SIZE


# --- ServiceTitan → Sage X3 ----------------------------------------------------------------------
# ServiceTitan lists answer up to 5000 records a page, its export feed EXPORT_PAGE_SIZE (500) a
# page whatever is asked; X3 serves X3_PAGE_MAX records a $query page and has no batch in api1,
# so every journal entry and supplier invoice is a POST of its own.
ST_JOURNAL_OFFSET, ST_TAX_ACCOUNT, ST_FREIGHT_ACCOUNT = "21500", "21600", "5200"
ST_EXPORT_PREFIX = "export/"


def _servicetitan_x3_document(st_url: str, x3_url: str) -> dict[str, Any]:
    # the page size on each connection: at the integration level it would page both sides alike
    doc = servicetitan_x3_document(
        st_url, x3_url, slug="bench", name="Benchmark",
        settings={"journal_offset_account": ST_JOURNAL_OFFSET, "journal_type": "ODT",
                  "bill_tax_account": ST_TAX_ACCOUNT, "bill_freight_account": ST_FREIGHT_ACCOUNT},
        schedules={name: "manual" for name in ("vendors", "suppliers_to_st", "job_costs", "inventory_bills")})
    st, x3 = doc["connections"]
    st["settings"] = {**st["settings"], "page_size": ST_PAGE_MAX}
    x3["auth"] = {"method": "basic", "username": X3_BENCH_USER[0], "password": X3_BENCH_USER[1]}
    x3["settings"] = {"page_size": X3_PAGE_MAX}
    return doc


def _servicetitan_x3_bare(st_url: str, x3_url: str) -> dict[str, Any]:
    return {"st_url": st_url, "x3_url": x3_url, "tenant": ST_TENANT_ID, "st_client": [ST_CLIENT_ID, ST_CLIENT_SECRET],
            "app_key": ST_APP_KEY, "st_page_size": ST_PAGE_MAX, "x3_page_size": X3_PAGE_MAX,
            "x3_basic": list(X3_BENCH_USER), "folder": "FIELD", "journal_offset_account": ST_JOURNAL_OFFSET,
            "journal_type": "ODT", "bill_tax_account": ST_TAX_ACCOUNT, "bill_freight_account": ST_FREIGHT_ACCOUNT,
            "currency": "USD"}


def _servicetitan_x3_page(table: str) -> int:
    # X3 classes are upper case (GACCOUNT...); ServiceTitan lists "module/resource", the export
    # feed "module/export/resource"
    if table.isupper():
        return X3_PAGE_MAX
    return ST_EXPORT_PAGE_SIZE if ST_EXPORT_PREFIX in table else ST_PAGE_MAX


def _servicetitan_x3_target(records: int, lines: int) -> tuple[str, ...]:
    # the contractor's X3 folder: one order per bill, as many jobs as bills, the same lines
    return ("--field-service", "--invoices", str(records), "--lines-per-invoice", str(lines))


PAIRS: dict[str, Pair] = {
    "x3-servicenow": Pair(
        name="x3-servicenow",
        kind="sage_x3__servicenow",
        source="sage_x3",
        target="servicenow",
        document=_x3_servicenow_document,
        bare_config=_x3_servicenow_bare,
        bare_module="integrations.benchmark.bare_x3_servicenow",
        read_page=_x3_servicenow_page,
        write_batch=SN_BATCH_MAX,
        warm=_x3_warm,
    ),
    "intacct-servicenow": Pair(
        name="intacct-servicenow",
        kind="sage_intacct__servicenow",
        source="sage_intacct",
        target="servicenow",
        document=_intacct_servicenow_document,
        bare_config=_intacct_servicenow_bare,
        bare_module="integrations.benchmark.bare_intacct_servicenow",
        read_page=_intacct_servicenow_page,
        write_batch=SN_BATCH_MAX,
        auth_calls=2,  # one getAPISession, one ServiceNow OAuth token
    ),
    "sage300-servicenow": Pair(
        name="sage300-servicenow",
        kind="sage_300__servicenow",
        source="sage_300",
        target="servicenow",
        document=_sage300_servicenow_document,
        bare_config=_sage300_servicenow_bare,
        bare_module="integrations.benchmark.bare_sage300_servicenow",
        read_page=_sage300_servicenow_page,
        write_batch=SN_BATCH_MAX,
        auth_calls=1,  # the ServiceNow OAuth token; Sage 300 takes Basic on every call, no sign-in
    ),
    "syspro-servicenow": Pair(
        name="syspro-servicenow",
        kind="syspro__servicenow",
        source="syspro",
        target="servicenow",
        document=_syspro_servicenow_document,
        bare_config=_syspro_servicenow_bare,
        bare_module="integrations.benchmark.bare_syspro_servicenow",
        read_page=_syspro_servicenow_page,
        write_batch=SN_BATCH_MAX,
        auth_calls=3,  # the ServiceNow OAuth token, SYSPRO's Logon and its Logoff (a licence seat)
        ends_short=lambda table: not table.islower(),
    ),
    "servicetitan-x3": Pair(
        name="servicetitan-x3",
        kind="servicetitan__sage_x3",
        source="servicetitan",
        target="sage_x3",
        document=_servicetitan_x3_document,
        bare_config=_servicetitan_x3_bare,
        bare_module="integrations.benchmark.bare_servicetitan_x3",
        read_page=_servicetitan_x3_page,
        write_batch=1,  # X3's api1 has no batch: one $create per journal entry and supplier invoice
        auth_calls=1,  # the ServiceTitan token; X3 takes Basic on every call
        target_args=_servicetitan_x3_target,
    ),
}
