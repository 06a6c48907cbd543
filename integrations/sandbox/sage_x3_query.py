"""The SData query language as the Sage X3 simulator understands it: ``where``, ``orderBy``, paging.

``where`` follows SData 2.0 core 0212 (API_FACTS 2.1): comparisons ``eq ne lt le gt ge`` (and the
symbolic ``= <> < <= > >=``), ``between … and …``, ``in (…)``, ``like``, ``and``/``or``/``not``,
parentheses, strings in single quotes (``''`` escapes a quote), numbers, ``null``, and date
literals ``@2026-01-01@``. The date-time literal ``@2026-01-01T00:00:00Z@`` is [U] (the docs
only show dates); it is accepted because a delta sync on ``UPDDATTIM`` needs it. A few string
functions (``left right upper lower length``) are supported as in the docs' own example.

Literals are typed against the field they are compared with at parse time, so
``UPDDATTIM ge @2026-01-01@`` compares datetimes and ``AMTNOT gt 100.5`` compares Decimals.
Unknown fields are an error, as X3 refuses properties that are not on the query facet (an
unknown one in ``where`` is :class:`UnknownProperty`, which X3 answers with HTTP 500).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import total_ordering
from typing import Any

from .sage_x3_schema import DATE, DATETIME, DEC, INT, STR, ValueProblem, coerce, parse_datetime

Predicate = Callable[[dict[str, Any]], bool]
Getter = Callable[[dict[str, Any]], Any]


class QueryError(ValueError):
    """A malformed ``where``/``orderBy``/paging parameter: the simulator answers 400."""


class UnknownProperty(QueryError):
    """``where`` names a property the representation does not have: X3 answers HTTP 500 for
    this one (API_FACTS 9), not 400."""

    def __init__(self, name: str) -> None:
        super().__init__(f"where: unknown property {name}")
        self.name = name


_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<str>'(?:[^']|'')*')"
    r"|(?P<date>@[^@]*@)"
    r"|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<op><>|<=|>=|=|<|>)"
    r"|(?P<punct>[(),])"
    r"|(?P<name>[A-Za-z_$][A-Za-z0-9_$.]*)"
    r")"
)
_SYMBOLS = {"=": "eq", "<>": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
_FUNCTIONS = {"left", "right", "upper", "lower", "length"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"where: cannot read {text[pos:pos + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Literal:
    def __init__(self, value: Any, kind: str) -> None:
        self.value = value
        self.kind = kind  # "str", "num", "date", "null"


class _Parser:
    def __init__(self, text: str, fields: dict[str, str], names: dict[str, str] | None = None) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0
        self.fields = fields
        self.names = names or {}

    # -- token helpers --
    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "name" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        token = self.peek()
        if not token or token[1] != value:
            raise QueryError(f"where: expected {value!r}")
        self.pos += 1

    # -- grammar --
    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek() is not None:
            raise QueryError(f"where: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.keyword("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.keyword("and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def not_expr(self) -> Predicate:
        if self.keyword("not"):
            inner = self.not_expr()
            return lambda r: not inner(r)
        token = self.peek()
        if token and token[1] == "(":
            # A parenthesised predicate (function calls are consumed by operand()).
            self.pos += 1
            inner = self.or_expr()
            self.expect(")")
            return inner
        return self.comparison()

    def operand(self) -> tuple[Getter | _Literal, str | None]:
        """An operand: a field (with its kind), a function call, or a literal."""
        token = self.peek()
        if token is None:
            raise QueryError("where: unexpected end")
        kind, text = token
        self.pos += 1
        if kind == "str":
            return _Literal(text[1:-1].replace("''", "'"), "str"), None
        if kind == "num":
            return _Literal(Decimal(text), "num"), None
        if kind == "date":
            try:
                return _Literal(parse_datetime(text[1:-1]), "date" if len(text[1:-1].strip()) == 10 else "datetime"), None
            except ValueProblem as exc:
                raise QueryError(f"where: {exc}") from exc
        if kind == "name":
            lowered = text.lower()
            if lowered == "null":
                return _Literal(None, "null"), None
            if lowered in _FUNCTIONS and self.peek() and self.peek()[1] == "(":  # type: ignore[index]
                return self.function(lowered), STR if lowered != "length" else INT
            if text not in self.fields:
                raise UnknownProperty(text)
            stored = self.names.get(text, text)
            return (lambda r: r.get(stored)), self.fields[text]
        raise QueryError(f"where: unexpected {text!r}")

    def function(self, name: str) -> Getter:
        self.expect("(")
        args: list[Getter | _Literal] = []
        while True:
            operand, _ = self.operand()
            args.append(operand)
            if self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.pos += 1
                continue
            break
        self.expect(")")
        getters = [_getter(a) for a in args]

        def call(record: dict[str, Any]) -> Any:
            values = [g(record) for g in getters]
            if values[0] is None:
                return None
            text = str(values[0])
            if name in ("left", "right"):
                count = int(values[1]) if len(values) > 1 and values[1] is not None else 0
                return text[:count] if name == "left" else (text[-count:] if count else "")
            if name == "upper":
                return text.upper()
            if name == "lower":
                return text.lower()
            return len(text)

        return call

    def comparison(self) -> Predicate:
        left, left_kind = self.operand()
        token = self.peek()
        if token is None:
            raise QueryError("where: expected an operator")
        op = _SYMBOLS.get(token[1], token[1].lower())
        self.pos += 1
        if op in _COMPARE:
            right, right_kind = self.operand()
            return _compare(op, left, left_kind, right, right_kind)
        if op == "between":
            low, _ = self.operand()
            if not self.keyword("and"):
                raise QueryError("where: between needs 'and'")
            high, _ = self.operand()
            ge = _compare("ge", left, left_kind, low, None)
            le = _compare("le", left, left_kind, high, None)
            return lambda r: ge(r) and le(r)
        if op == "in":
            self.expect("(")
            options = []
            while True:
                value, _ = self.operand()
                options.append(_compare("eq", left, left_kind, value, None))
                if self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                    self.pos += 1
                    continue
                break
            self.expect(")")
            return lambda r: any(o(r) for o in options)
        if op == "like":
            pattern, _ = self.operand()
            if not isinstance(pattern, _Literal) or pattern.kind != "str":
                raise QueryError("where: like needs a string pattern")
            regex = re.compile(
                "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.value) + r"\Z",
                re.DOTALL,
            )
            get = _getter(left)
            return lambda r: (v := get(r)) is not None and bool(regex.match(str(v)))
        raise QueryError(f"where: unknown operator {token[1]!r}")


def _getter(operand: Getter | _Literal) -> Getter:
    if isinstance(operand, _Literal):
        value = operand.value
        return lambda r: value
    return operand


def _typed(literal: _Literal, kind: str | None) -> Any:
    """Type a literal for the field it is compared with (SData compares in the field's type)."""
    if kind is None or literal.value is None:
        return literal.value
    value = literal.value
    try:
        if kind == STR:
            return format(value, "f") if isinstance(value, Decimal) else (value.isoformat() if isinstance(value, date) else value)
        if kind in (INT, DEC):
            return Decimal(str(value)) if not isinstance(value, datetime) else None
        if kind == DATE:
            return value.date() if isinstance(value, datetime) else coerce(DATE, value)
        if kind == DATETIME:
            return coerce(DATETIME, value)
    except (ValueProblem, InvalidOperation) as exc:
        raise QueryError(f"where: {value!r} does not fit a {kind} property") from exc
    return value


def _compare(op: str, left: Any, left_kind: str | None, right: Any, right_kind: str | None) -> Predicate:
    if isinstance(right, _Literal):
        right = _Literal(_typed(right, left_kind), right.kind)
    if isinstance(left, _Literal):
        left = _Literal(_typed(left, right_kind), left.kind)
    get_left, get_right = _getter(left), _getter(right)

    def test(record: dict[str, Any]) -> bool:
        a, b = get_left(record), get_right(record)
        if a is None or b is None:
            if op == "eq":
                return a is None and b is None
            if op == "ne":
                return (a is None) != (b is None)
            return False
        try:
            if op == "eq":
                return bool(a == b)
            if op == "ne":
                return bool(a != b)
            if op == "lt":
                return bool(a < b)
            if op == "le":
                return bool(a <= b)
            if op == "gt":
                return bool(a > b)
            return bool(a >= b)
        except TypeError:
            return False

    return test


def parse_where(text: str, fields: dict[str, str], names: dict[str, str] | None = None) -> Predicate:
    """Compile an SData ``where`` into a predicate over stored (typed) records.

    ``fields`` maps the property names the client may use to their types; ``names`` maps
    those names to the stored field names when a representation renames fields.
    """
    if not text.strip():
        return lambda r: True
    return _Parser(text, fields, names).parse()


# --- orderBy and sort keys --------------------------------------------------------------------

def parse_order_by(text: str | None, fields: dict[str, str], key: tuple[str, ...]) -> list[tuple[str, bool]]:
    """``F1 asc, F2 desc`` or the older ``F1;F2 Desc``; the class key is appended as tie-breaker.

    The tie-breaker makes the order total, which is what lets paging resume exactly after the
    last record even when thousands of records share one ``UPDDATTIM`` second.
    """
    order: list[tuple[str, bool]] = []
    for item in re.split(r"[,;]", text or ""):
        words = item.split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"orderBy: cannot read {item.strip()!r}")
        if words[0] not in fields:
            raise QueryError(f"orderBy: unknown property {words[0]}")
        order.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    named = {name for name, _ in order}
    order.extend((name, False) for name in key if name not in named)
    return order


@total_ordering
class _Desc:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __hash__(self) -> int:
        return hash(self.value)


def sort_key(record: dict[str, Any], order: list[tuple[str, bool]]) -> tuple[Any, ...]:
    """A comparable tuple for ``record`` under ``order`` (nulls first, like X3's blank values)."""
    parts: list[Any] = []
    for name, desc in order:
        value = record.get(name)
        component = (value is not None, value if value is not None else "")
        parts.append(_Desc(component) if desc else component)
    return tuple(parts)


# --- continuation tokens -----------------------------------------------------------------------

def _tag(value: Any) -> list[Any]:
    if value is None:
        return ["n", None]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        return ["m", str(value)]
    if isinstance(value, int):
        return ["i", value]
    return ["s", str(value)]


def _untag(item: list[Any]) -> Any:
    tag, value = item
    return {
        "n": lambda v: None,
        "t": datetime.fromisoformat,
        "d": date.fromisoformat,
        "m": Decimal,
        "i": int,
        "s": str,
    }[tag](value)


def encode_cursor(record: dict[str, Any], order: list[tuple[str, bool]]) -> str:
    """An opaque token holding the last record's sort values (keyset paging, not an offset)."""
    payload = {"o": [[name, int(desc)] for name, desc in order], "v": [_tag(record.get(name)) for name, _ in order]}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str, order: list[tuple[str, bool]]) -> tuple[Any, ...]:
    """The sort key a token stands for; the token must come from the same ``orderBy``."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if [tuple(x) for x in payload["o"]] != [(n, int(d)) for n, d in order]:
            raise QueryError("$token does not match this orderBy")
        values = {name: _untag(item) for (name, _), item in zip(order, payload["v"], strict=True)}
    except QueryError:
        raise
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise QueryError("invalid $token") from exc
    return sort_key(values, order)


def parse_key_param(text: str) -> tuple[str, str]:
    """``key=gt.SUP001`` -> (``gt``, ``SUP001``); the op defaults to ``eq`` without a dot prefix."""
    op, dot, value = text.partition(".")
    if dot and op.lower() in _COMPARE:
        return op.lower(), value
    return "eq", text
