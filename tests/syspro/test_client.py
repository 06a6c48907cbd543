"""The SYSPRO client against the simulator: session lifecycle, secrets, COMFND paging, encodings."""

from __future__ import annotations

import inspect
import json
import logging
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from integrations.sandbox.base import Faults, SimRequest, SimResponse
from integrations.sandbox.inprocess import mount
from integrations.sandbox.syspro import OCTET, SysproSimulator
from integrations.sandbox.syspro_seed import OPERATOR
from integrations.systems import syspro
from integrations.systems.auth import MemoryTokenStore
from integrations.systems.errors import AuthError, SessionExpired, SyncError, SystemicError, TransientError
from integrations.systems.schema import ConnectionFields
from tests.syspro.conftest import REST, URL, fixture_bytes, logon, make_client

NAMES = {"Müller Gießerei GmbH", "O’Brien Fasteners Ltd", "Smith & Sons – Hydraulics", "Łódź Precision Tools"}


def sent(sim: SysproSimulator, operation: str) -> list[SimRequest]:
    return [r for r in sim.requests if urlsplit(r.url).path.endswith(operation)]


def supplier_names(client: syspro.SysproClient) -> set[str]:
    return {row["SupplierName"] for page in client.read_changed("supplier") for row in page}


# --- the session ----------------------------------------------------------------------------------
def test_the_user_id_goes_back_verbatim_with_its_trailing_spaces(mounted):
    client = make_client()
    client.query("ApSupplier", ["Supplier"], rows=1)
    user_id = client.session.user_id
    assert user_id is not None and user_id.endswith("  ") and len(user_id) == 36
    query = sent(mounted, "Query/Query")[0]
    assert urlsplit(query.url).query.startswith(f"UserId={user_id.strip()}%20%20&")
    client.close()
    assert sent(mounted, "Logoff")[0].param("UserId") == user_id


def test_passwords_with_ampersand_plus_hash_and_spaces_are_encoded(mounted):
    mounted.add_company("EDU2", "c&o +#1")
    spec_password = OPERATOR[1]
    client = make_client(company_password="c&o +#1")
    client.session.company = "EDU2"
    client.session._credentials["CompanyId"] = "EDU2"
    client.logon()
    logon_request = sent(mounted, "Logon")[0]
    assert logon_request.param("OperatorPassword") == spec_password
    assert logon_request.param("CompanyPassword") == "c&o +#1"
    assert "+" not in urlsplit(logon_request.url).query  # a space is %20, a plus %2B
    client.close()


def test_one_session_serves_many_calls_and_close_logs_off_once(mounted):
    client = make_client(page_size=2)
    assert not client.logged_on
    assert len(supplier_names(client)) == 6
    list(client.read_changed("invoice"))
    assert client.logged_on and mounted.logons == 1
    client.close()
    client.close()  # idempotent
    assert not client.logged_on
    assert (mounted.logons, mounted.logoffs, mounted.open_sessions) == (1, 1, 0)


def test_a_timed_out_session_is_logged_on_again_once_and_the_call_retried_once(mounted, clock):
    events: list = []
    client = make_client(events=events)
    client.query("ApSupplier", ["Supplier"], rows=1)
    clock.advance(mounted.session_timeout + 1)
    rows = client.query("ApSupplier", ["Supplier"], rows=1)
    assert rows == [{"Supplier": "CON001"}]
    assert (mounted.logons, mounted.expired, client.session.relogons) == (2, 1, 1)
    assert [a for a, _ in events] == ["connection.reauthenticated"]
    assert len(sent(mounted, "Query/Query")) == 3  # the first, the refused one, its retry
    client.close()
    assert mounted.open_sessions == 0 and mounted.logoffs == 1


def test_a_second_expiry_in_a_row_fails_clearly_without_retrying_further(mounted):
    mounted.session_timeout = -1  # SYSPRO ends every session before its first call
    client = make_client()
    with pytest.raises(SystemicError, match="ended the session again right after a new logon") as caught:
        client.query("ApSupplier", ["Supplier"])
    assert caught.value.code == "session_lost"
    assert mounted.logons == 2 and len(sent(mounted, "Query/Query")) == 2
    client.close()  # nothing left to log off, and no error
    assert mounted.open_sessions == 0


def test_a_full_licence_is_transient_and_says_the_seats_are_in_use(mounted):
    other = logon(mounted)  # someone else holds the only seat
    client = make_client()
    with pytest.raises(TransientError, match="no free e.net licence seat: every seat is in use") as caught:
        client.query("ApSupplier", ["Supplier"])
    assert not isinstance(caught.value, SystemicError) and caught.value.code == "licence_full"
    assert len(client.http.counter.sleeps) == client.http.policy.max_retries  # retried with backoff
    client.close()
    assert mounted.sessions == {other: mounted.sessions[other]}  # the other session was left alone


def test_close_logs_off_after_a_failure(mounted):
    client = make_client()
    try:
        with pytest.raises(SystemicError, match="ApNothing"):
            client.query("ApNothing", ["X"])
    finally:
        client.close()
    assert mounted.open_sessions == 0 and mounted.logoffs == mounted.logons == 1


def test_logoff_of_a_session_syspro_already_ended_is_quiet(mounted):
    events: list = []
    client = make_client(events=events)
    client.logon()
    mounted.expire_sessions()
    client.close()
    assert mounted.logoffs == 0 and len(sent(mounted, "Logoff")) == 1 and mounted.logons == 1
    assert events == []


def test_a_session_left_by_a_killed_run_is_logged_off_by_the_next(mounted):
    mounted.seats = 2
    store = MemoryTokenStore()
    killed = make_client(store=store)
    killed.logon()  # ... and the process dies without close()
    assert store.token is not None and mounted.open_sessions == 1
    events: list = []
    nxt = make_client(store=store, events=events)
    assert nxt.release_leftover() is True
    assert mounted.open_sessions == 0 and store.token is None
    assert [a for a, _ in events] == ["connection.leftover_logged_off"]
    nxt.logon()
    nxt.close()
    assert store.token is None and nxt.release_leftover() is False


def test_wrong_credentials_are_an_auth_error_naming_no_secret(mounted):
    client = make_client(password="Wr0ng & p+ss#")
    with pytest.raises(AuthError, match="refused the logon of operator ADMIN") as caught:
        client.query("ApSupplier", ["Supplier"])
    text = f"{caught.value} {caught.value.detail}"
    assert "Invalid operator password" in text and "Wr0ng" not in text and "p%2Bss" not in text
    client.close()
    assert mounted.sessions == {}


# --- secrets --------------------------------------------------------------------------------------
def test_neither_user_id_nor_passwords_reach_errors_events_or_logs(mounted, caplog):
    caplog.set_level(logging.DEBUG)
    events: list = []
    client = make_client(events=events)
    client.logon()
    user_id = client.session.user_id
    secrets = [user_id.strip(), OPERATOR[1], "Adm%21n%20%26%20Co%2B1%20%232", "Adm%21n+%26+Co%2B1+%232"]

    def dead(prepared: requests.PreparedRequest):  # what requests says when the server is gone
        raise requests.exceptions.ConnectionError(
            f"HTTPConnectionPool(host='syspro.acme.test', port=20000): Max retries exceeded with url: "
            f"{prepared.path_url} (Caused by NewConnectionError('Connection refused'))")

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback("GET", f"{REST}/Query/Query", callback=dead)
        with pytest.raises(TransientError) as caught:
            client.query("ApSupplier", ["Supplier"])
    mounted.set_faults(Faults(error_rate=1.0))
    with pytest.raises(TransientError) as unavailable:
        client.query("ApSupplier", ["Supplier"])
    mounted.set_faults(Faults())
    mounted.expire_sessions()
    client.query("ApSupplier", ["Supplier"])  # re-logon: a new UserId
    secrets.append(client.session.user_id.strip())
    mounted.expire_sessions()
    mounted.session_timeout = -1
    with pytest.raises(SystemicError) as lost:
        client.query("ApSupplier", ["Supplier"])
    client.close()
    assert "UserId=********" in str(caught.value)
    exposed = " ".join([str(caught.value), caught.value.detail, str(unavailable.value), str(lost.value),
                        json.dumps(events, default=str), caplog.text])
    assert events and any(a == "http.backoff" for a, _ in events)
    for secret in secrets:
        assert secret not in exposed


# --- COMFND reads ---------------------------------------------------------------------------------
@pytest.mark.parametrize("page_size", [1, 2, 7])
def test_paging_over_many_rows_sharing_one_date_returns_each_row_once_in_order(mounted, page_size):
    table = mounted.table("ApInvoice")
    for n in range(23):  # 23 invoices of three suppliers on one posting day, keys out of insert order
        supplier = ("MUL001", "CON001", "SMI001")[n % 3]
        table.insert({"Supplier": supplier, "Invoice": f"T-{(n * 7) % 23:03d}", "PostDate": "2026-01-07",
                      "InvoiceDate": "2026-01-06", "OrigInvValue": "1.00", "MthInvBal1": "1.00"})
    client = make_client(page_size=page_size)
    pages = list(client.iter_changed("ApInvoice", "PostDate", ["Supplier", "Invoice"], "2026-01-07",
                                     columns=["OrigInvValue"]))
    rows = [row for page in pages for row in page]
    keys = [(r["PostDate"], r["Supplier"], r["Invoice"]) for r in rows]
    expected = sorted((d["PostDate"], d["Supplier"], d["Invoice"]) for d in table.as_dicts()
                      if d["PostDate"] >= "2026-01-07")
    assert keys == expected and len(set(keys)) == len(keys) == 23 + 7
    assert all(len(page) <= page_size for page in pages)
    # resuming strictly after a row in the middle of the tied day
    middle = rows[11]
    after = [(r["PostDate"], r["Supplier"], r["Invoice"]) for page in client.iter_changed(
        "ApInvoice", "PostDate", ["Supplier", "Invoice"], middle["PostDate"],
        syspro.cursor_key(middle, ["Supplier", "Invoice"])) for r in page]
    assert after == expected[12:]
    client.close()


def test_a_server_that_ignores_return_rows_is_read_once_without_looping(mounted):
    mounted.honour_return_rows = False
    client = make_client(page_size=3)
    rows = [r for page in client.read_changed("invoice") for r in page]
    assert len(rows) == 10 and len({(r["Supplier"], r["Invoice"]) for r in rows}) == 10
    assert len(sent(mounted, "Query/Query")) == 2  # all rows, then the seek after the last finds none
    client.close()


def test_logical_reads_give_decimals_and_dates_under_the_default_names(mounted):
    client = make_client(columns={"invoice": {"Reference": ""}})
    rows = [r for page in client.read_changed("invoice", "2026-01-09") for r in page]
    assert {r["PostDate"] for r in rows} == {"2026-01-09", "2026-01-11"}
    assert all(isinstance(r["OrigInvValue"], Decimal) for r in rows) and rows[0]["Reference"] == ""
    lines = [r for page in client.read_for("invoice_line", ["Supplier", "Invoice"],
                                            [[r["Supplier"], r["Invoice"]] for r in rows]) for r in page]
    for invoice in rows:
        own = [x["DistrValue"] for x in lines if (x["Supplier"], x["Invoice"]) == (invoice["Supplier"],
                                                                                     invoice["Invoice"])]
        assert own and sum(own) == invoice["OrigInvValue"]
    client.close()


def test_lines_of_many_parents_are_split_until_each_page_is_complete(mounted):
    client = make_client(page_size=2, parents_per_query=4)
    parents = [[d["Supplier"], d["Invoice"]] for d in mounted.table("ApInvoice").as_dicts()]
    lines = [(r["Supplier"], r["Invoice"], r["DistrLine"])
             for page in client.read_for("invoice_line", ["Supplier", "Invoice"], parents) for r in page]
    expected = [(d["Supplier"], d["Invoice"], d["DistrLine"]) for d in mounted.table("ApInvoiceDistr").as_dicts()]
    assert sorted(lines) == sorted(expected) and len(set(lines)) == len(lines)
    po_lines = [r for page in client.read_for("po_line", ["PurchaseOrder"], [["000101"], ["000102"]]) for r in page]
    assert len(po_lines) == 4 and isinstance(po_lines[0]["MPrice"], Decimal)
    client.close()


def test_a_long_query_is_split_to_fit_the_web_servers_limit(mounted):
    client = make_client(parents_per_query=50, max_url_chars=3000)
    parents = [[d["Supplier"], d["Invoice"]] for d in mounted.table("ApInvoice").as_dicts()]
    lines = [r for page in client.read_for("invoice_line", ["Supplier", "Invoice"], parents) for r in page]
    assert len(lines) == len(mounted.table("ApInvoiceDistr").rows)
    assert max(len(r.url) for r in sent(mounted, "Query/Query")) <= 3000
    client.close()


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8"])
def test_names_arrive_intact_whatever_the_declared_encoding(mounted, encoding):
    mounted.encoding = encoding
    client = make_client()
    assert supplier_names(client) >= NAMES
    client.close()


def test_lower_case_element_names_are_read_alike(mounted):
    mounted.element_case = "lower"
    client = make_client(page_size=4)
    assert supplier_names(client) >= NAMES
    assert len([r for p in client.read_changed("invoice") for r in p]) == 10
    client.close()


def test_an_install_that_takes_only_eq_is_named_and_read_day_by_day(mounted):
    mounted.conditions = "eq_only"
    client = make_client()
    with pytest.raises(SystemicError, match="seek_mode to 'by_day'"):
        list(client.read_changed("invoice", "2026-01-05"))
    client.close()
    by_day = make_client(seek_mode="by_day")
    by_day.today = lambda: date(2026, 1, 12)
    rows = [(r["PostDate"], r["Supplier"], r["Invoice"]) for p in by_day.read_changed("invoice", "2026-01-07")
            for r in p]
    assert rows == sorted(rows) and len(rows) == 7
    assert [r["Supplier"] for p in by_day.read_changed("supplier") for r in p]  # no date: one answer
    by_day.max_day_rows = 3
    with pytest.raises(SystemicError, match="on 2026-01-07"):
        list(by_day.read_changed("invoice", "2026-01-07"))
    by_day.close()
    assert mounted.open_sessions == 0


@pytest.mark.parametrize("body", [
    b"<html><head><title>Maintenance</title></head><body>Back soon</body></html>",
    b"\x00\xff\xfe garbage",
    b"",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><ApSupplier>&e;</ApSupplier>',
])
def test_a_query_answer_that_is_not_comfnd_xml_is_a_classified_error(mounted, body):
    class Broken(SysproSimulator):
        def _query(self, request, session):
            return SimResponse(200, body, dict(OCTET))

    sim = Broken().seed_demo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, "http://broken.test", rsps)
        client = make_client("http://broken.test")
        with pytest.raises(SyncError) as caught:
            client.query("ApSupplier", ["Supplier"])
        client.close()
    assert isinstance(caught.value, TransientError)
    assert sim.open_sessions == 0


def test_an_answer_cut_short_is_noticed(mounted):
    class Short(SysproSimulator):
        def _query(self, request, session):
            answer = super()._query(request, session)
            answer.body = answer.body.replace(b"       6</RowsReturned>", b"       7</RowsReturned>")
            return answer

    sim = Short().seed_demo()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mount(sim, "http://short.test", rsps)
        client = make_client("http://short.test")
        with pytest.raises(TransientError, match="cut short"):
            client.query("ApSupplier", ["Supplier"])
        client.close()


def test_iis_503_is_transient_and_retried(mounted):
    mounted.set_faults(Faults(error_rate=0.5, seed=3))
    client = make_client()
    assert len(supplier_names(client)) == 6
    client.close()
    assert mounted.open_sessions == 0


# --- the connection test --------------------------------------------------------------------------
def test_check_reads_every_table_and_logs_off(mounted):
    client = make_client()
    lines = client.check()
    assert all(line["ok"] for line in lines), lines
    assert lines[0]["check"] == "logon" and {line["check"] for line in lines} >= {
        "table:ApSupplier", "table:ApInvoice", "table:ApInvoiceDistr", "table:GenJournalDetail", "conditions"}
    assert mounted.open_sessions == 0 and mounted.logoffs == mounted.logons == 1


def test_check_names_the_missing_table_and_column(mounted):
    client = make_client(tables={"gl_posting": "GenJnlDetail"}, columns={"invoice": {"PostDate": "JnlDate"}})
    failed = [line["message"] for line in client.check() if not line["ok"]]
    assert any("GenJnlDetail" in m and "gl_posting" in m for m in failed)
    assert any("ApInvoice" in m and "JnlDate" in m for m in failed)
    assert mounted.open_sessions == 0
    refused = make_client(password="nope").check()
    assert refused == [{"check": "logon", "ok": False, "message": refused[0]["message"]}]
    assert "refused the logon" in refused[0]["message"] and "nope" not in refused[0]["message"]


# --- recorded answers ---------------------------------------------------------------------------------
def test_recorded_logon_query_and_logoff_answers_are_understood():
    with responses.RequestsMock() as rsps:
        rsps.add("GET", f"{REST}/Logon", body=fixture_bytes("logon.txt"), content_type="application/octet-stream")
        rsps.add("GET", f"{REST}/Query/Query", body=fixture_bytes("comfnd_invmaster.xml"),
                 content_type="application/octet-stream")
        rsps.add("GET", f"{REST}/Logoff", body=fixture_bytes("logoff.txt"), content_type="application/octet-stream")
        client = make_client()
        assert client.query("InvMaster", ["StockCode"], order_by=["StockCode"]) == [{"StockCode": "02"}]
        assert client.session.user_id == "3EA613166FE4BF47925DF1CEA14E910100  "
        client.close()
        query = parse_qs(urlsplit(rsps.calls[1].request.url).query)
        assert query["UserId"] == ["3EA613166FE4BF47925DF1CEA14E910100  "]
        assert urlsplit(rsps.calls[2].request.url).query == "UserId=3EA613166FE4BF47925DF1CEA14E910100%20%20"
    assert client.session.logoffs == 1 and not client.logged_on


def test_recorded_error_answers_are_classified():
    with responses.RequestsMock() as rsps:
        rsps.add("GET", f"{REST}/Logon", body=fixture_bytes("logon_error.txt"))
        with pytest.raises(AuthError, match="Invalid operator password"):
            make_client().logon()
    with responses.RequestsMock() as rsps:
        rsps.add("GET", f"{REST}/Logon", body=fixture_bytes("logon.txt"))
        rsps.add("GET", f"{REST}/Query/Query", body=fixture_bytes("invalid_session.txt"))
        rsps.add("GET", f"{REST}/Logon", body=fixture_bytes("logon.txt"))
        rsps.add("GET", f"{REST}/Query/Query", body=fixture_bytes("comfnd_invmaster.xml"))
        rsps.add("GET", f"{REST}/Logoff", body=fixture_bytes("invalid_session.txt"))
        client = make_client()
        assert client.query("InvMaster", ["stockcode"]) == [{"stockcode": "02"}]
        assert client.session.relogons == 1
        client.close()  # SYSPRO had ended it: quiet
    assert SessionExpired.__mro__[1] is TransientError


# --- shape -----------------------------------------------------------------------------------------------
def test_the_client_never_calls_a_write_class(mounted):
    source = inspect.getsource(syspro)
    assert "Transaction" not in source.replace("no method here calls a Transaction", "")
    assert "/Setup" not in source and "Setup/" not in source
    client = make_client()
    client.check()
    list(client.read_changed("invoice"))
    client.close()
    assert mounted.writes == []
    assert {r.method for r in mounted.requests} == {"GET"}


def test_the_url_may_be_the_server_or_the_rest_root():
    for url in (URL, f"{URL}/", f"{URL}/SYSPROWCFService", f"{URL}/SYSPROWCFService/Rest/"):
        assert syspro.rest_base(url) == REST
    problems = syspro.SCHEMA.problems(ConnectionFields(url=f"{URL}/elsewhere", company="EDU1",
                                                       auth_method=syspro.AUTH_METHOD))
    assert "url" in problems
    problems = syspro.SCHEMA.problems(ConnectionFields(url=URL, company="EDU1", auth_method=syspro.AUTH_METHOD,
                                                       settings={"tables": {"invoices": "X"}}))
    assert any("invoices" in p for p in problems["settings"])


def test_the_timeout_and_page_size_are_per_connection():
    client = make_client(timeout=120, page_size=50)
    assert client.http.policy.timeout == 120 and client.page_size == 50
    assert make_client().http.policy.timeout == 60
