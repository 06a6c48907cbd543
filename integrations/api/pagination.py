"""Pagination: cursors on the big, growing tables (never a COUNT(*)), pages on the small ones."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination, PageNumberPagination


class _Cursor(CursorPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


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
