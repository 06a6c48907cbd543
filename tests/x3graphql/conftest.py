"""Sage X3 over GraphQL: the demo tenant with its X3 connection switched to the GraphQL transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.systems.sage_x3_graphql import forget_schemas

X3_URL = "http://x3.acme.test:8124"
SN_URL = "https://acme.service-now.com"


@pytest.fixture(autouse=True)
def _fresh_schemas() -> Iterator[None]:
    # Introspections are cached per connection and process: each test starts from its own X3.
    forget_schemas()
    yield
    forget_schemas()


def over_graphql(document: dict[str, Any], connection: str = "x3", **auth: Any) -> dict[str, Any]:
    """The tenant document with its X3 connection on the GraphQL transport (and another sign-in)."""
    for conn in document["connections"]:
        if conn["name"] == connection:
            conn["settings"] = {**conn.get("settings", {}), "transport": "graphql"}
            if auth:
                conn["auth"] = auth
    return document


def api1_calls(sim: Any) -> list[str]:
    return [r.path for r in sim.requests if r.path.startswith("/api1/")]
