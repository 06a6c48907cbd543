"""The ServiceNow Table API (``/api/now[/v1|/v2]/table/...``) over a :class:`TableStore`.

Follows API_FACTS 1.1: 201 + ``Location`` on insert, 204 on delete, 404 for a missing
record, 400 ``Invalid table <name>`` for a table that is not installed, ``X-Total-Count``
and a ``Link`` header (first/prev/next/last, omitted on a single page) on lists, v1 answering
an empty list with 404 where v2 (the default) answers 200 ``{"result": []}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .base import SimRequest, SimResponse
from .snquery import EncodedQuery
from .snstore import Table, TableStore

TABLE_PATH = re.compile(r"^/api/now/(?:(?P<version>v1|v2)/)?table/(?P<table>[^/]+)(?:/(?P<sys_id>[^/]+))?/?$")
DEFAULT_LIMIT = 10000
NO_RECORD = "No Record found"


def error(status: int, message: str, detail: str | None = None, headers: dict[str, str] | None = None) -> SimResponse:
    """ServiceNow's error envelope, used for every 4xx/5xx of the REST APIs."""
    return SimResponse.json(status, {"error": {"message": message, "detail": detail}, "status": "failure"}, headers)


def base_url(request: SimRequest) -> str:
    parts = urlsplit(request.url)
    return f"{parts.scheme}://{parts.netloc}"


def _flag(request: SimRequest, name: str) -> bool:
    return (request.param(name) or "").lower() == "true"


def _int_param(request: SimRequest, name: str, default: int) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    return int(raw)  # ValueError is turned into a 400 by the caller


def _fields(request: SimRequest) -> list[str] | None:
    raw = request.param("sysparm_fields")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw else None


def link_header(url: str, offset: int, limit: int, total: int | None, has_more: bool) -> str | None:
    """The ``Link`` header in the real wire form ``<url>;rel="first",<url>;rel="next",...``.

    Omitted when everything fits on one page; ``prev``/``next`` only when they exist; ``last``
    only when the total is known (it is not with ``sysparm_no_count=true``) [U for that case].
    """
    if offset == 0 and not has_more:
        return None
    parts = urlsplit(url)
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("sysparm_offset", "sysparm_limit")
    ]

    def at(page_offset: int) -> str:
        query = urlencode([*kept, ("sysparm_offset", str(page_offset)), ("sysparm_limit", str(limit))])
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    links = [(at(0), "first")]
    if offset > 0:
        links.append((at(max(0, offset - limit)), "prev"))
    if has_more:
        links.append((at(offset + limit), "next"))
    if total is not None and total > 0:
        links.append((at((total - 1) // limit * limit), "last"))
    return ",".join(f'<{link}>;rel="{rel}"' for link, rel in links)


class TableApi:
    """Routes one Table API request. ``after_commit`` runs after each committed write."""

    def __init__(self, store: TableStore) -> None:
        self.store = store

    def handle(
        self,
        request: SimRequest,
        user: str,
        roles: set[str],
        after_commit: Callable[[], None],
    ) -> SimResponse | None:
        """The response, or None when the path is not a Table API path."""
        match = TABLE_PATH.match(request.path)
        if match is None:
            return None
        table = self.store.get(match["table"])
        if table is None:
            # Same answer whatever the caller's roles: the table simply is not there.
            return error(400, f"Invalid table {match['table']}")
        if table.roles and not (roles & table.roles) and "admin" not in roles:
            # [U] exact detail text; 403 "User Not Authorized" is the documented message.
            return error(403, "User Not Authorized", f"Not authorized to access table {table.name}")
        sys_id, method = match["sys_id"], request.method
        try:
            if method == "GET":
                if sys_id:
                    return self._get_one(request, table, sys_id)
                return self._list(request, table, match["version"], self._user_id(user))
            if method == "POST" and not sys_id:
                return self._insert(request, table, user, after_commit)
            if method in ("PUT", "PATCH") and sys_id:
                return self._update(request, table, sys_id, user, after_commit)
            if method == "DELETE" and sys_id:
                if not self.store.delete(table.name, sys_id):
                    return error(404, NO_RECORD, "Record doesn't exist or ACL restricts the record deletion")
                return SimResponse(204)
        except ValueError as exc:
            return error(400, "Invalid request", str(exc))
        return error(405, "Method not Supported", f"{method} is not supported on this resource")

    # --- reads ----------------------------------------------------------------------------
    def _user_id(self, username: str) -> str:
        """The caller's sys_id (``javascript:gs.getUserID()``); empty for a user without a record."""
        users = self.store.get("sys_user")
        found = next((row for row in (users.rows.values() if users else ()) if row.get("user_name") == username), None)
        return found["sys_id"] if found else ""

    def _list(self, request: SimRequest, table: Table, version: str | None, user_id: str = "") -> SimResponse:
        limit = _int_param(request, "sysparm_limit", DEFAULT_LIMIT)
        offset = _int_param(request, "sysparm_offset", 0)
        if offset < 0:
            raise ValueError("sysparm_offset must not be negative")
        if limit < 1:
            limit = DEFAULT_LIMIT
        pairs = [(k, v[0]) for k, v in request.query.items() if not k.startswith("sysparm_") and v]
        query = EncodedQuery.parse(request.param("sysparm_query"), user_id).and_equals(pairs)
        query = query.prune(lambda name: self.store.knows(table, name))

        def get(row: dict[str, str], name: str) -> str | None:
            return self.store.resolve(table, row, name)

        rows = [row for row in table.rows.values() if query.matches(lambda name, r=row: get(r, name))]
        rows = query.sort(rows, get)
        total = len(rows)
        page = rows[offset : offset + limit]
        if not page and version == "v1":
            return error(404, NO_RECORD, "Records matching query not found. Check query parameter or offset parameter")
        headers: dict[str, str] = {}
        counted = not _flag(request, "sysparm_no_count")
        if counted:
            headers["X-Total-Count"] = str(total)
        if not _flag(request, "sysparm_suppress_pagination_header"):
            link = link_header(request.url, offset, limit, total if counted else None, offset + limit < total)
            if link:
                headers["Link"] = link
        result = [self._render(request, table, row) for row in page]
        return SimResponse.json(200, {"result": result}, headers)

    def _get_one(self, request: SimRequest, table: Table, sys_id: str) -> SimResponse:
        row = table.rows.get(sys_id)
        if row is None:
            return error(404, NO_RECORD, "Record doesn't exist or ACL restricts the record retrieval")
        return SimResponse.json(200, {"result": self._render(request, table, row)})

    def _render(self, request: SimRequest, table: Table, row: dict[str, str]) -> dict[str, Any]:
        # sysparm_display_value is accepted but values are always returned raw [U].
        return self.store.render(
            table,
            row,
            base_url(request),
            fields=_fields(request),
            reference_links=not _flag(request, "sysparm_exclude_reference_link"),
        )

    # --- writes ---------------------------------------------------------------------------
    def _payload(self, request: SimRequest) -> dict[str, Any] | SimResponse:
        try:
            payload = json.loads(request.body or b"{}", parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            return error(400, "Exception while reading request", "The payload is not valid JSON.")
        if not isinstance(payload, dict):
            # The Table API inserts exactly one record per call.
            return error(400, "Exception while reading request", "The payload must be a single JSON object.")
        return payload

    def _written(self, request: SimRequest, table: Table, row: dict[str, str], status: int) -> SimResponse:
        headers: dict[str, str] = {}
        if status == 201:
            headers["Location"] = f"{base_url(request)}/api/now/table/{table.name}/{row['sys_id']}"
        if (request.header("X-no-response-body") or "").lower() == "true":
            return SimResponse(status, b"", headers)
        return SimResponse.json(status, {"result": self._render(request, table, row)}, headers)

    def _insert(self, request: SimRequest, table: Table, user: str, after_commit: Callable[[], None]) -> SimResponse:
        payload = self._payload(request)
        if isinstance(payload, SimResponse):
            return payload
        row = self.store.insert(table.name, payload, user=user)
        response = self._written(request, table, row, 201)
        after_commit()
        return response

    def _update(
        self, request: SimRequest, table: Table, sys_id: str, user: str, after_commit: Callable[[], None]
    ) -> SimResponse:
        payload = self._payload(request)
        if isinstance(payload, SimResponse):
            return payload
        row = self.store.update(table.name, sys_id, payload, user=user)
        if row is None:
            return error(404, NO_RECORD, "Record doesn't exist or ACL restricts the record retrieval")
        response = self._written(request, table, row, 200)
        after_commit()
        return response
