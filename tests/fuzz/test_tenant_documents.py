"""Tenant documents from outside (``manage.py load_tenant``): any JSON is refused with paths, or loaded.

Documents are drawn two ways: any JSON at all, and the demo documents (both pairs) with parts
replaced by values of any type, removed, or joined by unknown keys. ``validate`` must return its
list of "path: message" lines and ``load_document`` must raise ``DocumentError`` or load; any
other exception is a crash a customer's typo would cause.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import CharField
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from accounts.models import Membership, Tenant
from integrations.demo import intacct_servicenow_document, x3_servicenow_document
from integrations.models import Connection, Integration, StreamState
from integrations.tenants import DocumentError, load_document, validate
from tests.fuzz.wire import JSON

BASES = (
    x3_servicenow_document("http://x3.fuzz.test:8124", "https://fuzz.service-now.com", x3_refresh_token="r"),
    x3_servicenow_document("http://x3.fuzz.test:8124", "fuzz"),
    intacct_servicenow_document("https://intacct.fuzz.test", "https://fuzz.service-now.com", entity_id="E1"),
)
# values a careless or hostile document puts where a string, number, list or object belongs
ODD = st.one_of(JSON, st.sampled_from([
    "", " ", "a" * 300, "x3", "sn", "sage_x3", "servicenow", "sage_intacct", "basic", "session", "daily",
    "cron:* * * * *", "cron:", "https://", "http://[::1", "ftp://x", 0, -1, 65536, 2**70, 1e400, True,
    {"method": "basic"}, [], {}, "\x00", "<script>", "../../etc", "acme", "invoices",
]))


@st.composite
def mutated(draw, value: Any, depth: int = 0) -> Any:
    """``value`` with parts replaced, removed or added, at any depth."""
    if depth > 4 or draw(st.integers(0, 9)) == 0:
        return draw(ODD)
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            action = draw(st.integers(0, 9))
            if action == 0:
                continue  # removed
            out[key] = draw(mutated(child, depth + 1)) if action <= 3 else child
        if draw(st.integers(0, 5)) == 0:
            out[draw(st.sampled_from(["unknown", "port", "folder", "company", "enabled", "tables", "settings",
                                      "schedules", "role", "auth", "members"]))] = draw(ODD)
        return out
    if isinstance(value, list):
        items = [draw(mutated(item, depth + 1)) if draw(st.booleans()) else item for item in value]
        if items and draw(st.integers(0, 4)) == 0:
            items.append(copy.deepcopy(items[0]))  # a duplicate name
        return items
    return value


DOCUMENTS = st.one_of(JSON, st.sampled_from(BASES).flatmap(mutated))


@pytest.mark.django_db
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(doc=DOCUMENTS)
@example(doc={"tenant": {"slug": "a", "name": "A"},  # found by this test: a TypeError, not a path
              "connections": [{"name": "x3", "system": "sage_x3", "url": "http://x3.test", "folder": "SEED",
                               "auth": {"method": []}}]})
@example(doc={"tenant": {"slug": "a", "name": "A"},  # found by this test: loaded on SQLite, refused by PostgreSQL
              "connections": [], "integrations": [], "members": [{"username": "u" * 151, "role": "viewer"}]})
def test_any_document_is_refused_with_paths_or_loaded(doc):
    errors = validate(doc)
    assert isinstance(errors, list) and all(isinstance(e, str) and e.startswith("$") for e in errors)
    with transaction.atomic():
        try:
            load_document(copy.deepcopy(doc))
        except DocumentError as exc:
            assert exc.errors == errors
            event("refused")
        else:
            assert errors == []
            assert not too_long(), "loaded values PostgreSQL would refuse (SQLite ignores max_length)"
            event("loaded")
        transaction.set_rollback(True)


def too_long() -> list[str]:
    """Text longer than its column allows, in what a document creates."""
    found = []
    for model in (Tenant, Connection, Integration, StreamState, Membership, get_user_model()):
        fields = [f for f in model._meta.concrete_fields if isinstance(f, CharField) and f.max_length]
        for row in model.objects.values(*(f.attname for f in fields)):
            found += [f"{model.__name__}.{f.name}" for f in fields if len(str(row[f.attname] or "")) > f.max_length]
    return found
