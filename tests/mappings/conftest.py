"""The console world of tests/admin (two tenants synced through the sandbox, a user per role)."""

from tests.admin.conftest import _sync_tasks, w, world  # noqa: F401  (fixtures shared with the console tests)
