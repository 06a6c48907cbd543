"""How the benchmark counts calls by kind: what a call does, not only its HTTP method."""

from __future__ import annotations

import json

from integrations.benchmark.measure import HttpTally

BATCH = "https://sn.test/api/now/v1/batch"


def batch(*methods: str, compact: bool = False) -> bytes:
    body = {"batch_request_id": "0", "rest_requests": [
        {"id": str(n), "method": method, "url": "/api/now/table/x"} for n, method in enumerate(methods)]}
    return json.dumps(body, separators=(",", ":") if compact else None).encode()


def test_a_batch_of_get_items_reads_and_one_with_any_write_item_writes():
    tally = HttpTally()

    tally.add("POST", BATCH, batch("GET", "GET"))
    tally.add("POST", BATCH, batch("GET", "POST"))
    tally.add("POST", BATCH, batch("PATCH", compact=True))
    tally.add("POST", "https://sn.test/oauth_token.do", b"grant_type=password")
    tally.add("GET", "https://sn.test/api/now/table/x")

    assert tally.snapshot() == {"read": 2, "write": 2, "auth": 1, "total": 5}
