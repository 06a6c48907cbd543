"""OData ``$filter`` / ``$orderby`` / ``$select`` as the Sage 300 Web API takes them.

Operators ``eq ne gt ge lt le``, ``and``, ``or``, parentheses; literals ``'text'`` (``''`` is a
quote), numbers (``99.99m`` decimals) and ``datetime'2015-12-31T12:00'`` [D: S300DEV]. A
date-time field compared with a bare string is a type error, as OData answers it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any


class QueryError(ValueError):
    """A query option the server refuses (HTTP 400 ``InvalidParameters``)."""


_TOKEN = re.compile(
    r"\s*(?:(?P<dt>datetime'[^']*')|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?m?)"
    r"|(?P<paren>[()])|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}
_OP_NAMES = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
             "lt": "LessThan", "le": "LessThanOrEqual"}
Predicate = Callable[[dict[str, Any]], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def parse_filter(text: str, types: dict[str, str]) -> Predicate:
    """A predicate over records; ``types`` maps field names to ``date``, ``text`` or ``number``."""
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise QueryError(f"Unexpected end of '{text}'.")
        pos += 1
        return tokens[pos - 1]

    def expr() -> Predicate:
        left = term()
        while (tok := peek()) and tok == ("word", "or"):
            take()
            right = term()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def term() -> Predicate:
        left = factor()
        while (tok := peek()) and tok == ("word", "and"):
            take()
            right = factor()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def factor() -> Predicate:
        kind, value = take()
        if kind == "paren" and value == "(":
            inner = expr()
            if take() != ("paren", ")"):
                raise QueryError("Missing ')'.")
            return inner
        if kind != "word" or value not in types:
            raise QueryError(f"Could not find a property named '{value}'.")
        field = value
        op_kind, op = take()
        if op_kind != "word" or op not in _OPS:
            raise QueryError(f"Syntax error: '{op}' is not an operator.")
        lit_kind, literal = take()
        wanted = _literal(field, types[field], op, lit_kind, literal)
        compare = _COMPARE[op]
        return lambda record: (v := record.get(field)) is not None and compare(_key(types[field], v), wanted)

    predicate = expr()
    if pos != len(tokens):
        raise QueryError(f"Syntax error at '{tokens[pos][1]}'.")
    return predicate


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def _key(kind: str, value: Any) -> Any:
    if kind == "date":
        return str(value)[:19].ljust(19, "0") if "T" in str(value) else f"{str(value)[:10]}T00:00:00"
    if kind == "number":
        return Decimal(str(value))
    return str(value)


def _literal(field: str, kind: str, op: str, lit_kind: str, literal: str) -> Any:
    if kind == "date":
        if lit_kind != "dt":
            found = "Edm.String" if lit_kind == "str" else "Edm.Decimal"
            raise QueryError(f"A binary operator with incompatible types was detected. Found operand types "
                             f"'Edm.DateTimeOffset' and '{found}' for operator kind '{_OP_NAMES[op]}'.")
        value = literal[len("datetime'"):-1]
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?", value):
            raise QueryError(f"Unrecognized 'Edm.DateTimeOffset' literal '{literal}'.")
        return _key("date", value if "T" in value else value + "T00:00:00")
    if kind == "number":
        if lit_kind != "num":
            raise QueryError(f"A binary operator with incompatible types was detected for '{field}'.")
        try:
            return Decimal(literal.rstrip("m"))
        except InvalidOperation:
            raise QueryError(f"Bad number '{literal}'.") from None
    if lit_kind != "str":
        raise QueryError(f"A binary operator with incompatible types was detected for '{field}'.")
    return literal[1:-1].replace("''", "'")


def parse_orderby(text: str, types: dict[str, str]) -> list[tuple[str, bool]]:
    order = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        bits = part.split()
        if bits[0] not in types or len(bits) > 2 or (len(bits) == 2 and bits[1] not in ("asc", "desc")):
            raise QueryError(f"Could not find a property named '{bits[0]}'.")
        order.append((bits[0], len(bits) == 2 and bits[1] == "desc"))
    return order


def sort_records(records: list[dict[str, Any]], order: list[tuple[str, bool]], types: dict[str, str]) -> None:
    for field, desc in reversed(order):
        records.sort(key=lambda r, f=field: (r.get(f) is None, _key(types[f], r.get(f)) if r.get(f) is not None
                                            else ""), reverse=desc)
