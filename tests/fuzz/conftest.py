"""The console fuzz runs in the security tests' world: two tenants, planted secrets and markup."""

from tests.security.conftest import sw, sworld  # noqa: F401  (fixtures)
