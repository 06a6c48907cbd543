"""SYSPRO's OData feed as a second read path (``settings.odata_url``), read only.

Facts followed (API_FACTS 5.3 [D]): the SYSPRO OData Service (OData 4.0 on IIS, HTTPS with Basic
auth, read only) exposes company tables by their names; at most 5000 rows come back per request
[3P]. What is [U] (no public example): the entity set of a table being the table's name (every
one can be renamed per connection, ``odata_entity_sets``), the column names being COMFND's
(the ``columns`` setting serves both paths), the type of date columns (``Edm.Date`` by default:
``odata_dates`` "datetime" for installs that type them ``Edm.DateTimeOffset``), which key columns
are numbers (seen in the answers; ``odata_number_columns`` for the ones a read names before it
has seen them) and the exact error texts.

How the reader pages. Every request asks ``$top`` rows (``odata_page_size``, at most 5000) in
(date, key) order, its ``$filter`` starting strictly after the last row the previous page gave
(the same (date, key) seek as COMFND's; ``$skip`` stays 0). ``@odata.nextLink`` is never
followed, and a page shorter than ``$top`` is not taken for the end: a server may cap its pages
below ``$top`` (a 1000-row cap behind a 5000 ``$top``). The end is an empty page, or, when the
server states ``@odata.count`` (asked with ``$count=true``), a page that holds every row the count
says remain. A seek is also what keeps a row edited during the read (its date moving to today)
from shifting the next page the way an offset would and being skipped.

Values: amounts are parsed straight to :class:`~decimal.Decimal` (``parse_float``) and every value
is handed on as the text COMFND would give (a number as written, no exponent; ``null`` as ""),
so the flows see the same rows on both paths. A server that drops trailing zeros ("12.5" for
COMFND's "12.50") gives equal amounts with another text [U]. Dates come as ``YYYY-MM-DD`` or
``YYYY-MM-DDT00:00:00`` and are cut to the day where the client reads them.

Only GET is ever sent: the reader has no other verb.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from integrations.systems.errors import AuthError, SyncError, SystemicError, TransientError
from integrations.systems.http import HttpClient, decode_json, parse_retry_after, unexpected_answer
from integrations.systems.redaction import redact_text
from integrations.systems.schema import INT, LIST, MAP, TEXT, Setting

SYSTEM = "SYSPRO OData"
MAX_PAGE = 5000  # rows per request [3P: the OData service's cap]
Condition = tuple[str, str, str]  # (column, EQ|GT|GE|LT|LE, value), as the COMFND path has them
_OPERATORS = {"EQ": "eq", "NE": "ne", "GT": "gt", "GE": "ge", "LT": "lt", "LE": "le"}

SETTINGS = (
    Setting("odata_url", TEXT, max_length=500,
            help="SYSPRO's OData feed for this company, e.g. https://syspro.acme.local/odata/EDU1. When set, every "
                 "table is read there (read only, Basic auth with the operator and its password) instead of "
                 "through e.net COMFND queries; leave empty when the site does not run the OData service."),
    Setting("odata_entity_sets", MAP,
            help="OData entity set names that differ from the table names, per table, e.g. "
                 "{\"invoice\": \"ApInvoices\"}."),
    Setting("odata_page_size", INT, default=MAX_PAGE, minimum=1, maximum=MAX_PAGE,
            help="Rows asked per OData request ($top); SYSPRO's OData service sends at most 5000."),
    Setting("odata_dates", TEXT, default="date", choices=("date", "datetime"),
            help="How dates are written in OData filters: 'date' (2026-01-05, Edm.Date) or 'datetime' "
                 "(2026-01-05T00:00:00Z, for feeds that type dates Edm.DateTimeOffset)."),
    Setting("odata_number_columns", LIST,
            help="Key columns the OData feed types as numbers (compared without quotes), e.g. [\"Journal\"]. "
                 "Columns whose values come back as numbers are noticed without it."),
)


def url_problem(url: Any) -> str:
    """Why ``odata_url`` cannot be used ("" when it can)."""
    if url in (None, ""):
        return ""
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "odata_url: must be an http(s) URL, e.g. https://syspro.acme.local/odata/EDU1"
    if parts.query or parts.fragment:
        return "odata_url: the feed's root only, without a query (?…) or fragment (#…)"
    return ""


def basic_token(operator: str, password: str) -> str:
    """The Basic credentials as sent (masked wherever text is logged, like the password itself)."""
    return base64.b64encode(f"{operator}:{password}".encode()).decode("ascii")


def as_text(value: Any) -> str:
    """A JSON value as the text COMFND gives for it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"  # [U] SYSPRO keeps flags as Y/N text
    if isinstance(value, Decimal):
        return format(value, "f")  # as written: never an exponent
    return str(value)


def _day(value: str) -> str:
    return value.strip()[:10]


class ODataReader:
    """Reads SYSPRO tables through OData: rows of text keyed by the physical column names."""

    def __init__(self, http: HttpClient, *, operator: str, page_size: int = MAX_PAGE, dates: str = "date",
                 numbers: Sequence[str] = (), max_url_chars: int = 8000) -> None:
        self.http = http
        self.operator = operator
        self.page_size = max(1, min(int(page_size), MAX_PAGE))
        self.dates = dates
        self.numbers = {n.lower() for n in numbers}  # grows with every number seen in an answer
        self.max_url_chars = max_url_chars

    # --- $filter --------------------------------------------------------------------------------
    def literal(self, column: str, value: str, is_date: bool = False) -> str:
        if is_date:
            day = _day(value)
            return f"{day}T00:00:00Z" if self.dates == "datetime" else day
        if column.lower() in self.numbers:
            text = value.strip()
            try:
                Decimal(text)
            except ArithmeticError:
                raise SystemicError(f"{SYSTEM}: {column} is typed as a number but {text[:40]!r} is none") from None
            return text
        return "'" + value.replace("'", "''") + "'"

    def condition(self, condition: Condition, date_column: str = "") -> str:
        column, operator, value = condition
        is_date = bool(date_column) and column == date_column
        return f"{column} {_OPERATORS[operator]} {self.literal(column, value, is_date)}"

    def all_of(self, conditions: Sequence[Condition], date_column: str = "") -> str:
        return " and ".join(self.condition(c, date_column) for c in conditions)

    def any_of(self, groups: Sequence[Sequence[Condition]], date_column: str = "") -> str:
        parts = [self.all_of(g, date_column) for g in groups if g]
        if len(parts) == 1:
            return parts[0]
        return " or ".join(f"({p})" for p in parts)

    @staticmethod
    def join(*parts: str) -> str:
        present = [p for p in parts if p]
        return present[0] if len(present) == 1 else " and ".join(f"({p})" for p in present)

    # --- requests -------------------------------------------------------------------------------
    def path(self, entity: str, select: Sequence[str], where: str, order: Sequence[str], top: int) -> str:
        options = [("$select", ",".join(select))]
        if where:
            options.append(("$filter", where))
        options += [("$orderby", ",".join(order)), ("$top", str(top)), ("$count", "true")]
        return quote(entity, safe="") + "?" + "&".join(f"{k}={quote(v, safe=',')}" for k, v in options)

    def fits(self, entity: str, select: Sequence[str], where: str, order: Sequence[str]) -> bool:
        return len(self.http.base_url) + len(self.path(entity, select, where, order, self.page_size)) + 50 \
            <= self.max_url_chars

    def get(self, entity: str, select: Sequence[str], where: str, order: Sequence[str], top: int | None = None
            ) -> tuple[list[dict[str, str]], int | None]:
        """One page: rows as text keyed by ``select``, and the rows the server says match (or None)."""
        response = self.http.request("GET", self.path(entity, select, where, order, top or self.page_size))
        body = decode_json(response, SYSTEM, parse_float=Decimal)
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                raise SystemicError(f"{SYSTEM} refused reading {entity}: {self._message(body)}")
            raise unexpected_answer(response, SYSTEM, "JSON without a 'value' list of rows")
        wanted = [(name, name.lower()) for name in select]
        rows = []
        for item in body["value"]:
            if not isinstance(item, dict):
                raise unexpected_answer(response, SYSTEM, "a row that is not a JSON object")
            values = {str(k).lower(): v for k, v in item.items()}
            for lower, value in values.items():
                if isinstance(value, int | Decimal) and not isinstance(value, bool):
                    self.numbers.add(lower)
            rows.append({name: as_text(values.get(lower)) for name, lower in wanted})
        count = body.get("@odata.count")
        return rows, (count if isinstance(count, int) and not isinstance(count, bool) else None)

    def iter_rows(self, entity: str, columns: Sequence[str], date_column: str, keys: Sequence[str], *,
                  since_date: str = "", after: list[str] | None = None, until_date: str = "",
                  where: str = "") -> Iterator[list[dict[str, str]]]:
        """Pages in (date, key) order from ``since_date`` (``ge``), or strictly after (since_date,
        after) when ``after`` is given (a key or a key prefix); see the module docstring for the end."""
        keys = list(keys)
        order = [date_column, *keys] if date_column else keys
        select = list(dict.fromkeys([*columns, *order]))
        base = self.join(where, self.condition((date_column, "LE", until_date), date_column)
                         if until_date and date_column else "")
        cursor = (since_date, after) if after and (since_date or not date_column) else None
        first = self.join(base, self.condition((date_column, "GE", since_date), date_column)
                          if since_date and date_column else "")
        while True:
            filter_ = self.join(base, self.after(date_column, keys, cursor)) if cursor else first
            rows, count = self.get(entity, select, filter_, order)
            if rows:
                yield rows
            if not rows or (count is not None and len(rows) >= count):
                return
            last = rows[-1]
            moved = (_day(last[date_column]) if date_column else "", [last[k] for k in keys])
            if moved == cursor:
                raise SystemicError(f"{SYSTEM} answered {entity} from the same position twice; it may ignore "
                                    "$orderby. Stopped rather than loop")
            cursor = moved

    def after(self, date_column: str, keys: list[str], cursor: tuple[str, list[str]]) -> str:
        """Strictly after (date, k1..km): (date eq d and k1 eq v1 … and km gt vm) or … or date gt d."""
        day, values = cursor
        same_day = [(date_column, "EQ", day)] if date_column else []
        groups = []
        for n in range(len(values)):
            equal = [(keys[i], "EQ", values[i]) for i in range(n)]
            groups.append([*same_day, *equal, (keys[n], "GT", values[n])])
        if date_column:
            groups.append([(date_column, "GT", day)])
        return self.any_of(groups, date_column)

    # --- errors ---------------------------------------------------------------------------------
    @staticmethod
    def _message(body: Any) -> str:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return ""
        message = error.get("message")
        if isinstance(message, dict):  # OData 2/3 put it in {"lang", "value"}
            message = message.get("value")
        code = str(error.get("code") or "").strip()
        text = str(message or "").strip()
        return f"{text} ({code})" if code and text else text or code

    def classify(self, response: requests.Response) -> SyncError | None:
        """An OData error (``{"error": {"code", "message"}}``) as a classified error, its text redacted."""
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
        detail = redact_text(self._message(body) or response.text[:300], self.http.secrets)
        status = response.status_code
        if status == 401:
            return AuthError(f"{SYSTEM} refused the credentials of operator {self.operator}: OData signs in with the "
                             "connection's operator and operator password (Basic auth); check both",
                             status=status, detail=detail, code="odata_auth")
        if status == 403:
            return SystemicError(f"{SYSTEM} does not let operator {self.operator} read this table", status=status,
                                 detail=detail)
        if status == 404:
            return SystemicError(f"{SYSTEM} has no such entity set ({detail or 'not found'}): check odata_url and "
                                 "the odata_entity_sets setting", status=status, detail=detail)
        if status in (400, 501):
            return SystemicError(f"{SYSTEM} refused the query: {detail or status}; check the connection's column "
                                 "names and odata_number_columns", status=status, detail=detail)
        if status >= 500:
            return TransientError(f"{SYSTEM} is unavailable for now (HTTP {status})", status=status, detail=detail,
                                  retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return None  # 429 and the rest: the common policy
