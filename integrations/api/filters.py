"""Query-string filters declared on each view, validated strictly and documented in the schema.

A bad value is a 400 naming the parameter and what it accepts, never a silently empty list.
Only indexed lookups are offered on the big tables (records, audit): exact matches and prefix
searches, no ``icontains``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INT, TEXT, CHOICE, PREFIX, SINCE, UNTIL = "int", "text", "choice", "prefix", "since", "until"


@dataclass(frozen=True)
class Filter:
    """One query parameter: ``field`` is the model lookup it filters on."""

    param: str
    field: str
    kind: str = TEXT
    choices: tuple[str, ...] = ()
    help: str = ""

    def openapi(self) -> OpenApiParameter:
        types = {INT: OpenApiTypes.INT, SINCE: OpenApiTypes.DATETIME, UNTIL: OpenApiTypes.DATETIME}
        return OpenApiParameter(self.param, types.get(self.kind, OpenApiTypes.STR), OpenApiParameter.QUERY,
                                description=self.help, enum=list(self.choices) or None)


def _is_date(raw: str) -> bool:
    return bool(_DATE_RE.match(raw))


class OutOfRange(ValueError):
    """A real date or time that the database cannot be asked about (before year 1 or after 9999 in UTC)."""


def _moment(raw: str, *, end_of_day: bool) -> datetime | None:
    """A datetime, or a date meaning the start of that day (or the start of the next one).

    ``None`` when ``raw`` is no date or time at all; :class:`OutOfRange` when it is one whose
    bound falls outside what a datetime can hold in UTC (the day after 9999-12-31, or an offset
    that moves 0001-01-01 or 9999-12-31 across the edge): the database is given UTC.
    """
    try:
        if _is_date(raw):
            day = parse_date(raw)
            moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, time.min)
        else:
            moment = parse_datetime(raw)
    except OverflowError:
        raise OutOfRange(raw) from None
    except ValueError:  # well formed but impossible, e.g. 2024-02-30
        return None
    if moment is None:
        return None
    try:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise OutOfRange(raw) from None
    return moment


def _apply(queryset: QuerySet, spec: Filter, raw: str, errors: dict[str, str]) -> QuerySet:
    if spec.kind == INT:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            errors[spec.param] = f"must be a whole number, not {raw!r}"
            return queryset
        return queryset.filter(**{spec.field: int(raw)})
    if spec.kind == CHOICE:
        if raw not in spec.choices:
            errors[spec.param] = f"{raw!r} is not one of {', '.join(spec.choices)}"
            return queryset
        return queryset.filter(**{spec.field: raw})
    if spec.kind == PREFIX:
        return queryset.filter(**{f"{spec.field}__startswith": raw})
    if spec.kind in (SINCE, UNTIL):
        if "T" in raw:
            raw = raw.replace(" ", "+")  # an unencoded "+02:00" arrives as " 02:00"
        date_only = _is_date(raw)
        try:
            moment = _moment(raw, end_of_day=spec.kind == UNTIL)
        except OutOfRange:
            errors[spec.param] = (
                f"{raw!r} is out of range: a date here includes its whole day, so the last one accepted is 9999-12-30"
                if date_only and spec.kind == UNTIL else
                f"{raw!r} is out of range: it must fall between 0001-01-01 and 9999-12-31 in UTC")
            return queryset
        if moment is None:
            errors[spec.param] = f"must be a date (2024-05-31) or an ISO 8601 datetime, not {raw!r}"
            return queryset
        if spec.kind == SINCE:
            return queryset.filter(**{f"{spec.field}__gte": moment})
        # a plain date includes the whole day; a datetime is an inclusive bound
        return queryset.filter(**{f"{spec.field}__lt" if date_only else f"{spec.field}__lte": moment})
    return queryset.filter(**{spec.field: raw})


class DeclaredFilterBackend(BaseFilterBackend):
    """Applies ``view.filters`` to list requests; every bad parameter is reported at once."""

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        if getattr(view, "action", None) != "list":
            return queryset
        errors: dict[str, str] = {}
        for spec in getattr(view, "filters", ()):
            raw = request.query_params.get(spec.param)
            if raw is None or raw == "":
                continue
            if "\x00" in raw:  # PostgreSQL refuses NUL in a string literal: say so before it does
                errors[spec.param] = "must not contain NUL (\\x00) characters"
                continue
            queryset = _apply(queryset, spec, raw.strip(), errors)
        if errors:
            raise ValidationError(errors)
        return queryset

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        # drf-spectacular reads OpenApiParameter objects through extend_schema; the views add
        # them there, so the plain-DRF hook has nothing extra to say.
        return []


def parameters(filters: tuple[Filter, ...]) -> list[OpenApiParameter]:
    return [spec.openapi() for spec in filters]
