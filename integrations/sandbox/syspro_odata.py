"""SYSPRO's OData feed as the simulator plays it, over the same tables as COMFND.

``GET /odata/<company>/<EntitySet>?$filter=…&$select=…&$orderby=…&$skip=…&$top=…&$count=true``,
Basic auth with an operator and its password (API_FACTS 5.3 [D]: OData 4.0, Basic auth, read
only). Entity sets are the tables' names; JSON answers ``{"@odata.context", "value": [...]}``
with amounts as JSON numbers written as stored (``12.50``), dates as ``Edm.Date`` text
(``"2026-01-05"``) or, with ``dates="datetime"``, ``"2026-01-05T00:00:00"`` [U]. Errors are
``{"error": {"code", "message"}}`` with the HTTP status (401 with ``WWW-Authenticate: Basic``).

``$filter`` takes comparisons (``eq ne gt ge lt le``) joined by ``and``/``or`` with brackets;
literals are typed as OData types them: ``'text'`` (quotes doubled inside), numbers, bare dates
``2026-01-05`` (or ``2026-01-05T00:00:00Z``). A literal of the wrong type for its column is a 400,
as on a strict server. ``$orderby`` is ascending only. Evaluation reuses COMFND's (one ordering
for both, SQL Server's collation).

Switches (see :class:`SysproSimulator`): ``odata_page_cap`` (rows per answer whatever ``$top``
asks; SYSPRO's is 5000 [3P]), ``odata_next_link`` (add ``@odata.nextLink`` when more rows
follow, or not), ``odata_count`` (honour ``$count=true`` with ``@odata.count``, or ignore it).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from .base import SimRequest, SimResponse
from .syspro_query import ALL_CONDITIONS, AMOUNT, DATE, ComfndError, Expression, Query, Table, run

if TYPE_CHECKING:
    from .syspro import SysproSimulator

ODATA_ROOT = "/odata/"
_TOKEN = re.compile(r"""\s*(?:(?P<open>\()|(?P<close>\))|(?P<string>'(?:[^']|'')*')
                        |(?P<date>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)
                        |(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))""", re.VERBOSE)
_JSON_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?$")
_COMPARISONS = {"eq": "EQ", "ne": "NE", "gt": "GT", "ge": "GE", "lt": "LT", "le": "LE"}


class ODataError(ValueError):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


def error(status: int, message: str, code: str = "", headers: dict[str, str] | None = None) -> SimResponse:
    return SimResponse.json(status, {"error": {"code": code or str(status), "message": message}}, headers)


def parse_filter(table: Table, text: str) -> list[Expression]:
    """``$filter`` as COMFND expressions (brackets counted, joiners kept), literals type-checked."""
    expressions: list[Expression] = []
    opens, joiner, pos = 0, "And", 0
    tokens: list[tuple[str, str]] = []
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found or found.end() == pos:
            if text[pos:].strip():
                raise ODataError(400, f"Syntax error at position {pos} in '{text}'.")
            break
        kind = found.lastgroup or ""
        tokens.append((kind, found.group(kind)))
        pos = found.end()
    n = 0
    while n < len(tokens):
        kind, value = tokens[n]
        if kind == "open":
            opens += 1
        elif kind == "close":
            if not expressions:
                raise ODataError(400, f"Syntax error: ')' without a comparison in '{text}'.")
            expressions[-1].close += 1
        elif kind == "word" and value.lower() in ("and", "or"):
            joiner = "And" if value.lower() == "and" else "Or"
        elif kind == "word":
            if n + 2 >= len(tokens) or tokens[n + 1][0] != "word" or tokens[n + 1][1].lower() not in _COMPARISONS:
                raise ODataError(400, f"Syntax error near '{value}' in '{text}'.")
            literal_kind, literal = tokens[n + 2]
            position = table.index(value)
            if position is None:
                raise ODataError(400, f"Could not find a property named '{value}' on type '{table.name}'.")
            expressions.append(Expression(open=opens, and_or=joiner, column=table.columns[position],
                                          condition=_COMPARISONS[tokens[n + 1][1].lower()],
                                          value=_literal(table, position, literal_kind, literal), close=0))
            opens, joiner = 0, "And"
            n += 2
        else:
            raise ODataError(400, f"Syntax error near '{value}' in '{text}'.")
        n += 1
    return expressions


def _literal(table: Table, position: int, kind: str, literal: str) -> str:
    wanted = {DATE: "date", AMOUNT: "number"}.get(table.types[position], "string")
    if kind != wanted:
        raise ODataError(400, f"A binary operator with incompatible types was detected: '{table.columns[position]}' "
                              f"is not comparable with the {kind} {literal}.")
    if kind == "string":
        return literal[1:-1].replace("''", "'")
    return literal[:10] if kind == "date" else literal


def _value(kind: str, text: str, dates: str) -> str:
    """One cell as JSON text: amounts as numbers written as stored, dates as Edm.Date (or DateTime) text."""
    if kind == AMOUNT:
        if not text.strip():
            return "null"
        if _JSON_NUMBER.match(text.strip()):
            return text.strip()
        try:
            return format(Decimal(text.strip()), "f")
        except InvalidOperation:
            return "null"
    if kind == DATE:
        if not text.strip():
            return "null"
        return f'"{text[:10]}T00:00:00"' if dates == "datetime" else f'"{text[:10]}"'
    return _json_string(text)


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _authorised(sim: SysproSimulator, request: SimRequest) -> bool:
    header = request.header("Authorization") or ""
    if not header.lower().startswith("basic "):
        return False
    try:
        operator, _, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return sim.operators.get(operator.strip().upper()) == password


def handle(sim: SysproSimulator, request: SimRequest) -> SimResponse:
    """One OData request (the caller holds the simulator's lock and has checked the path prefix)."""
    if request.method != "GET":
        sim.writes.append(request)
        return error(405, "The OData service is read only.", headers={"Allow": "GET"})
    sim.odata_requests += 1
    if not _authorised(sim, request):
        return error(401, "Authorization has been denied for this request.",
                     headers={"WWW-Authenticate": 'Basic realm="SYSPRO OData"'})
    parts = unquote(urlsplit(request.url).path)[len(ODATA_ROOT):].strip("/").split("/")
    company = parts[0].upper() if parts and parts[0] else ""
    if company not in sim.companies:
        return error(404, f"Company '{parts[0] if parts else ''}' not found.")
    tables = sim.companies[company][1]
    root = f"{urlsplit(request.url).scheme}://{urlsplit(request.url).netloc}{ODATA_ROOT}{parts[0]}"
    if len(parts) == 1:
        return SimResponse.json(200, {"@odata.context": f"{root}/$metadata",
                                      "value": [{"name": n, "kind": "EntitySet", "url": n} for n in tables]})
    if len(parts) != 2 or parts[1] not in tables:
        return error(404, f"Resource not found for the segment '{parts[-1]}'.")
    try:
        return _read(sim, tables[parts[1]], request, f"{root}/{parts[1]}", root)
    except ODataError as exc:
        return error(exc.status, str(exc), exc.code)


def _read(sim: SysproSimulator, table: Table, request: SimRequest, url: str, root: str) -> SimResponse:
    def number(name: str) -> int | None:
        raw = request.param(name)
        if raw in (None, ""):
            return None
        if not raw.isdigit():
            raise ODataError(400, f"Invalid value '{raw}' for {name}.")
        return int(raw)

    select = [c.strip() for c in (request.param("$select") or "").split(",") if c.strip()]
    for name in select:
        if table.index(name) is None:
            raise ODataError(400, f"Could not find a property named '{name}' on type '{table.name}'.")
    order = []
    for item in (request.param("$orderby") or "").split(","):
        words = item.split()
        if not words:
            continue
        if len(words) > 1 and words[1].lower() != "asc":
            raise ODataError(501, "Only ascending $orderby is played by this simulator.")
        if table.index(words[0]) is None:
            raise ODataError(400, f"Could not find a property named '{words[0]}' on type '{table.name}'.")
        order.append(words[0])
    where = parse_filter(table, request.param("$filter") or "")
    skip, top = number("$skip") or 0, number("$top")
    size = min(top if top is not None else sim.odata_page_cap, sim.odata_page_cap)
    counted = (request.param("$count") or "").lower() == "true" and sim.odata_count
    whole = counted or sim.odata_next_link
    query = Query(table=table.name, columns=select, where=where, order_by=order,
                  return_rows=None if whole else skip + size)
    try:
        names, rows = run(table, query, ALL_CONDITIONS, honour_return_rows=not whole)
    except ComfndError as exc:
        raise ODataError(400, str(exc)) from None
    page = rows[skip:skip + size] if size else []
    kinds = [table.types[table.index(n) or 0] for n in names]
    cells = [",".join(f"{_json_string(n)}:{_value(k, v, sim.odata_dates)}" for n, k, v in zip(names, kinds, row,
                                                                                              strict=True))
             for row in page]
    head: dict[str, Any] = {"@odata.context": f"{root}/$metadata#{table.name}"}
    if counted:
        head["@odata.count"] = len(rows)
    if sim.odata_next_link and skip + len(page) < len(rows):
        options = [(k, v[0]) for k, v in request.query.items() if k != "$skip"] + [("$skip", str(skip + len(page)))]
        head["@odata.nextLink"] = url + "?" + "&".join(f"{k}={quote(v, safe=',')}" for k, v in options)
    prefix = ",".join(f"{_json_string(k)}:{_json_string(v) if isinstance(v, str) else v}" for k, v in head.items())
    body = "{" + prefix + ',"value":[' + ",".join("{" + c + "}" for c in cells) + "]}"
    return SimResponse(200, body.encode("utf-8"), {"Content-Type": "application/json; odata.metadata=minimal"})
