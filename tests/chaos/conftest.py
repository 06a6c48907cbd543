"""The chaos tests reuse the in-process Intacct ↔ ServiceNow fixtures for their regression tests."""

from tests.intacct.conftest import (  # noqa: F401 - fixtures
    intacct_doc,
    intacct_integration,
    intacct_sandbox,
    intacct_sim,
    staged,
)
