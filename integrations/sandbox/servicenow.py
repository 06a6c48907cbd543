"""A faithful in-memory ServiceNow instance: Table API, Batch API, OAuth, users and roles.

See API_FACTS section 1. The pieces live in small modules: ``snquery`` (encoded queries),
``snstore`` (tables of strings), ``sntable`` (Table API), ``snauth`` (Basic and OAuth) and
``snseed`` (the demo instance). This module ties them together and adds the Batch API,
ServiceNow's error shapes for faults, and the helpers tests use to seed and inspect state.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from .base import DropResponse, Faults, SimRequest, SimResponse, Simulator
from .clock import ClockFn
from .snauth import ACCESS_LIFETIME, OAuthClient, TokenIssuer, basic_credentials, bearer_token
from .snstore import Table, TableStore, stable_sys_id
from .sntable import TableApi, base_url, error

BATCH_PATH = re.compile(r"^/api/now/(?:v1/)?batch/?$")
# [U] the wording of the real page; what matters is HTTP 200 with HTML where JSON was asked for.
HIBERNATION_PAGE = (
    "<!DOCTYPE html><html><head><title>Instance Hibernating page</title></head>"
    "<body><h1>Your instance is hibernating</h1><p>Sign in to the developer site to wake it up.</p></body></html>"
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ServiceNowSimulator(Simulator):
    """One ServiceNow instance.

    Args:
        faults: fault injection (see :class:`Faults`).
        clock: returns "now" for ``sys_created_on``/``sys_updated_on`` (aware UTC datetime,
            second precision); inject a :class:`~integrations.sandbox.clock.ManualClock`
            to make rows share a timestamp on purpose.
        timer: epoch seconds for token expiry (``time.time`` by default).
        batch_max_items: Batch API items serviced per call; the rest are reported in
            ``unserviced_requests``. None means unlimited.
        strict_columns: behave like a real instance for every table: a written column the
            table does not define (itself or through ``super_class``) is dropped silently, and a
            query condition on it is ignored. Off by default: tables learn written columns.
        hibernating: answer every request with HTTP 200 and an HTML page, as a developer
            instance that went to sleep (or one in maintenance) does (API_FACTS 9). Settable.
    """

    name = "servicenow"

    def __init__(
        self,
        faults: Faults | None = None,
        clock: ClockFn | None = None,
        timer: Callable[[], float] = time.time,
        batch_max_items: int | None = 1000,
        *,
        strict_columns: bool = False,
        hibernating: bool = False,
    ) -> None:
        super().__init__(faults)
        self.store = TableStore(clock, strict=strict_columns)
        self.hibernating = hibernating
        self.auth = TokenIssuer(timer)
        self.table_api = TableApi(self.store)
        self.passwords: dict[str, str | None] = {}
        self.batch_max_items = batch_max_items
        self.rate_limit_per_hour = 100
        self._install_system_tables()

    # --- schema and seed helpers ----------------------------------------------------------
    def _install_system_tables(self) -> None:
        self.install_table(
            "sys_db_object", "Table", ["name", "label", "super_class"], references={"super_class": "sys_db_object"}
        )
        self.install_table("sys_dictionary", "Dictionary Entry",
                           ["name", "element", "column_label", "internal_type", "max_length", "reference"])
        for table in list(self.store.tables.values()):  # the two registries describe themselves too
            self.store.describe(table)
        self.install_table("sys_user", "User", ["user_name", "first_name", "last_name", "name", "email", "active"])
        self.install_table("sys_user_role", "Role", ["name", "description"])
        self.install_table(
            "sys_user_has_role",
            "User Role",
            ["user", "role", "inherited", "state"],
            references={"user": "sys_user", "role": "sys_user_role"},
            defaults={"inherited": "false", "state": "active"},
        )

    def install_table(
        self,
        name: str,
        label: str | None = None,
        fields: list[str] | None = None,
        references: dict[str, str] | None = None,
        defaults: dict[str, Any] | None = None,
        roles: list[str] | None = None,
        strict: bool = False,
        number_prefix: str | None = None,
        super_class: str | None = None,
    ) -> Table:
        """Install (or extend) a table, registered in ``sys_db_object`` and ``sys_dictionary``.

        ``fields`` are declared columns (a query on any other column is silently ignored
        until a row carries it, or always in strict mode); ``references`` maps a column to the
        table it points at; ``roles``: the caller needs one of them (or ``admin``) or gets 403;
        ``strict`` drops unknown columns on write like a real schema; ``number_prefix``
        auto-numbers the ``number`` column (e.g. ``INV0001001``); ``super_class`` names the table
        this one extends: its columns are this table's too, listed in ``sys_dictionary`` under it.
        """
        with self.lock:
            return self.store.install(name, label, fields, references, defaults, roles, strict, number_prefix,
                                      super_class)

    define_table = install_table

    def uninstall_table(self, name: str) -> None:
        """Remove a table and its rows (the plugin is not licensed on this instance)."""
        with self.lock:
            self.store.uninstall(name)

    def drop_column(self, table: str, column: str) -> None:
        """The instance has no such column on ``table`` (e.g. the customer never created it)."""
        with self.lock:
            self.store.drop_column(table, column)

    def insert(self, table: str, record: dict[str, Any]) -> dict[str, str]:
        """Seed a row directly (no HTTP, no faults). May set system fields. Returns a copy."""
        with self.lock:
            return dict(self.store.insert(table, record, trusted=True))

    def rows(self, table: str) -> list[dict[str, str]]:
        """Copies of a table's stored rows (raw strings, references as sys_ids)."""
        with self.lock:
            return [dict(row) for row in self.store.require(table).rows.values()]

    def update(self, table: str, sys_id: str, values: dict[str, Any]) -> dict[str, str]:
        """Update a row as a user in the UI would: bumps ``sys_updated_on`` and the mod count."""
        with self.lock:
            row = self.store.update(table, sys_id, values, user="admin")
            if row is None:
                raise LookupError(f"{table}/{sys_id} not found")
            return dict(row)

    def approve(self, table: str, sys_id: str, field: str = "approval", value: str = "approved") -> dict[str, str]:
        """An AP clerk approves a staged invoice in ServiceNow."""
        return self.update(table, sys_id, {field: value})

    # --- users, roles, OAuth clients ------------------------------------------------------
    def add_user(
        self, username: str, password: str | None = None, roles: list[str] | tuple[str, ...] = ()
    ) -> dict[str, str]:
        """Create (or reset) a ``sys_user``; password None means no Basic login."""
        with self.lock:
            sys_id = stable_sys_id("sys_user", username)
            users = self.store.require("sys_user")
            if sys_id not in users.rows:
                first, _, last = username.replace("_", ".").partition(".")
                self.store.insert(
                    "sys_user",
                    {
                        "sys_id": sys_id,
                        "user_name": username,
                        "first_name": first.title(),
                        "last_name": last.title(),
                        "name": f"{first.title()} {last.title()}".strip(),
                        "email": f"{username}@example.com",
                        "active": "true",
                    },
                    trusted=True,
                )
            self.passwords[username] = password
            for role in roles:
                self.grant_role(username, role)
            return dict(users.rows[sys_id])

    def _user_row(self, username: str) -> dict[str, str] | None:
        for row in self.store.require("sys_user").rows.values():
            if row.get("user_name") == username:
                return row
        return None

    def grant_role(self, username: str, role: str) -> None:
        with self.lock:
            user = self._user_row(username)
            if user is None:
                raise LookupError(f"no user {username!r}")
            role_id = stable_sys_id("sys_user_role", role)
            if role_id not in self.store.require("sys_user_role").rows:
                self.store.insert("sys_user_role", {"sys_id": role_id, "name": role}, trusted=True)
            links = self.store.require("sys_user_has_role").rows.values()
            if not any(r["user"] == user["sys_id"] and r["role"] == role_id for r in links):
                self.store.insert("sys_user_has_role", {"user": user["sys_id"], "role": role_id}, trusted=True)

    def revoke_role(self, username: str, role: str) -> None:
        with self.lock:
            user = self._user_row(username)
            role_id = stable_sys_id("sys_user_role", role)
            table = self.store.require("sys_user_has_role")
            for sys_id, row in list(table.rows.items()):
                if user is not None and row["user"] == user["sys_id"] and row["role"] == role_id:
                    del table.rows[sys_id]

    def roles_of(self, username: str) -> set[str]:
        with self.lock:
            user = self._user_row(username)
            if user is None:
                return set()
            roles = self.store.require("sys_user_role").rows
            links = self.store.require("sys_user_has_role").rows.values()
            return {
                roles[r["role"]]["name"]
                for r in links
                if r["user"] == user["sys_id"] and r.get("state") == "active" and r["role"] in roles
            }

    def add_oauth_client(self, client_id: str, secret: str, user: str | None = None) -> None:
        """Register an OAuth application; ``user`` is its OAuth Application User."""
        with self.lock:
            self.auth.clients[client_id] = OAuthClient(client_id, secret, user)

    def expire_tokens(self) -> None:
        """Expire every access token now, e.g. to test refresh-once-on-401."""
        with self.lock:
            self.auth.expire_all()

    def check_password(self, username: str, password: str) -> bool:
        user = self._user_row(username)
        expected = self.passwords.get(username)
        if user is None or expected is None or user.get("active") == "false":
            return False
        return secrets.compare_digest(expected.encode(), password.encode())

    def authenticate(self, request: SimRequest) -> str | None:
        """The calling user's name, from Basic credentials or a live Bearer token."""
        basic = basic_credentials(request)
        if basic is not None:
            return basic[0] if self.check_password(*basic) else None
        token = bearer_token(request)
        return self.auth.user_for(token) if token else None

    # --- HTTP -----------------------------------------------------------------------------
    def dispatch(self, request: SimRequest) -> SimResponse:
        if self.hibernating:
            return SimResponse.text(200, HIBERNATION_PAGE, "text/html; charset=utf-8")
        if request.path.rstrip("/") == "/oauth_token.do":
            return self.auth.token_endpoint(request, self.check_password, self.token_lifetime(ACCESS_LIFETIME))
        user = self.authenticate(request)
        if user is None:
            return error(
                401,
                "User Not Authenticated",
                "Required to provide Auth information",
                {"WWW-Authenticate": 'Basic realm="Service-now"'},
            )
        if BATCH_PATH.match(request.path):
            if request.method != "POST":
                return error(405, "Method not Supported", f"{request.method} is not supported on this resource")
            return self._batch(request, user)
        return self._route(request, user, self.maybe_drop)

    def _route(self, request: SimRequest, user: str, after_commit: Callable[[], None]) -> SimResponse:
        response = self.table_api.handle(request, user, self.roles_of(user), after_commit)
        if response is None:
            return error(400, "Requested URI does not represent any resource", None)
        return response

    def _batch(self, request: SimRequest, user: str) -> SimResponse:
        """``POST /api/now/v1/batch``: run each item through the Table API, as the same user.

        Items are not fault-injected one by one; the whole batch is committed first and only
        then may the response be lost (commit-then-drop), like a real timeout after commit.
        ``Faults.item_drop_rate`` adds a chance per committed write item that the answer is lost;
        with ``item_drop_mode="mid_batch"`` the items after that one are never run.
        ``Faults.item_error_rate`` answers an item 503 without running it.
        """
        try:
            payload = json.loads(request.body or b"null")
            items = payload["rest_requests"]
            if not isinstance(items, list):
                raise TypeError("rest_requests must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            return error(400, "Exception while reading request", f"Invalid batch request: {exc}")
        limit = len(items) if self.batch_max_items is None else self.batch_max_items
        serviced, unserviced, wrote, ack_lost = [], [], False, False
        for index, item in enumerate(items):
            item_id = str(item.get("id", index)) if isinstance(item, dict) else str(index)
            if index >= limit or not isinstance(item, dict):
                unserviced.append(item_id)
                continue
            started = time.perf_counter()
            inner = self._inner_request(request, item)
            if not isinstance(inner, SimResponse) and self.item_fails():  # this item only: a 503, not run
                inner = self.transient_response(inner)
            if isinstance(inner, SimResponse):
                response = inner
            else:
                wrote = wrote or inner.method in WRITE_METHODS
                response = self._route(inner, user, lambda: None)
            entry: dict[str, Any] = {
                "id": item_id,
                "body": base64.b64encode(response.body).decode("ascii"),
                "status_code": response.status,
                "status_text": HTTPStatus(response.status).phrase,
                "headers": []
                if item.get("exclude_response_headers")
                else [{"name": k, "value": v} for k, v in response.headers.items()],
                "execution_time": int((time.perf_counter() - started) * 1000),
            }
            if response.status >= 400:
                entry["error_message"] = HTTPStatus(response.status).phrase
            serviced.append(entry)
            if not isinstance(inner, SimResponse) and inner.method in WRITE_METHODS and response.status < 400 \
                    and self.item_ack_lost():
                if self.faults.item_drop_mode == "mid_batch":
                    raise DropResponse(f"{self.name}: batch cut short after item {item_id} committed")
                ack_lost = True
        body = {
            "batch_request_id": payload.get("batch_request_id"),
            "serviced_requests": serviced,
            "unserviced_requests": unserviced,
        }
        response = SimResponse.json(200, body)
        if ack_lost:
            raise DropResponse(f"{self.name}: batch committed, acknowledgement lost")
        if wrote:
            self.maybe_drop()
        return response

    @staticmethod
    def _inner_request(outer: SimRequest, item: dict[str, Any]) -> SimRequest | SimResponse:
        url = str(item.get("url") or "")
        method = str(item.get("method") or "GET").upper()
        if not url.startswith("/"):
            return error(400, "Requested URI does not represent any resource", None)
        headers = {str(h.get("name")): str(h.get("value")) for h in item.get("headers") or [] if isinstance(h, dict)}
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        auth = outer.header("Authorization")
        if auth:
            headers["Authorization"] = auth
        try:
            body = base64.b64decode(item.get("body") or "", validate=True)
        except (binascii.Error, ValueError):
            return error(400, "Exception while reading request", "body is not valid base64")
        return SimRequest(method, base_url(outer) + url, headers, body)

    # --- the system's own fault shapes -----------------------------------------------------
    def transient_response(self, request: SimRequest) -> SimResponse:
        return error(503, "Service Unavailable", "The instance is temporarily unable to service the request")

    def rate_limited_response(self, request: SimRequest) -> SimResponse:
        retry_after = self.faults.retry_after
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": str(self.rate_limit_per_hour),
            "X-RateLimit-Reset": str(int(time.time()) + retry_after),
            "X-RateLimit-Rule": stable_sys_id("sys_rate_limit_rules", "table-api"),
        }
        detail = f"Rate limit of {self.rate_limit_per_hour} requests per hour for Table API exceeded"
        return error(429, "Rate limit exceeded", detail, headers)

    # --- demo -----------------------------------------------------------------------------
    def seed_demo(self) -> ServiceNowSimulator:
        """Install the demo instance (see :mod:`integrations.sandbox.snseed`)."""
        from .snseed import seed_demo

        with self.lock:
            seed_demo(self)
        return self
