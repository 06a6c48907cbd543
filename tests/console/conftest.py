"""The console tests use the admin tests' world: two tenants synced through the sandbox, a user per role."""

from tests.admin.conftest import _sync_tasks, w, world  # noqa: F401  (fixtures)
