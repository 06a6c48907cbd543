"""The ``readByQuery`` query language: a SQL-like WHERE clause in a string.

Per API_FACTS 4.4: operators ``< > >= <= = !=`` (``<>`` too), ``like``, ``not like``,
``in``, ``not in``, ``IS NULL``, ``IS NOT NULL``, combined with ``AND`` / ``OR`` / ``NOT``
and parentheses. Spaces around operators are required (a query without them is refused, as
on the real gateway). String literals are single-quoted with ``\\'`` for a quote; dates are
``MM/DD/YYYY`` with an optional ``HH:MM:SS``. There is no ORDER BY and no join.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:\\.|[^'\\])*')
      | (?P<number>-?\d+(?:\.\d+)?(?![\w/]))
      | (?P<op><=|>=|<>|!=|=|<|>)
      | (?P<paren>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_DATE = re.compile(r"^\d{2}/\d{2}/\d{4}(?: \d{2}:\d{2}:\d{2})?$")

Getter = Callable[[str], Any]


class QueryError(ValueError):
    """The query is not one the gateway accepts."""


@dataclass
class _Tok:
    kind: str
    text: str
    start: int
    end: int


def _tokens(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"cannot read the query near {text[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append(_Tok(kind, match.group(kind), match.start(kind), match.end(kind)))
        pos = match.end()
    for tok in tokens:
        if tok.kind == "op":
            before = text[tok.start - 1] if tok.start > 0 else " "
            after = text[tok.end] if tok.end < len(text) else " "
            if not before.isspace() or not after.isspace():
                raise QueryError(f"spaces are required around the operator {tok.text!r}")
    return tokens


def unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _comparable(value: Any) -> tuple[int, Any]:
    text = "" if value is None else str(value)
    if _DATE.match(text):
        fmt = "%m/%d/%Y %H:%M:%S" if " " in text else "%m/%d/%Y"
        return (1, datetime.strptime(text, fmt))
    try:
        return (2, Decimal(text))
    except InvalidOperation:
        return (3, text)


def _compare(left: Any, op: str, right: str) -> bool:
    if left in (None, ""):
        return False  # SQL: NULL compares with nothing
    a, b = _comparable(left), _comparable(right)
    if a[0] != b[0]:
        # A date column compared with a date-only literal, or text with a number: compare as text.
        a, b = (3, str(left)), (3, right)
    if op == "=":
        return a == b
    if op in ("!=", "<>"):
        return a != b
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    return a >= b


def _like(value: Any, pattern: str) -> bool:
    regex = "^" + "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern) + "$"
    return re.match(regex, "" if value is None else str(value), re.DOTALL) is not None


class Query:
    """A parsed query; ``matches(get)`` evaluates it against one record."""

    def __init__(self, text: str, known: Callable[[str], bool]) -> None:
        self.known = known
        self.tokens = _tokens(text or "")
        self.pos = 0
        self.tree = self._or() if self.tokens else None
        if self.pos != len(self.tokens):
            raise QueryError(f"unexpected {self.tokens[self.pos].text!r} in the query")

    # --- parsing ------------------------------------------------------------------------------
    def _peek(self, offset: int = 0) -> _Tok | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _word(self, *words: str, offset: int = 0) -> bool:
        tok = self._peek(offset)
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def _take(self) -> _Tok:
        tok = self._peek()
        if tok is None:
            raise QueryError("the query ends too early")
        self.pos += 1
        return tok

    def _or(self) -> Any:
        node = self._and()
        while self._word("OR"):
            self._take()
            node = ("or", node, self._and())
        return node

    def _and(self) -> Any:
        node = self._not()
        while self._word("AND"):
            self._take()
            node = ("and", node, self._not())
        return node

    def _not(self) -> Any:
        if self._word("NOT") and not self._word("IN", "LIKE", offset=1):
            self._take()
            return ("not", self._not())
        return self._primary()

    def _primary(self) -> Any:
        tok = self._take()
        if tok.kind == "paren" and tok.text == "(":
            node = self._or()
            closing = self._take()
            if closing.text != ")":
                raise QueryError("a parenthesis is not closed")
            return node
        if tok.kind != "word":
            raise QueryError(f"expected a field name, found {tok.text!r}")
        name = tok.text.upper()
        if not self.known(name):
            raise QueryError(f"unknown field {tok.text!r}")
        if self._word("IS"):
            self._take()
            negate = self._word("NOT")
            if negate:
                self._take()
            if not self._word("NULL"):
                raise QueryError("expected NULL after IS")
            self._take()
            return ("notnull" if negate else "null", name)
        negate = self._word("NOT")
        if negate:
            self._take()
        if self._word("IN"):
            self._take()
            return ("notin" if negate else "in", name, self._list())
        if self._word("LIKE"):
            self._take()
            return ("notlike" if negate else "like", name, self._value())
        if negate:
            raise QueryError("expected IN or LIKE after NOT")
        op = self._take()
        if op.kind != "op":
            raise QueryError(f"expected an operator after {name}, found {op.text!r}")
        return ("cmp", name, op.text, self._value())

    def _value(self) -> str:
        tok = self._take()
        if tok.kind == "string":
            return unquote(tok.text)
        if tok.kind == "number":
            return tok.text
        raise QueryError(f"expected a value, found {tok.text!r}")

    def _list(self) -> list[str]:
        if self._take().text != "(":
            raise QueryError("expected ( after IN")
        values = [self._value()]
        while self._peek() is not None and self._peek().text == ",":  # type: ignore[union-attr]
            self._take()
            values.append(self._value())
        if self._take().text != ")":
            raise QueryError("expected ) to close IN")
        return values

    # --- evaluation ---------------------------------------------------------------------------
    def matches(self, get: Getter) -> bool:
        return True if self.tree is None else self._eval(self.tree, get)

    def _eval(self, node: Any, get: Getter) -> bool:
        kind = node[0]
        if kind == "or":
            return self._eval(node[1], get) or self._eval(node[2], get)
        if kind == "and":
            return self._eval(node[1], get) and self._eval(node[2], get)
        if kind == "not":
            return not self._eval(node[1], get)
        value = get(node[1])
        if kind == "null":
            return value in (None, "")
        if kind == "notnull":
            return value not in (None, "")
        if kind == "in":
            return str(value) in node[2]
        if kind == "notin":
            return str(value) not in node[2]
        if kind == "like":
            return _like(value, node[2])
        if kind == "notlike":
            return not _like(value, node[2])
        return _compare(value, node[2], node[3])
