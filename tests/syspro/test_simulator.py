"""The SYSPRO e.net simulator on its own: sessions, seats, timeout, COMFND, encodings, no writes."""

from __future__ import annotations

import re
from decimal import Decimal

from integrations.sandbox.base import Faults, SimRequest
from integrations.sandbox.syspro import INVALID_SESSION, LICENCE_FULL, SysproSimulator
from integrations.sandbox.syspro_query import Table, parse_xmlin, run
from integrations.sandbox.syspro_seed import OPERATOR, SUPPLIERS, bulk_tables
from tests.syspro.conftest import REST, call, logon


def comfnd(table: str, columns: list[str], where: str = "", order: list[str] | None = None, rows: int | None = None
           ) -> str:
    cols = "".join(f"<Column>{c}</Column>" for c in columns)
    order_by = "".join(f"<Column>{c}</Column>" for c in order or [])
    limit = f"<ReturnRows>{rows}</ReturnRows>" if rows else ""
    return (f"<Query><TableName>{table}</TableName>{limit}<Columns>{cols}</Columns>"
            f"<Where>{where}</Where><OrderBy>{order_by}</OrderBy></Query>")


def expr(column: str, condition: str, value: str, and_or: str = "And", open_: str = "", close: str = "") -> str:
    return (f"<Expression><OpenBracket>{open_}</OpenBracket><AndOr>{and_or}</AndOr><Column>{column}</Column>"
            f"<Condition>{condition}</Condition><Value>{value}</Value><CloseBracket>{close}</CloseBracket></Expression>")


def cells(body: bytes, tag: str) -> list[str]:
    return re.findall(rf"<{tag}>([^<]*)</{tag}>", body.decode("cp1252"))


def test_logon_answers_34_hex_characters_and_two_spaces_and_logoff_answers_0(sim):
    user_id = logon(sim)
    assert re.fullmatch(r"[0-9A-F]{34}  ", user_id)
    answer = call(sim, "Logoff", UserId=user_id)
    assert (answer.status, answer.body, answer.headers["Content-Type"]) == (200, b"0", "application/octet-stream")
    assert (sim.logons, sim.logoffs, sim.open_sessions) == (1, 1, 0)
    assert call(sim, "Logoff", UserId=user_id).body.decode() == INVALID_SESSION


def test_errors_are_http_200_bodies_starting_with_error(sim):
    refused = call(sim, "Logon", Operator="ADMIN", OperatorPassword="wrong", CompanyId="EDU1", CompanyPassword="")
    assert (refused.status, refused.body) == (200, b"ERROR: Invalid operator password")
    assert refused.headers["Content-Type"] == "application/octet-stream"
    assert call(sim, "Query/Query", UserId="nope", BusinessObject="COMFND", XmlIn="<Query/>").body.decode() \
        == INVALID_SESSION
    assert sim.failed_logons == 1 and sim.logons == 0


def test_a_password_with_ampersand_plus_hash_and_spaces_is_decoded_from_the_query_string(sim):
    assert "&" in OPERATOR[1] and "+" in OPERATOR[1] and "#" in OPERATOR[1] and " " in OPERATOR[1]
    sim.seats = 5
    assert not logon(sim).startswith("ERROR")
    # a space may also arrive as '+', as form encoding writes it
    plus = "Adm%21n+%26+Co%2B1+%232"
    answer = sim.handle(SimRequest("GET", f"{REST}/Logon?Operator=ADMIN&OperatorPassword={plus}&CompanyId=EDU1"
                                          "&CompanyPassword=", {}))
    assert not answer.body.startswith(b"ERROR")
    raw_plus = "Adm%21n%20%26%20Co+1%20%232"  # an unescaped '+' is a space: the password is wrong
    answer = sim.handle(SimRequest("GET", f"{REST}/Logon?Operator=ADMIN&OperatorPassword={raw_plus}&CompanyId=EDU1"
                                          "&CompanyPassword=", {}))
    assert answer.body == b"ERROR: Invalid operator password"


def test_one_seat_refuses_a_second_logon_with_a_licence_error(sim):
    first = logon(sim)
    assert logon(sim) == LICENCE_FULL
    call(sim, "Logoff", UserId=first)
    assert not logon(sim).startswith("ERROR")


def test_bump_mode_ends_the_session_idle_longest(sim, clock):
    sim.on_full, sim.bump_after = "bump", 60
    first = logon(sim)
    clock.advance(30)
    assert logon(sim) == LICENCE_FULL  # not idle long enough to be bumped
    clock.advance(31)
    second = logon(sim)
    assert not second.startswith("ERROR") and sim.bumped == 1
    assert call(sim, "Logoff", UserId=first).body.decode() == INVALID_SESSION
    assert call(sim, "Logoff", UserId=second).body == b"0"


def test_sessions_end_after_the_inactivity_timeout_and_calls_keep_them_alive(sim, clock):
    sim.session_timeout = 600
    user_id = logon(sim)
    xml = comfnd("ApSupplier", ["Supplier"], rows=1)
    for _ in range(3):
        clock.advance(500)
        assert b"<Row>" in call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=xml).body
    clock.advance(601)
    assert call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=xml).body.decode() \
        == INVALID_SESSION
    assert sim.expired == 1 and sim.open_sessions == 0


def test_the_user_id_must_come_back_with_its_trailing_spaces_unless_told_otherwise(sim):
    user_id = logon(sim)
    xml = comfnd("ApSupplier", ["Supplier"], rows=1)
    assert call(sim, "Query/Query", UserId=user_id.strip(), BusinessObject="COMFND", XmlIn=xml).body.decode() \
        == INVALID_SESSION
    sim.userid_match = "trimmed"
    assert b"<Row>" in call(sim, "Query/Query", UserId=user_id.strip(), BusinessObject="COMFND", XmlIn=xml).body


def test_comfnd_answers_like_the_recording_with_padded_rows_returned(sim):
    user_id = logon(sim)
    body = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                XmlIn=comfnd("GenMaster", ["GlCode"], order=["GlCode"], rows=1)).body
    text = body.decode("cp1252")
    assert text.startswith('<?xml version="1.0" encoding="Windows-1252"?>\n<GenMaster Language=\'05\'')
    assert "<HeaderDetails><TableName>GenMaster</TableName><Columns><Column>GlCode</Column></Columns>" in text
    assert "<Row><GlCode>20000</GlCode></Row>\n<RowsReturned>       1</RowsReturned>\n</GenMaster>" in text


def test_where_takes_brackets_and_or_with_and_binding_tighter(sim):
    user_id = logon(sim)
    # (PostDate = day AND Invoice > INV-1002) OR PostDate > day, ordered by (PostDate, Supplier, Invoice)
    where = (expr("PostDate", "EQ", "2026-01-05", open_="(") + expr("Invoice", "GT", "INV-1002", close=")")
             + expr("PostDate", "GT", "2026-01-05", and_or="Or", open_="(", close=")"))
    body = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                XmlIn=comfnd("ApInvoice", ["Invoice", "PostDate"], where, ["PostDate", "Invoice"])).body
    invoices = cells(body, "Invoice")
    assert invoices == [f"INV-{n}" for n in range(1003, 1011)]
    # without brackets: PostDate = day AND (Invoice > X) OR PostDate > day reads the same by precedence
    flat = expr("PostDate", "EQ", "2026-01-05") + expr("Invoice", "GT", "INV-1002") + \
        expr("PostDate", "GT", "2026-01-05", and_or="Or")
    body = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                XmlIn=comfnd("ApInvoice", ["Invoice"], flat, ["PostDate", "Invoice"])).body
    assert cells(body, "Invoice") == invoices


def test_return_rows_limits_the_answer_unless_the_install_ignores_it(sim):
    user_id = logon(sim)
    xml = comfnd("ApInvoice", ["Invoice"], order=["Invoice"], rows=4)
    assert cells(call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=xml).body, "Invoice") \
        == ["INV-1001", "INV-1002", "INV-1003", "INV-1004"]
    sim.honour_return_rows = False
    assert len(cells(call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=xml).body,
                     "Invoice")) == 10


def test_eq_only_installs_refuse_other_conditions_with_an_error_text(sim):
    sim.conditions = "eq_only"
    user_id = logon(sim)
    refused = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                   XmlIn=comfnd("ApInvoice", ["Invoice"], expr("PostDate", "GT", "2026-01-05")))
    assert refused.status == 200 and refused.body.decode() == "ERROR: Invalid condition 'GT'"
    allowed = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                   XmlIn=comfnd("ApInvoice", ["Invoice"], expr("PostDate", "EQ", "2026-01-05")))
    assert len(cells(allowed.body, "Invoice")) == 3


def test_unknown_tables_and_columns_are_error_texts_naming_them(sim):
    user_id = logon(sim)
    answer = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=comfnd("ApNothing", ["X"]))
    assert answer.body.decode() == "ERROR: Invalid object name 'ApNothing'"
    answer = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=comfnd("ApSupplier", ["Nope"]))
    assert answer.body.decode() == "ERROR: Invalid column name 'Nope'"
    answer = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn="<Query><TableName>")
    assert answer.body.startswith(b"ERROR:")


def test_answers_are_windows_1252_and_characters_it_lacks_are_references(sim):
    user_id = logon(sim)
    body = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                XmlIn=comfnd("ApSupplier", ["SupplierName"], order=["Supplier"])).body
    assert "Müller Gießerei GmbH".encode("cp1252") in body and b"M\xfcller Gie\xdferei" in body
    assert "Smith &amp; Sons – Hydraulics".encode("cp1252") in body and b"O\x92Brien" in body
    assert b"&#321;\xf3d&#378; Precision Tools" in body  # Ł and ź are not in Windows-1252
    sim.encoding = "utf-8"
    body = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                XmlIn=comfnd("ApSupplier", ["SupplierName"], order=["Supplier"])).body
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert "Łódź Precision Tools".encode() in body and "Müller".encode() in body


def test_element_names_can_come_back_lower_case(sim):
    sim.element_case = "lower"
    user_id = logon(sim)
    body = call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND",
                XmlIn=comfnd("ApSupplier", ["Supplier", "SupplierName"], order=["Supplier"], rows=1)).body.decode("cp1252")
    assert "<apsupplier " in body and "<row><supplier>CON001</supplier><suppliername>" in body
    assert "<rowsreturned>       1</rowsreturned>" in body and "<Row>" not in body


def test_transaction_setup_and_non_get_calls_are_refused_and_recorded(sim):
    user_id = logon(sim)
    for operation in ("Transaction/Post", "Transaction/Build", "Setup/Add", "Setup/Update", "Setup/Delete"):
        answer = call(sim, operation, UserId=user_id, BusinessObject="APSTIN", XmlIn="<x/>")
        assert answer.status == 200 and answer.body.startswith(b"ERROR:")
    posted = sim.handle(SimRequest("POST", f"{REST}/Query/Query", {}, b"<x/>"))
    assert posted.status == 405
    assert len(sim.writes) == 6
    assert len(sim.table("ApInvoice").rows) == 10


def test_transport_faults_are_a_503_page(sim):
    sim.set_faults(Faults(error_rate=1.0))
    answer = call(sim, "Logon", Operator="ADMIN", OperatorPassword=OPERATOR[1], CompanyId="EDU1", CompanyPassword="")
    assert answer.status == 503 and b"Service Unavailable" in answer.body


def test_demo_journals_balance_and_lines_add_up_to_their_invoice(sim):
    invoices = sim.table("ApInvoice").as_dicts()
    lines = sim.table("ApInvoiceDistr").as_dicts()
    postings = sim.table("GenJournalDetail").as_dicts()
    for invoice in invoices:
        key = (invoice["Supplier"], invoice["Invoice"])
        own = [Decimal(x["DistrValue"]) for x in lines if (x["Supplier"], x["Invoice"]) == key]
        assert 1 <= len(own) <= 4 and sum(own) == Decimal(invoice["OrigInvValue"])
        entries = [p for p in postings if (p["Supplier"], p["Invoice"]) == key]
        debit = sum(Decimal(p["EntryValue"]) for p in entries if p["EntryType"] == "D")
        credit = sum(Decimal(p["EntryValue"]) for p in entries if p["EntryType"] == "C")
        assert debit == credit == Decimal(invoice["OrigInvValue"])
    assert {s["SupplierName"] for s in sim.table("ApSupplier").as_dicts()} == {name for _, name, _ in SUPPLIERS}


def test_bulk_tables_seek_a_page_without_scanning_the_whole_table():
    tables = bulk_tables(5000, 3, suppliers=7, per_day=100)
    invoices: Table = tables["ApInvoice"]
    assert len(invoices.rows) == 5000 and len(tables["ApInvoiceDistr"].rows) == 15000
    where = (expr("PostDate", "EQ", "2026-01-10", open_="(") + expr("Supplier", "GT", "B00003", close=")")
             + expr("PostDate", "GT", "2026-01-10", and_or="Or", open_="(", close=")"))
    query = parse_xmlin(comfnd("ApInvoice", ["Supplier", "Invoice", "PostDate"], where,
                               ["PostDate", "Supplier", "Invoice"], rows=50))
    names, rows = run(invoices, query, frozenset({"EQ", "GT"}))
    assert len(rows) == 50 and rows[0][2] == "2026-01-10" and rows[0][0] > "B00003"
    order = (invoices.index("PostDate"), invoices.index("Supplier"), invoices.index("Invoice"))
    version, firsts, index = invoices._indexes[order]
    reads = 0

    class Counting(list):
        def __getitem__(self, position):
            nonlocal reads
            reads += 1
            return super().__getitem__(position)

    invoices._indexes[order] = (version, firsts, Counting(index))
    assert run(invoices, query, frozenset({"EQ", "GT"}))[1] == rows
    assert reads < 200  # the walk starts at the bound and stops at ReturnRows


def test_a_table_edited_after_a_query_is_sorted_again(sim):
    user_id = logon(sim)
    xml = comfnd("ApSupplier", ["Supplier"], order=["Supplier"])
    before = cells(call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=xml).body, "Supplier")
    sim.table("ApSupplier").insert({"Supplier": "AAA001", "SupplierName": "First"})
    after = cells(call(sim, "Query/Query", UserId=user_id, BusinessObject="COMFND", XmlIn=xml).body, "Supplier")
    assert after == ["AAA001", *before]
    sim.table("ApSupplier").update(["AAA001"], {"SupplierName": "Renamed"})
    assert "Renamed" in sim.table("ApSupplier").as_dicts()[-1]["SupplierName"]


def test_the_simulator_is_served_by_name():
    from integrations.sandbox.server import DEFAULT_PORTS, build_simulator

    sim = build_simulator("syspro")
    assert isinstance(sim, SysproSimulator) and DEFAULT_PORTS["syspro"] == 8130
    assert sim.table("ApInvoice").rows
