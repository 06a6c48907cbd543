"""The ServiceNow side both bare clients share: a token, then Batch API inserts.

Plain ``requests``, no bookkeeping: the same calls the portal makes, so the benchmark can
price the portal's own work. Subclasses set ``sn``, ``sn_url``, ``sn_client``, ``batch_size``,
``calls`` and ``writes``.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from typing import Any

from integrations.benchmark.measure import peak_rss_mb, reset_peak_rss

SOURCE_ID = "u_source_key"


class ServiceNowBatchWriter:
    sn: Any
    sn_url: str
    sn_client: tuple[str, str]
    batch_size: int
    calls: dict[str, int]
    writes: dict[str, int]
    tables: dict[str, str]
    reads: dict[str, int]

    def token(self) -> None:
        response = self.sn.post(f"{self.sn_url}/oauth_token.do", timeout=60, data={
            "grant_type": "client_credentials", "client_id": self.sn_client[0], "client_secret": self.sn_client[1]})
        self.calls["auth"] += 1
        response.raise_for_status()
        self.sn.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def sn_rows(self, logical: str, fields: str, query: str = "") -> list[dict[str, Any]]:
        """One Table API page (up to 1,000 rows) of a logical table, in (sys_updated_on, sys_id) order."""
        table = self.tables[logical]
        response = self.sn.get(f"{self.sn_url}/api/now/table/{table}", timeout=60, params={
            "sysparm_limit": 1000, "sysparm_offset": 0, "sysparm_exclude_reference_link": "true",
            "sysparm_fields": f"{fields},sys_id,sys_updated_on",
            "sysparm_query": "^".join(q for q in (query, "ORDERBYsys_updated_on^ORDERBYsys_id") if q)})
        self.calls["read"] += 1
        response.raise_for_status()
        rows = response.json()["result"]
        self.reads[table] = self.reads.get(table, 0) + len(rows)
        return rows

    def insert(self, logical: str, rows: list[tuple[str, dict[str, str]]]) -> dict[str, str]:
        """POST rows through the Batch API, ``batch_size`` per call; source key → sys_id."""
        table = self.tables[logical]
        created: dict[str, str] = {}
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start:start + self.batch_size]
            body = {"batch_request_id": str(start), "rest_requests": [
                {"id": str(index), "method": "POST", "url": f"/api/now/table/{table}?sysparm_fields=sys_id,sys_mod_count",
                 "headers": [{"name": "Content-Type", "value": "application/json"},
                             {"name": "Accept", "value": "application/json"}],
                 "exclude_response_headers": True,
                 "body": base64.b64encode(json.dumps({**payload, SOURCE_ID: key}).encode()).decode("ascii")}
                for index, (key, payload) in enumerate(chunk)]}
            response = self.sn.post(f"{self.sn_url}/api/now/v1/batch", json=body, timeout=300)
            self.calls["write"] += 1
            response.raise_for_status()
            served = response.json()
            if served.get("unserviced_requests"):
                raise RuntimeError(f"{len(served['unserviced_requests'])} batch items not serviced")
            for item in served["serviced_requests"]:
                if item["status_code"] >= 400:
                    raise RuntimeError(f"batch item failed: HTTP {item['status_code']}")
                record = json.loads(base64.b64decode(item["body"]))["result"]
                created[chunk[int(item["id"])][0]] = record["sys_id"]
        self.writes[table] = self.writes.get(table, 0) + len(rows)
        return created


def run_bare(bare_class: type, argv: list[str] | None = None) -> int:
    """Entry point of a bare client process: read the config file, run, print the figures as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as handle:
        config = json.load(handle)
    reset_peak_rss()
    bare = bare_class(config)
    started, cpu = time.perf_counter(), time.process_time()
    bare.run()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"wall_seconds": wall, "cpu_seconds": cpu, "calls": bare.calls, "reads": bare.reads,
                      "writes": bare.writes, "peak_rss_mb": peak_rss_mb()}), flush=True)
    return 0
