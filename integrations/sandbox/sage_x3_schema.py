"""Sage X3 classes as the simulator models them, and how their values go on the wire.

Field names follow API_FACTS "Sage X3 record shapes" (X3 table field naming; the exact names
inside a customer's representation are [U] and per-connection on the client side). Values are
kept typed in memory (``str``, ``int``, ``Decimal``, ``date``, aware ``datetime``) so that
``where`` comparisons and ``orderBy`` behave like a database, and are serialised by
:func:`dumps`, which writes ``Decimal`` as a JSON number literal without going through
``float``: the whole point of the simulator is that a client parsing with
``json.loads(..., parse_float=Decimal)`` gets the exact amounts back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

STR, INT, DEC, DATE, DATETIME = "str", "int", "dec", "date", "datetime"


@dataclass(frozen=True)
class ClassSpec:
    """One X3 class: its key field(s), header fields and (optionally) one line collection."""

    name: str
    key: tuple[str, ...]
    fields: dict[str, str]
    lines_name: str | None = None
    line_fields: dict[str, str] = field(default_factory=dict)

    def key_of(self, record: dict[str, Any]) -> str:
        """The key as X3 prints it in a URL: composite keys joined with ``~``."""
        return "~".join(str(record[name]) for name in self.key)


CLASSES: dict[str, ClassSpec] = {
    "BPSUPPLIER": ClassSpec(
        "BPSUPPLIER",
        ("BPSNUM",),
        {
            "BPSNUM": STR, "BPSNAM": STR, "BPSSHO": STR, "CRY": STR, "CUR": STR, "PTE": STR,
            "BPAADDLIG": STR, "CTY": STR, "POSCOD": STR, "TEL": STR, "WEB": STR, "CNTNAM": STR,
            "UPDDATTIM": DATETIME,
        },
    ),
    "PORDER": ClassSpec(
        "PORDER",
        ("POHNUM",),
        {"POHNUM": STR, "BPSNUM": STR, "ORDDAT": DATE, "CUR": STR, "TOTAMTNOT": DEC, "UPDDATTIM": DATETIME},
        "PORDERP",
        {"POPLIN": INT, "ITMREF": STR, "ITMDES": STR, "QTYUOM": DEC, "PUU": STR, "GROPRI": DEC, "LINAMT": DEC},
    ),
    "PINVOICE": ClassSpec(
        "PINVOICE",
        ("NUM",),
        {
            "NUM": STR, "BPR": STR, "BPRVCR": STR, "BPRDAT": DATE, "ACCDAT": DATE, "CUR": STR,
            "AMTNOT": DEC, "AMTATI": DEC, "UPDDATTIM": DATETIME,
        },
        "PINVOICED",
        {
            "PIDLIN": INT, "POHNUM": STR, "POPLIN": INT, "ITMREF": STR, "QTYUOM": DEC, "NETPRI": DEC,
            "AMTNOTLIN": DEC, "ACC": STR, "CCE": STR,
        },
    ),
    "GACCOUNT": ClassSpec("GACCOUNT", ("ACC",), {"ACC": STR, "DES": STR, "COA": STR, "UPDDATTIM": DATETIME}),
    "CACCE": ClassSpec("CACCE", ("CCE",), {"CCE": STR, "DES": STR, "DIE": STR, "UPDDATTIM": DATETIME}),
    # Journal entries (tables GACCENTRY/GACCENTRYD, API_FACTS 2.4). The field names are [U],
    # chosen from X3's column naming like the others: TYP journal type, REF the reference the
    # portal looks an entry up by after a lost answer, DESVCR the description, SNS the sense
    # (+1 debit, -1 credit) of an always non-negative AMTCUR.
    "GACCENTRY": ClassSpec(
        "GACCENTRY",
        ("NUM",),
        {
            "TYP": STR, "NUM": STR, "ACCDAT": DATE, "REF": STR, "DESVCR": STR, "CUR": STR,
            "UPDDATTIM": DATETIME,
        },
        "GACCENTRYD",
        {"LIN": INT, "ACC": STR, "CCE": STR, "SNS": INT, "AMTCUR": DEC, "DES": STR},
    ),
}


class ValueProblem(ValueError):
    """A value that cannot be turned into its field's type (becomes a 400 on the wire)."""


def parse_datetime(text: str) -> datetime:
    """ISO-8601 to an aware UTC datetime; a bare date means midnight UTC, no zone means UTC."""
    text = text.strip()
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise ValueProblem(f"invalid date-time {text!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def coerce(kind: str, value: Any, name: str = "value") -> Any:
    """Turn a JSON-ish value (or a Python one from a helper) into the field's stored type."""
    if value is None:
        return None
    try:
        if kind == STR:
            return value if isinstance(value, str) else str(value)
        if kind == INT:
            if isinstance(value, bool):
                raise ValueProblem(f"{name}: boolean is not an integer")
            return int(Decimal(str(value)))
        if kind == DEC:
            if isinstance(value, bool):
                raise ValueProblem(f"{name}: boolean is not a number")
            # str(float) is the shortest repr, so 12.5 -> Decimal('12.5'), not its binary expansion.
            return value if isinstance(value, Decimal) else Decimal(str(value))
        if kind == DATE:
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
            return date.fromisoformat(str(value)[:10])
        if kind == DATETIME:
            if isinstance(value, datetime):
                value = value if value.tzinfo else value.replace(tzinfo=UTC)
                return value.astimezone(UTC).replace(microsecond=0)
            return parse_datetime(str(value)).replace(microsecond=0)
    except (InvalidOperation, ValueError) as exc:
        raise ValueProblem(f"{name}: cannot read {value!r} as {kind}") from exc
    raise ValueProblem(f"{name}: unknown field type {kind}")


def coerce_record(spec: ClassSpec, record: dict[str, Any], partial: bool = False) -> dict[str, Any]:
    """Validate and type a whole record (or a partial update). Unknown fields are refused."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name.startswith("$"):
            continue
        if name == spec.lines_name:
            if not isinstance(value, list):
                raise ValueProblem(f"{name}: expected a list of lines")
            lines = []
            for line in value:
                if not isinstance(line, dict):
                    raise ValueProblem(f"{name}: each line must be an object")
                unknown = set(line) - set(spec.line_fields)
                if unknown:
                    raise ValueProblem(f"{name}: unknown line field(s) {', '.join(sorted(unknown))}")
                lines.append({k: coerce(spec.line_fields[k], v, k) for k, v in line.items()})
            out[name] = lines
            continue
        if name not in spec.fields:
            raise ValueProblem(f"unknown field {name} for class {spec.name}")
        out[name] = coerce(spec.fields[name], value, name)
    if not partial:
        for key in spec.key:
            if not out.get(key):
                raise ValueProblem(f"missing key field {key}")
    return out


# --- wire format ----------------------------------------------------------------------------

def format_datetime(value: datetime) -> str:
    """X3 audit stamps on the wire: ISO-8601 UTC, whole seconds, ``Z`` suffix."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Decimals leave json.dumps as marked strings and are unquoted afterwards: the C encoder stays
# fast, and no amount ever passes through float. The marker is a private-use character.
_MARK = "\ue000"
_MARKED = re.compile('"' + _MARK + r"(-?[0-9]+(?:\.[0-9]+)?)" + _MARK + '"')


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite Decimal cannot be written as JSON")
        # 'f' keeps the stored scale (1234.50 -> "1234.50") and never uses an exponent.
        return _MARK + format(value, "f") + _MARK
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """JSON text in which ``Decimal`` values are exact number literals (never via float)."""
    text = json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    return _MARKED.sub(lambda match: match.group(1), text)
