"""What counts as a write to each simulated system, read from the simulator's own request log."""

from __future__ import annotations

import re

from integrations.sandbox.base import SimRequest, Simulator

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Intacct answers every call on one POST endpoint: the function in the body says what it does.
_INTACCT_WRITE = re.compile(rb"<(create|update|delete|reverse|apply|void|record|install)\w*[\s>/]", re.IGNORECASE)


def _x3_write(request: SimRequest) -> bool:
    if request.method not in WRITE_METHODS or request.path.rstrip("/").endswith("/token"):
        return False
    if "graphql" in request.path.lower():
        return b"mutation" in request.body
    return True


def writes_to(system: str, sim: Simulator) -> list[SimRequest]:
    """Every request in ``sim.requests`` (and its own write logs) that could change its data."""
    requests = list(sim.requests)
    if system == "servicenow":
        return [r for r in requests if r.method in WRITE_METHODS and r.path.rstrip("/") != "/oauth_token.do"]
    if system == "sage_x3":
        return [r for r in requests if _x3_write(r)]
    if system == "sage_intacct":
        return [r for r in requests if r.method in WRITE_METHODS and _INTACCT_WRITE.search(r.body or b"")]
    if system in ("sage_300", "syspro"):
        return list(sim.writes)
    if system == "servicetitan":
        return [*sim.forbidden_writes, *sim.vendor_writes,
                *(r for r in requests if r.method in WRITE_METHODS and not r.path.endswith("/connect/token"))]
    raise AssertionError(f"no write rule for {system}")
