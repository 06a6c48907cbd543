"""The console tests' world (two tenants synced through the sandbox, one user per role), for search."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.admin.conftest import World, build_world, module_world


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> Iterator[World]:
    with module_world(django_db_blocker, build_world) as built:
        yield built


@pytest.fixture
def w(world: World, db) -> World:
    """The module's world, inside this test's savepoint."""
    return world
