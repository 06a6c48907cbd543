"""Pagination: cursors on the big, growing tables (never a COUNT(*)), pages on the small ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination, PageNumberPagination


class _Cursor(CursorPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_cursor_message = "Invalid cursor: follow the next or previous link of a page of this list."

    def paginate_queryset(self, queryset: QuerySet, request: Any, view: Any = None) -> list[Any] | None:
        self._model = queryset.model  # decode_cursor checks the position against the ordering field
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Any) -> Cursor | None:
        """DRF's decoding, plus a check of the position the cursor carries.

        DRF filters on the position as it comes (``created_at < p``), so a cursor whose
        position is not a value of the ordering field reached the database: a date that is
        not a date was Django's ValidationError, one beyond year 9999 in UTC an
        OverflowError, both a 500. Such a cursor was not made by us: it is an invalid cursor.
        """
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            value = field.to_python(cursor.position)
            field.run_validators(value)
            if isinstance(value, datetime):
                aware = timezone.make_aware(value) if timezone.is_naive(value) else value
                aware.astimezone(UTC)  # what the database is given; out of range near year 1 or 9999
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None
        return cursor


class RecordCursor(_Cursor):
    # matches the record_queue_idx / record_status_idx indexes (…, -updated_at)
    ordering = ("-updated_at", "-id")


class RunCursor(_Cursor):
    # matches run_latest_idx (integration, stream, -started_at)
    ordering = ("-started_at", "-id")


class AuditCursor(_Cursor):
    # matches audit_tenant_time_idx (tenant, -created_at)
    ordering = ("-created_at", "-id")


class SmallPages(PageNumberPagination):
    """Connections, integrations and mappings: small per tenant, so a count is cheap and useful."""

    page_size_query_param = "page_size"
    max_page_size = 500
