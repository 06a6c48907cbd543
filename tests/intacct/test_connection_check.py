"""'Test connection' on an Intacct connection: sign-in and the objects the integration reads."""

from __future__ import annotations

from integrations.engine import checks


def test_a_working_connection_reports_sign_in_and_each_object(intacct_integration):
    report = checks.test_connection(intacct_integration.source)
    assert report["ok"], report["failed"]
    assert [line["check"] for line in report["checks"]] == [
        "credentials", "object:GLACCOUNT", "object:DEPARTMENT", "object:VENDOR", "object:APBILL"]
    assert "acme-demo" in report["checks"][0]["message"]


def test_refused_credentials_are_reported_plainly(intacct_integration, intacct_sim):
    intacct_sim.add_user("acme-demo", "xml_gateway", "rotated")
    report = checks.test_connection(intacct_integration.source)
    assert not report["ok"]
    assert "Sign-in information is incorrect" in report["failed"][0]
    assert "rotated" not in str(report) and "intacct-user-pass" not in str(report)
