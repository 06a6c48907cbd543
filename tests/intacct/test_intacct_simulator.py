"""The Intacct simulator plays the gateway as API_FACTS section 4 describes it."""

from __future__ import annotations

from datetime import datetime

import requests
from lxml import etree

from integrations.sandbox.intacct_seed import COMPANY_ID, SENDER_ID, SENDER_PASSWORD, USER_ID, USER_PASSWORD

from .conftest import GATEWAY


def envelope(content: str, *, auth: str | None = None, unique: str | None = "false", transaction: str = "false",
             dtd: str = "3.0") -> bytes:
    auth = auth or (f"<login><userid>{USER_ID}</userid><companyid>{COMPANY_ID}</companyid>"
                    f"<password>{USER_PASSWORD}</password></login>")
    uniqueid = f"<uniqueid>{unique}</uniqueid>" if unique is not None else ""
    return (f"<request><control><senderid>{SENDER_ID}</senderid><password>{SENDER_PASSWORD}</password>"
            f"<controlid>c-1</controlid>{uniqueid}<dtdversion>{dtd}</dtdversion></control>"
            f"<operation transaction=\"{transaction}\"><authentication>{auth}</authentication>"
            f"<content>{content}</content></operation></request>").encode()


def post(body: bytes) -> tuple[int, etree._Element]:
    response = requests.post(GATEWAY, data=body, headers={"Content-Type": "application/xml"}, timeout=5)
    return response.status_code, etree.fromstring(response.content)


def bill(number: str, vendor: str = "V100", account: str = "60100") -> str:
    return (f"<APBILL><RECORDID>{number}</RECORDID><VENDORID>{vendor}</VENDORID><WHENCREATED>12/01/2025</WHENCREATED>"
            f"<APBILLITEMS><APBILLITEM><ACCOUNTNO>{account}</ACCOUNTNO><TRX_AMOUNT>10.00</TRX_AMOUNT></APBILLITEM>"
            "</APBILLITEMS></APBILL>")


def test_a_response_carries_the_documented_envelope(intacct_sandbox):
    status, root = post(envelope('<function controlid="f1"><readByQuery><object>GLACCOUNT</object>'
                                 "<fields>ACCOUNTNO,TITLE</fields><query></query><pagesize>5</pagesize>"
                                 "</readByQuery></function>"))
    assert status == 200
    control = root.find("control")
    assert [c.tag for c in control] == ["status", "senderid", "controlid", "uniqueid", "dtdversion"]
    auth = root.find("operation/authentication")
    assert auth.findtext("status") == "success"
    stamp, timeout = (datetime.fromisoformat(auth.findtext(t)) for t in ("sessiontimestamp", "sessiontimeout"))
    assert (timeout - stamp).total_seconds() == 3600
    result = root.find("operation/result")
    assert (result.findtext("status"), result.findtext("function"), result.findtext("controlid")) == (
        "success", "readByQuery", "f1")
    data = result.find("data")
    assert {k: data.get(k) for k in ("listtype", "count", "totalcount", "numremaining")} == {
        "listtype": "GLACCOUNT", "count": "5", "totalcount": "13", "numremaining": "8"}
    assert data.get("resultId")
    assert [c.tag for c in data[0]] == ["ACCOUNTNO", "TITLE"]


def test_the_session_timeout_slides_on_each_call(intacct_sandbox, intacct_sim):
    clock = [1_000_000.0]
    intacct_sim.timer = lambda: clock[0]
    _, root = post(envelope('<function controlid="s"><getAPISession/></function>'))
    session = root.findtext("operation/result/data/api/sessionid")
    first = intacct_sim.sessions[session].expires
    clock[0] += 600
    post(envelope('<function controlid="r"><readByQuery><object>GLACCOUNT</object><query></query>'
                  "<pagesize>1</pagesize></readByQuery></function>", auth=f"<sessionid>{session}</sessionid>"))
    assert intacct_sim.sessions[session].expires == first + 600


def test_an_expired_session_fails_authentication_and_runs_no_function(intacct_sandbox, intacct_sim):
    _, root = post(envelope('<function controlid="s"><getAPISession/></function>'))
    session = root.findtext("operation/result/data/api/sessionid")
    intacct_sim.expire_sessions()
    status, root = post(envelope(f'<function controlid="c"><create>{bill("X-1")}</create></function>',
                                 auth=f"<sessionid>{session}</sessionid>"))
    assert status == 200
    assert root.findtext("operation/authentication/status") == "failure"
    assert root.find("operation/errormessage/error/errorno").text == "XL03000006"
    assert root.find("operation/result") is None
    assert not [b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "X-1"]


def test_a_transaction_rolls_back_every_function_when_one_fails(intacct_sandbox, intacct_sim):
    _, root = post(envelope(f'<function controlid="a"><create>{bill("T-1")}</create></function>'
                            f'<function controlid="b"><create>{bill("T-2", vendor="V999")}</create></function>',
                            transaction="true"))
    first, second = root.findall("operation/result")
    assert first.findtext("status") == "aborted"
    assert first.findtext("errormessage/error/errorno") == "XL03000009"
    assert "rolled back" in first.findtext("errormessage/error/description2")
    assert second.findtext("status") == "failure"
    assert not [b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] in ("T-1", "T-2")]


def test_without_a_transaction_only_the_failing_function_fails(intacct_sandbox, intacct_sim):
    _, root = post(envelope(f'<function controlid="a"><create>{bill("N-1")}</create></function>'
                            f'<function controlid="b"><create>{bill("N-2", account="99999")}</create></function>'))
    statuses = [r.findtext("status") for r in root.findall("operation/result")]
    assert statuses == ["success", "failure"]
    assert [b["RECORDID"] for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"].startswith("N-")] == [
        "N-1"]


def test_uniqueid_refuses_a_repeated_controlid_and_defaults_to_false_when_absent(intacct_sandbox, intacct_sim):
    create = f'<function controlid="dup-1"><create>{bill("U-1")}</create></function>'
    post(envelope(create, unique="true"))
    _, root = post(envelope(create, unique="true"))
    assert root.findtext("operation/result/status") == "failure"
    assert root.findtext("operation/result/errormessage/error/description2") == (
        "A successful transaction has already been recorded with the control id dup-1")
    _, root = post(envelope(create, unique=None))
    assert root.findtext("operation/result/status") == "success"
    assert len([b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["RECORDID"] == "U-1"]) == 2


def test_readbyquery_needs_spaces_around_operators(intacct_sandbox):
    _, root = post(envelope('<function controlid="q"><readByQuery><object>GLACCOUNT</object>'
                            "<query>ACCOUNTNO='60100'</query><pagesize>5</pagesize></readByQuery></function>"))
    assert root.findtext("operation/result/status") == "failure"
    assert "spaces are required" in root.findtext("operation/result/errormessage/error/description2")


def test_readbyquery_filters_on_whenmodified_and_in_lists(intacct_sandbox):
    _, root = post(envelope('<function controlid="q"><readByQuery><object>APBILL</object><fields>RECORDNO</fields>'
                            "<query>WHENMODIFIED &gt;= '12/02/2025 08:10:00' AND VENDORID IN ('V100', 'V101')</query>"
                            "<pagesize>100</pagesize></readByQuery></function>"))
    data = root.find("operation/result/data")
    assert 0 < int(data.get("count")) < 36 and data.get("numremaining") == "0"


def test_readmore_with_an_unknown_result_id_fails_that_function(intacct_sandbox):
    _, root = post(envelope('<function controlid="m"><readMore><resultId>nope</resultId></readMore></function>'))
    assert root.findtext("operation/result/status") == "failure"


def test_a_page_size_beyond_1000_is_refused(intacct_sandbox):
    _, root = post(envelope('<function controlid="q"><readByQuery><object>APBILL</object><query></query>'
                            "<pagesize>1001</pagesize></readByQuery></function>"))
    assert root.findtext("operation/result/status") == "failure"


def test_a_request_without_dtdversion_3_is_a_control_failure(intacct_sandbox):
    status, root = post(envelope("", dtd="2.1"))
    assert status == 200 and root.findtext("control/status") == "failure"
    assert root.findtext("errormessage/error/errorno") == "XL03000003"


def test_a_rate_limit_is_http_429_with_gw_0010(intacct_sandbox, intacct_sim):
    intacct_sim.rate_limit_next(1)
    status, root = post(envelope(""))
    assert status == 429 and root.findtext("errormessage/error/errorno") == "GW-0010"


def test_a_paid_bill_cannot_be_updated(intacct_sandbox, intacct_sim):
    paid = next(b for b in intacct_sim.records(COMPANY_ID, "APBILL") if b["STATE"] == "Paid")
    _, root = post(envelope(f'<function controlid="u"><update><APBILL><RECORDNO>{paid["RECORDNO"]}</RECORDNO>'
                            "<DESCRIPTION>x</DESCRIPTION></APBILL></update></function>"))
    assert "is paid and can no longer be edited" in root.findtext("operation/result/errormessage/error/description2")


def test_only_the_gateway_path_answers(intacct_sandbox):
    assert requests.get(GATEWAY, timeout=5).status_code == 405
    assert requests.post(GATEWAY.replace("xmlgw", "other"), data=b"<request/>", timeout=5).status_code == 404


def test_the_simulator_serves_real_http_on_loopback_for_the_demo():
    from integrations.sandbox.intacct import IntacctSimulator
    from integrations.sandbox.server import serve
    from integrations.systems.auth import MemoryTokenStore
    from integrations.systems.intacct import build_client

    from .conftest import intacct_spec

    with serve(IntacctSimulator().seed_demo()) as server:
        spec = intacct_spec()
        spec.url = f"{server.url}/ia/xml/xmlgw.phtml"
        client = build_client(spec, MemoryTokenStore())
        rows = [row for page in client.iter_query("VENDOR", "STATUS = 'active'", ["VENDORID"]) for row in page]
    assert len(rows) == 8
