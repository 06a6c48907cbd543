"""ServiceNow encoded queries (``sysparm_query``): parse, prune, match and sort.

Grammar, per ServiceNow's docs (API_FACTS 1.1): conditions ``<field><OP><value>`` joined by
``^`` (AND), ``^OR`` (OR with the previous condition, binding tighter than AND) and ``^NQ``
(a new query whose results are OR-ed with the previous ones); ``ORDERBY<field>`` and
``ORDERBYDESC<field>`` sort, in order. A literal caret in a value is written ``^^``.

One real-system trap is reproduced on purpose: a condition on a field the table does not
have is *silently dropped* (see :meth:`EncodedQuery.prune`), so a lookup on a wrong column
matches every row. Clients must guard against that; the simulator must not hide it.

Of the GlideSystem script values only ``gs.dateGenerate(...)`` and ``gs.getUserID()`` (the
calling user's sys_id, e.g. ``sys_user?sysparm_query=sys_id=javascript:gs.getUserID()`` to learn
who an OAuth token acts as) are evaluated; any other script makes its condition invalid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

#: Longest first where one operator is a prefix of another (">=" before ">").
OPERATORS = (
    "NOT LIKE",
    "NOT IN",
    "ISNOTEMPTY",
    "ISEMPTY",
    "STARTSWITH",
    "ENDSWITH",
    "BETWEEN",
    "LIKE",
    "IN",
    ">=",
    "<=",
    "!=",
    "=",
    ">",
    "<",
)
# Column names are lower-case in ServiceNow, so an upper-case operator cannot be swallowed
# by the field name (``nameIN...`` is field ``name``, operator ``IN``).
_CONDITION = re.compile(r"^([a-z0-9_.]+)(" + "|".join(re.escape(op) for op in OPERATORS) + r")(.*)$", re.DOTALL)
_DATE_GENERATE = re.compile(r"^javascript:\s*gs\.dateGenerate\(\s*'(\d{4}-\d{2}-\d{2})'\s*,\s*'([^']*)'\s*\)\s*;?$")
_USER_ID = re.compile(r"^javascript:\s*gs\.getUserID\(\s*\)\s*;?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

Getter = Callable[[str], "str | None"]


class InvalidCondition(ValueError):
    """A condition ServiceNow would treat as invalid; it is dropped like an unknown field."""


def literal(value: str, user_id: str = "") -> str:
    """Resolve a query value: plain text, ``javascript:gs.dateGenerate('date','time')``, or
    ``javascript:gs.getUserID()`` (``user_id``, the caller's sys_id)."""
    if not value.startswith("javascript:"):
        return value
    if _USER_ID.match(value) and user_id:
        return user_id
    match = _DATE_GENERATE.match(value)
    if not match:
        # Other GlideSystem helpers (daysAgoStart, ...) are not simulated: better an invalid
        # (ignored) condition than a wrong answer that looks right.
        raise InvalidCondition(value)
    date, time_part = match.groups()
    time_part = {"start": "00:00:00", "end": "23:59:59"}.get(time_part, time_part)
    return f"{date} {time_part}"


def sort_key(value: str | None) -> tuple[int, Any]:
    """Numbers compare as numbers, everything else (incl. ``YYYY-MM-DD HH:MM:SS``) as text."""
    if value is None or value == "":
        return (0, "")
    if _NUMBER.match(value):
        try:
            return (1, Decimal(value))
        except InvalidOperation:  # pragma: no cover - the regex already vetted it
            pass
    return (2, value)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str, user_id: str = "") -> Condition:
        match = _CONDITION.match(text)
        if not match:
            raise InvalidCondition(text)
        name, op, raw = match.groups()
        if op == "BETWEEN":
            low, sep, high = raw.partition("@")
            if not sep:
                raise InvalidCondition(text)
            value = f"{literal(low, user_id)}@{literal(high, user_id)}"
        elif op in ("IN", "NOT IN"):
            value = raw
        else:
            value = literal(raw, user_id)
        return cls(name, op, value)

    def matches(self, get: Getter) -> bool:
        actual = get(self.field)
        empty = actual is None or actual == ""
        text = actual or ""
        op, value = self.op, self.value
        if op == "ISEMPTY":
            return empty
        if op == "ISNOTEMPTY":
            return not empty
        if op == "=":
            return text == value
        if op == "!=":
            return text != value
        if op == "IN":
            return text in value.split(",")
        if op == "NOT IN":
            return text not in value.split(",")
        # Matching is case-insensitive for the "contains" family, as on a default instance.
        if op == "LIKE":
            return value.lower() in text.lower()
        if op == "NOT LIKE":
            return value.lower() not in text.lower()
        if op == "STARTSWITH":
            return text.lower().startswith(value.lower())
        if op == "ENDSWITH":
            return text.lower().endswith(value.lower())
        if empty:
            # SQL semantics: an empty column is neither greater nor smaller than anything.
            return False
        key = sort_key(text)
        if op == "BETWEEN":
            low, _, high = value.partition("@")
            return sort_key(low) <= key <= sort_key(high)
        other = sort_key(value)
        if op == ">":
            return key > other
        if op == ">=":
            return key >= other
        if op == "<":
            return key < other
        if op == "<=":
            return key <= other
        raise AssertionError(op)  # pragma: no cover


# A query group is a list of AND-terms; each term is a list of OR-alternatives.
Group = list[list[Condition]]


@dataclass
class EncodedQuery:
    groups: list[Group] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)

    @classmethod
    def parse(cls, text: str | None, user_id: str = "") -> EncodedQuery:
        """``user_id``: the caller's sys_id, the value of ``javascript:gs.getUserID()``."""
        query = cls()
        if not text:
            return query
        current: Group = []
        query.groups.append(current)
        for part in _split(text):
            if not part or part == "EQ":
                continue
            if part.startswith("ORDERBYDESC"):
                query.order_by.append((part[len("ORDERBYDESC") :], True))
            elif part.startswith("ORDERBY"):
                query.order_by.append((part[len("ORDERBY") :], False))
            elif part.startswith("GROUPBY"):
                continue
            elif part.startswith("NQ"):
                current = []
                query.groups.append(current)
                _add(current, part[2:], False, user_id)
            elif part.startswith("OR"):
                _add(current, part[2:], bool(current), user_id)
            else:
                _add(current, part, False, user_id)
        return query

    def and_equals(self, pairs: Iterable[tuple[str, str]]) -> EncodedQuery:
        """Add ``name=value`` URL parameters, which ServiceNow ANDs onto every query group."""
        extra = [[Condition(name, "=", value)] for name, value in pairs]
        if not extra:
            return self
        groups = [group + extra for group in self.groups] or [extra]
        return EncodedQuery(groups, list(self.order_by))

    def prune(self, known: Callable[[str], bool]) -> EncodedQuery:
        """Drop conditions and sort keys on unknown fields, as the real platform does."""
        groups: list[Group] = []
        for group in self.groups:
            terms = [[c for c in term if known(c.field)] for term in group]
            groups.append([term for term in terms if term])
        order = [(name, desc) for name, desc in self.order_by if known(name)]
        return EncodedQuery(groups, order)

    def matches(self, get: Getter) -> bool:
        if not self.groups:
            return True
        return any(all(any(c.matches(get) for c in term) for term in group) for group in self.groups)

    def sort(self, rows: list[Any], get: Callable[[Any, str], str | None]) -> list[Any]:
        """Stable multi-key sort: apply the keys last-to-first."""
        ordered = list(rows)
        for name, desc in reversed(self.order_by):
            ordered.sort(key=lambda row, n=name: sort_key(get(row, n)), reverse=desc)
        return ordered


def _split(text: str) -> list[str]:
    sentinel = "\x00"
    return [part.replace(sentinel, "^") for part in text.replace("^^", sentinel).split("^")]


def _add(group: Group, text: str, alternative: bool, user_id: str = "") -> None:
    try:
        condition = Condition.parse(text, user_id)
    except InvalidCondition:
        return  # an invalid part is silently ignored
    if alternative:
        group[-1].append(condition)
    else:
        group.append([condition])
