"""The console tests' world (tests/admin/conftest.py): Acme with one user per role, Globex, a stranger."""

import pytest
from django.core.cache import cache

from tests.admin.conftest import _sync_tasks, w, world  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Tenant names are cached for the header; a test's renamed tenant is rolled back, its cached name is not."""
    cache.clear()
    yield
    cache.clear()
