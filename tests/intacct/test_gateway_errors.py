"""Every response is read, whatever its HTTP status: a 200 carrying <errormessage> is a failure."""

from __future__ import annotations

import pytest

from integrations.sandbox.base import Faults
from integrations.systems.errors import AuthError, DataError, SystemicError, TransientError
from integrations.systems.intacct_envelope import (
    IntacctErrorItem,
    classify,
    fn_read_by_query,
    parse_response,
)


def test_a_function_error_in_a_200_response_is_a_data_error_with_all_four_fields(make_client, intacct_sim):
    intacct_sim.inject_error("function", "BL03000018", description="Could not read Bill",
                             description2="Object APBILL is locked for the period.",
                             correction="Unlock the period.", function="readByQuery")
    client = make_client()
    with pytest.raises(DataError) as caught:
        client.call(fn_read_by_query("APBILL", "", ["RECORDNO"], 10))
    error = caught.value
    assert error.status is None  # the HTTP status was 200: only the body told us
    assert error.code == "BL03000018"
    assert error.intacct_errors == (IntacctErrorItem("BL03000018", "Could not read Bill",
                                                     "Object APBILL is locked for the period.", "Unlock the period."),)
    assert "Object APBILL is locked for the period." in str(error)
    assert "Unlock the period." in str(error)


def test_a_control_level_error_fails_the_whole_request(make_client, intacct_sim):
    client = make_client()
    client.tokens.token()  # sign in first, so the injected failure meets the data request
    intacct_sim.inject_error("control", "XL03000003", description2="XML Parse schema error: Fatal Error 76")
    with pytest.raises(DataError, match="XL03000003.*XML Parse schema error"):
        client.call(fn_read_by_query("APBILL", "", ["RECORDNO"], 10))
    assert not any(name == "readByQuery" for name, _, _ in intacct_sim.function_log)


def test_a_wrong_sender_password_is_refused_at_control_level_as_an_auth_error(make_client, intacct_sim):
    intacct_sim.add_sender("mlconnector", "rotated-elsewhere")
    with pytest.raises(AuthError, match="Incorrect Intacct XML Partner ID or password"):
        make_client().call(fn_read_by_query("APBILL", "", ["RECORDNO"], 1))


def test_a_sender_not_authorised_for_the_company_names_the_correction(make_client, intacct_sim):
    intacct_sim.company("acme-demo").senders.clear()
    with pytest.raises(AuthError) as caught:
        make_client().call(fn_read_by_query("APBILL", "", ["RECORDNO"], 1))
    assert "is not authorized to make Web Services requests" in str(caught.value)
    assert "grant Web Services authorization" in caught.value.detail


def test_a_wrong_user_password_fails_authentication_in_a_200_response(make_client, intacct_sim):
    intacct_sim.add_user("acme-demo", "xml_gateway", "changed")
    with pytest.raises(AuthError, match="Sign-in information is incorrect"):
        make_client().tokens.token()


def test_a_permission_error_of_one_function_is_systemic(make_client, intacct_sim):
    intacct_sim.inject_error("function", "BL01001973", description2="You do not have permission for API "
                             "operation READ_BY_QUERY on objects of type APBILL", function="readByQuery")
    with pytest.raises(SystemicError, match="permission"):
        make_client().call(fn_read_by_query("APBILL", "", ["RECORDNO"], 1))


def test_a_rate_limited_request_gw_0010_is_retried(make_client, intacct_sim):
    client = make_client()
    client.tokens.token()
    intacct_sim.rate_limit_next(2)  # HTTP 429 with a control-level GW-0010, twice
    result = client.call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 5))
    assert len(result.records()) == 5
    assert len(client.http.counter.sleeps) == 2


def test_a_rate_limit_answered_with_http_200_is_retried_with_backoff_even_for_a_write(make_client, intacct_sim):
    """GW-0010 inside an HTTP 200 answer: nothing ran, so the request is sent again after a pause."""
    from integrations.sandbox.intacct_seed import COMPANY_ID
    from integrations.systems.intacct_envelope import Function
    from integrations.systems.intacct_xml import element

    client = make_client()
    client.tokens.token()
    intacct_sim.inject_error("control", "GW-0010", description2="Rate limit exceeded", times=2)
    create = Function("create", element("create", element("VENDOR", {"VENDORID": "V9990", "NAME": "Rate limited"})),
                      "create-9990")
    result = client.execute([create])[0]  # not sent with uniqueid: only "nothing ran" makes a resend safe
    assert result.status == "success", result
    assert len(client.http.counter.sleeps) == 2, "waited before each resend, like a 429"
    assert [v["VENDORID"] for v in intacct_sim.records(COMPANY_ID, "VENDOR")].count("V9990") == 1


def test_a_rate_limit_that_outlasts_the_retries_is_transient(make_client, intacct_sim):
    client = make_client()
    client.tokens.token()
    intacct_sim.rate_limit_next(50)
    with pytest.raises(TransientError, match="GW-0010"):
        client.call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 5))


def test_a_5xx_without_xml_is_transient_and_retried(make_client, intacct_sim):
    client = make_client()
    client.tokens.token()
    intacct_sim.set_faults(Faults(error_rate=1.0))
    calls_before = client.http.counter.calls
    with pytest.raises(TransientError, match="HTTP 503"):
        client.call(fn_read_by_query("GLACCOUNT", "", ["ACCOUNTNO"], 5))
    assert client.http.counter.calls - calls_before == 5  # the first try and four retries


def test_a_body_that_is_not_xml_is_transient_and_flagged_ambiguous():
    with pytest.raises(TransientError) as caught:
        parse_response(b"<html><body>Proxy timeout")
    assert caught.value.ambiguous


def test_errors_are_found_at_every_level_of_a_response():
    body = b"""<response><control><status>success</status></control><operation>
      <authentication><status>success</status></authentication>
      <result><status>failure</status><function>create</function><controlid>f1</controlid>
        <errormessage><error><errorno>BL01001973</errorno><description>Could not create Bill record!</description>
        <description2>Vendor 'V999' does not exist.</description2><correction>Use an existing vendor ID.</correction>
        </error></errormessage></result>
      <result><status>aborted</status><function>create</function><controlid>f2</controlid>
        <errormessage><error><errorno>XL03000009</errorno><description2>The entire transaction in this operation
        has been rolled back due to an error.</description2></error></errormessage></result>
    </operation></response>"""
    parsed = parse_response(body)
    first, second = parsed.results
    assert isinstance(first.error, DataError) and "Vendor 'V999' does not exist." in str(first.error)
    assert isinstance(second.error, TransientError)  # rolled back because of the other one: retry it


def test_in_a_rolled_back_transaction_the_failing_function_is_a_data_error_not_retried():
    """Recorded shape [C: intacct-sdk-php fixtures]: the function that failed carries its own error
    and XL03000009; those rolled back with it carry only XL03000009."""
    body = b"""<response><control><status>success</status></control><operation>
      <authentication><status>success</status></authentication>
      <result><status>failure</status><function>create</function><controlid>f1</controlid>
        <errormessage><error><errorno>BL34000061</errorno><description2>Vendor 'V999' does not exist.</description2>
        </error><error><errorno>XL03000009</errorno><description2>The entire transaction in this operation has been
        rolled back due to an error.</description2></error></errormessage></result>
      <result><status>failure</status><function>create</function><controlid>f2</controlid>
        <errormessage><error><errorno>XL03000009</errorno><description2>The entire transaction in this operation
        has been rolled back due to an error.</description2></error></errormessage></result>
    </operation></response>"""
    failed, rolled_back = parse_response(body).results
    assert isinstance(failed.error, DataError) and "Vendor 'V999' does not exist." in str(failed.error)
    assert isinstance(rolled_back.error, TransientError)


def test_gw_0011_with_http_400_while_signing_in_is_a_credentials_problem():
    import requests

    response = requests.Response()
    response.status_code = 400
    response._content = (b"<response><control><status>failure</status></control><errormessage><error>"
                         b"<errorno>GW-0011</errorno><description2>Sign-in information is incorrect</description2>"
                         b"</error></errormessage></response>")
    error = classify(response)
    assert isinstance(error, AuthError) and error.kind == "systemic" and "GW-0011" in str(error)
