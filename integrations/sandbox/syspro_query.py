"""COMFND as the SYSPRO simulator plays it: tables of rows, the XmlIn query, the XML answer.

XmlIn (API_FACTS 5.2 [C]): ``<Query><TableName/><ReturnRows/><Columns><Column/>…</Columns>
<Where><Expression><OpenBracket>(</OpenBracket><AndOr>And</AndOr><Column/><Condition>EQ
</Condition><Value/><CloseBracket>)</CloseBracket></Expression>…</Where><OrderBy><Column/>…
</OrderBy></Query>``. Expressions combine with SQL precedence (AND before OR), brackets as
written. Conditions beyond EQ are [U]: the simulator takes ``EQ NE GT GE LT LE`` unless told to
take only ``EQ`` (some installs may refuse the others).

Comparisons follow SQL Server's usual collation: text compares case-insensitively and ignores
trailing spaces; dates are date-only ``YYYY-MM-DD`` [U]; amounts exact decimals. One ordering
function serves both ``OrderBy`` and the ``GT``/``GE`` conditions, so a (date, key) seek pages
consistently, as it does on the real server.

Rows are tuples of wire texts in the table's column order (compact: the benchmark holds a
few hundred thousand). A query walks a sorted index of the table from the lower bound its
``Where`` implies on the first ``OrderBy`` column and stops at ``ReturnRows``, so a page costs
about its own size, not the table's.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

TEXT, DATE, AMOUNT = "text", "date", "amount"
ALL_CONDITIONS = frozenset({"EQ", "NE", "GT", "GE", "LT", "LE"})
EQ_ONLY = frozenset({"EQ"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class ComfndError(ValueError):
    """A query SYSPRO refuses: answered as ``ERROR: <message>`` with HTTP 200."""


def sort_value(kind: str, value: str) -> Any:
    if kind == AMOUNT:
        try:
            return Decimal(value.strip() or "0")
        except InvalidOperation:
            return Decimal(0)
    if kind == DATE:
        return value[:10]
    return value.rstrip().casefold()


class Table:
    """One SYSPRO table: column names as SYSPRO spells them, a type per column, rows as tuples."""

    def __init__(self, name: str, columns: Sequence[str], key: Sequence[str], types: dict[str, str] | None = None,
                 rows: Iterable[tuple[str, ...]] = ()) -> None:
        self.name = name
        self.columns = tuple(columns)
        self.key = tuple(key)
        self.types = tuple((types or {}).get(c, TEXT) for c in self.columns)
        self.rows: list[tuple[str, ...]] = list(rows)
        self._by_lower = {c.lower(): i for i, c in enumerate(self.columns)}
        self._indexes: dict[tuple[int, ...], tuple[int, list[Any], list[tuple[str, ...]]]] = {}
        self.version = 0

    def index(self, column: str) -> int | None:
        """The position of ``column``, matched case-insensitively (SQL Server's default)."""
        return self._by_lower.get(column.strip().lower())

    def row(self, values: dict[str, Any]) -> tuple[str, ...]:
        return tuple("" if values.get(c) is None else str(values[c]) for c in self.columns)

    def insert(self, values: dict[str, Any]) -> None:
        self.rows.append(self.row(values))
        self.version += 1

    def update(self, key: Sequence[str], changes: dict[str, Any]) -> None:
        """Change the row with this key (as a SYSPRO user editing it would)."""
        positions = [self._by_lower[c.lower()] for c in self.key]
        for n, row in enumerate(self.rows):
            if [row[p] for p in positions] == list(key):
                values = dict(zip(self.columns, row, strict=True))
                values.update(changes)
                self.rows[n] = self.row(values)
                self.version += 1
                return
        raise KeyError(f"{self.name}: no row {key!r}")

    def as_dicts(self) -> list[dict[str, str]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def sorted_by(self, order: tuple[int, ...]) -> tuple[list[Any], list[tuple[str, ...]]]:
        """Rows sorted by ``order`` (column positions) and the first sort value of each, cached."""
        cached = self._indexes.get(order)
        if cached is not None and cached[0] == self.version:
            return cached[1], cached[2]
        types = self.types
        keyed = sorted(((tuple(sort_value(types[i], r[i]) for i in order), r) for r in self.rows),
                       key=lambda pair: pair[0])
        firsts = [k[0] for k, _ in keyed] if order else []
        rows = [r for _, r in keyed]
        self._indexes[order] = (self.version, firsts, rows)
        return firsts, rows


@dataclass
class Expression:
    open: int
    and_or: str
    column: str
    condition: str
    value: str
    close: int


@dataclass
class Query:
    table: str
    columns: list[str] = field(default_factory=list)
    where: list[Expression] = field(default_factory=list)
    order_by: list[str] = field(default_factory=list)
    return_rows: int | None = None


def _text(node: etree._Element | None, tag: str) -> str:
    found = node.find(tag) if node is not None else None
    return (found.text or "") if found is not None else ""


def parse_xmlin(xml_in: str) -> Query:
    """The COMFND XmlIn document; :class:`ComfndError` for anything SYSPRO would refuse."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(_DECLARATION.sub("", xml_in, count=1).encode("utf-8"), parser)
    except etree.XMLSyntaxError:
        raise ComfndError("XmlIn is not well-formed XML") from None  # [U] text
    if root.tag != "Query":
        raise ComfndError(f"XmlIn root element must be 'Query', not '{root.tag}'")
    table = _text(root, "TableName").strip()
    if not table:
        raise ComfndError("No table name supplied in XmlIn")
    query = Query(table=table)
    query.columns = [(c.text or "").strip() for c in root.findall("Columns/Column") if (c.text or "").strip()]
    query.order_by = [(c.text or "").strip() for c in root.findall("OrderBy/Column") if (c.text or "").strip()]
    rows = _text(root, "ReturnRows").strip()
    if rows:
        if not rows.isdigit():
            raise ComfndError(f"Invalid ReturnRows '{rows}'")
        query.return_rows = int(rows) or None  # 0: no limit [U]
    for node in root.findall("Where/Expression"):
        query.where.append(Expression(
            open=_text(node, "OpenBracket").count("("), and_or=_text(node, "AndOr").strip() or "And",
            column=_text(node, "Column").strip(), condition=_text(node, "Condition").strip().upper() or "EQ",
            value=_text(node, "Value"), close=_text(node, "CloseBracket").count(")")))
    return query


# --- the Where clause -------------------------------------------------------------------------------
# A node: ("cmp", position, condition, sort value) | ("and", [nodes]) | ("or", [nodes])
Node = tuple[Any, ...]
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda a, b: a == b, "NE": lambda a, b: a != b, "GT": lambda a, b: a > b,
    "GE": lambda a, b: a >= b, "LT": lambda a, b: a < b, "LE": lambda a, b: a <= b,
}


def _literal(table: Table, position: int, value: str) -> Any:
    kind = table.types[position]
    if kind == DATE and value.strip() and not _DATE.match(value.strip()):
        raise ComfndError(f"Invalid date '{value}' for column '{table.columns[position]}'")  # [U] text
    if kind == AMOUNT:
        try:
            Decimal(value.strip() or "0")
        except InvalidOperation:
            raise ComfndError(f"Invalid numeric value '{value}' for column '{table.columns[position]}'") from None
    return sort_value(kind, value.strip() if kind == DATE else value)


def compile_where(table: Table, expressions: list[Expression], conditions: frozenset[str]) -> Node | None:
    tokens: list[Any] = []
    for n, expr in enumerate(expressions):
        if n:
            joiner = expr.and_or.upper()
            if joiner not in ("AND", "OR"):
                raise ComfndError(f"Invalid AndOr '{expr.and_or}'")
            tokens.append(joiner)
        tokens.extend("(" * expr.open)
        position = table.index(expr.column)
        if position is None:
            raise ComfndError(f"Invalid column name '{expr.column}'")
        if expr.condition not in conditions:
            raise ComfndError(f"Invalid condition '{expr.condition}'")  # [U] text
        tokens.append(("cmp", position, expr.condition, _literal(table, position, expr.value)))
        tokens.extend(")" * expr.close)
    if not tokens:
        return None
    pos = 0

    def peek() -> Any:
        return tokens[pos] if pos < len(tokens) else None

    def disjunction() -> Node:
        nonlocal pos
        parts = [conjunction()]
        while peek() == "OR":
            pos += 1
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def conjunction() -> Node:
        nonlocal pos
        parts = [factor()]
        while peek() == "AND":
            pos += 1
            parts.append(factor())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def factor() -> Node:
        nonlocal pos
        token = peek()
        pos += 1
        if token == "(":
            inner = disjunction()
            if peek() != ")":
                raise ComfndError("Unbalanced brackets in Where")
            pos += 1
            return inner
        if isinstance(token, tuple):
            return token
        raise ComfndError("Unbalanced brackets in Where")

    node = disjunction()
    if pos != len(tokens):
        raise ComfndError("Unbalanced brackets in Where")
    return node


def predicate(node: Node | None, types: tuple[str, ...]) -> Callable[[tuple[str, ...]], bool]:
    if node is None:
        return lambda row: True
    if node[0] == "cmp":
        _, position, condition, wanted = node
        compare, kind = _COMPARE[condition], types[position]
        return lambda row: compare(sort_value(kind, row[position]), wanted)
    parts = [predicate(child, types) for child in node[1]]
    if node[0] == "and":
        return lambda row: all(p(row) for p in parts)
    return lambda row: any(p(row) for p in parts)


def bound(node: Node | None, position: int, lower: bool) -> Any:
    """A bound the Where implies on one column (None: unbounded): where to start and stop walking."""
    if node is None:
        return None
    if node[0] == "cmp":
        _, column, condition, value = node
        wanted = ("EQ", "GT", "GE") if lower else ("EQ", "LT", "LE")
        return value if column == position and condition in wanted else None
    found = [bound(child, position, lower) for child in node[1]]
    if node[0] == "and":
        known = [b for b in found if b is not None]
        return (max(known) if lower else min(known)) if known else None
    if any(b is None for b in found):
        return None
    return min(found) if lower else max(found)


def run(table: Table, query: Query, conditions: frozenset[str], honour_return_rows: bool = True
        ) -> tuple[list[str], list[tuple[str, ...]]]:
    """(the answer's column names as sent, the rows' values in that order)."""
    names = query.columns or list(table.columns)
    positions = []
    for name in names:
        position = table.index(name)
        if position is None:
            raise ComfndError(f"Invalid column name '{name}'")
        positions.append(position)
    order = []
    for name in query.order_by:
        position = table.index(name)
        if position is None:
            raise ComfndError(f"Invalid column name '{name}'")
        order.append(position)
    if not order:
        order = [table.index(k) or 0 for k in table.key]
    node = compile_where(table, query.where, conditions)
    matches = predicate(node, table.types)
    firsts, rows = table.sorted_by(tuple(order))
    low, high = bound(node, order[0], True), bound(node, order[0], False)
    start = bisect_left(firsts, low) if low is not None else 0
    stop = bisect_right(firsts, high) if high is not None else len(rows)
    limit = query.return_rows if honour_return_rows else None
    found: list[tuple[str, ...]] = []
    for index in range(start, stop):
        row = rows[index]
        if matches(row):
            found.append(tuple(row[p] for p in positions))
            if limit is not None and len(found) >= limit:
                break
    return names, found


def render(query: Query, names: list[str], rows: list[tuple[str, ...]], *, lower: bool = False,
           encoding: str = "cp1252", version: str = "7.0.053") -> bytes:
    """The COMFND answer, shaped like the recorded one (API_FACTS 5.2)."""
    def tag(name: str) -> str:
        return name.lower() if lower else name

    root, declared = tag(query.table), "Windows-1252" if encoding == "cp1252" else "UTF-8"
    columns = "".join(f"<{tag('Column')}>{escape(n)}</{tag('Column')}>" for n in names)
    order = "".join(f"<{tag('Column')}>{escape(n)}</{tag('Column')}>" for n in query.order_by)
    parts = [
        f'<?xml version="1.0" encoding="{declared}"?>',
        f"<{root} Language='05' Language2='EN' CssStyle='' DecFormat='1' DateFormat='01' Role='01' "
        f"Version='{version}' OperatorPrimaryRole='   '>",
        f"<{tag('HeaderDetails')}><{tag('TableName')}>{escape(query.table)}</{tag('TableName')}>"
        f"<{tag('Columns')}>{columns}</{tag('Columns')}><{tag('OrderBy')}>{order}</{tag('OrderBy')}>"
        f"</{tag('HeaderDetails')}>",
    ]
    tags = [tag(n) for n in names]
    row_tag = tag("Row")
    for row in rows:
        cells = "".join(f"<{t}>{escape(v)}</{t}>" for t, v in zip(tags, row, strict=True))
        parts.append(f"<{row_tag}>{cells}</{row_tag}>")
    parts.append(f"<{tag('RowsReturned')}>{len(rows):>8}</{tag('RowsReturned')}>")
    parts.append(f"</{root}>")
    # characters the code page lacks (a Polish Ł in Windows-1252) go out as character references
    return "\n".join(parts).encode(encoding, errors="xmlcharrefreplace")
