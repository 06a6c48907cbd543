"""Sage X3 over GraphQL (Xtrem): the same client interface as api1, so a flow never knows which.

``POST {server}/xtrem/api`` with ``x-xtrem-endpoint: <folder>`` (API_FACTS 2.2). Records come
back keyed by X3 column, as api1 gives them (the shape's names, amounts as ``Decimal``), mapped
from the installed schema by :mod:`.sage_x3_graphql_schema`. Reads page with Relay
``first``/``after`` until ``pageInfo.hasNextPage`` is false, filtered on ``_updateStamp`` and
ordered by (``_updateStamp``, ``_id``) so a checkpoint (update stamp, key) resumes strictly after
itself; ``_id`` is used where its description names the key column, else the key's own field.
An ``errors`` array in a 200 is classified by the HTTP policy's body hook: transient for outages
(never an empty page, never a moved checkpoint), a data error with X3's diagnoses for a refused
mutation, systemic for a query the schema does not take (the schema is introspected again once
first). Writes go through mutations where the install has them; where it has none, they go
through api1 REST on the same server with the same sign-in (Basic or X3's bearer token; a
connected application's JWT opens GraphQL only, so there ``create`` says that this install needs
the REST transport for writes).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from integrations.systems.auth import TokenStore, utcnow
from integrations.systems.errors import DataError, SyncError, SystemicError, TransientError
from integrations.systems.http import (
    CallCounter,
    HttpClient,
    HttpPolicy,
    decode_json,
    default_classifier,
    exact_json,
    unexpected_answer,
)
from integrations.systems.sage_x3 import DEFAULT_FIELDS, SageX3Client, X3Shape, x3_auth
from integrations.systems.sage_x3 import classify as classify_rest
from integrations.systems.sage_x3_graphql_auth import DEFAULT_VALIDITY, ConnectedApp, connected_app_auth, token_refusal
from integrations.systems.sage_x3_graphql_schema import INTROSPECTION, Column, InstalledSchema, NodeMap, map_schema
from integrations.systems.spec import ConnectionSpec, EventSink, ignore_event

API_PATH = "/xtrem/api"
LOOKUP_CHUNK = 40
LINE_PAGE = 1000
TRANSIENT_CODES = frozenset({"SERVICE_UNAVAILABLE", "TIMEOUT", "TOO_MANY_REQUESTS", "INTERNAL_SERVER_ERROR"})
SCHEMA_CODES = frozenset({"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"})
READ_CLASSES = ("GACCOUNT", "CACCE", "BPSUPPLIER", "PORDER", "PINVOICE")
WRITE_CLASSES = ("GACCENTRY", "PINVOICE", "BPSUPPLIER")
# Introspection results by connection (address, folder, credentials, overrides): a worker
# introspects once per connection; ``check()`` and a query the schema refuses refresh it.
_SCHEMAS: dict[tuple[str, ...], InstalledSchema] = {}
_SCHEMAS_LOCK = threading.Lock()


def forget_schemas() -> None:
    """Drop every cached introspection (tests; an install upgraded under a running worker)."""
    with _SCHEMAS_LOCK:
        _SCHEMAS.clear()


def classify_body(response: requests.Response) -> SyncError | None:
    """An ``errors`` array in a 2xx: what it means for the run (the HTTP policy's body hook)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None  # the caller reads the body and reports it as an unexpected answer
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors or not isinstance(errors, list):
        return None
    entries = [e for e in errors if isinstance(e, dict)]
    codes = {str((e.get("extensions") or {}).get("code") or "") for e in entries}
    message = "; ".join(str(e.get("message", "")) for e in entries)[:500]
    diagnoses = [d for e in entries for d in (e.get("extensions") or {}).get("diagnoses") or [] if isinstance(d, dict)]
    if codes & TRANSIENT_CODES:
        error = TransientError(f"Sage X3 GraphQL is temporarily unavailable: {message}", status=response.status_code,
                               code="graphql_unavailable")
        # nothing ran when nothing came back: a mutation may be sent again
        error.not_processed = body.get("data") is None and "INTERNAL_SERVER_ERROR" not in codes  # type: ignore[attr-defined]
        return error
    if diagnoses:
        text = "; ".join(str(d.get("message") or d.get("$message") or "") for d in diagnoses)
        return DataError(f"Sage X3 refused the record: {text}", status=response.status_code, detail=message,
                         code="refused")
    if codes & SCHEMA_CODES:
        return SystemicError(f"Sage X3's GraphQL schema does not take this query: {message}",
                             status=response.status_code, code="schema_mismatch")
    if codes & {"BAD_USER_INPUT", "FORBIDDEN", "UNAUTHENTICATED"}:
        return SystemicError(f"Sage X3 GraphQL refused the request: {message}", status=response.status_code,
                             code=next(iter(codes & {"BAD_USER_INPUT", "FORBIDDEN", "UNAUTHENTICATED"})).lower())
    # An unknown error: never an empty page. For a write, the policy marks it ambiguous.
    return TransientError(f"Sage X3 GraphQL answered with errors: {message}", status=response.status_code,
                          code="graphql_error")


def classify_status(response: requests.Response) -> SyncError | None:
    """A 4xx/5xx from ``/xtrem/api``: the message of a JSON ``errors`` body when there is one."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors or not isinstance(errors, list):
        return None
    error = default_classifier(response)
    error.message = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))[:300] or error.message
    if response.status_code == 400:
        return SystemicError(f"Sage X3 GraphQL refused the request: {error.message}", status=400)
    return error


def _literal(value: Any) -> str:
    """A string in Xtrem's filter syntax (single quotes, backslash-escaped)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _wire(value: Any) -> Any:
    """A payload value as a GraphQL input: decimals as their exact digits, dates in ISO."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _dig(data: Any, path: list[str]) -> Any:
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def _nest(path: list[str], inner: str) -> str:
    for name in reversed(path):
        inner = f"{name} {{ {inner} }}"
    return inner


class SageX3GraphQLClient:
    """One X3 folder over GraphQL, with :class:`~integrations.systems.sage_x3.SageX3Client`'s interface."""

    transport = "graphql"

    def __init__(self, spec: ConnectionSpec, http: HttpClient, cache_key: tuple[str, ...] = (),
                 rest: SageX3Client | None = None) -> None:
        self.spec = spec
        self.http = http
        self.rest = rest  # api1 on the same server and sign-in: the writes an install has no mutation for
        self.folder = spec.company or spec.setting("folder", "SEED")
        self.page_size = int(spec.setting("page_size", 200))
        self.type_overrides = spec.setting("graphql_types", {}) or {}
        self.field_overrides = spec.setting("graphql_fields", {}) or {}
        overrides = spec.setting("x3_fields", {}) or {}
        self.shapes = {klass: X3Shape(klass, klass, {**fields, **overrides.get(klass, {})})
                       for klass, fields in DEFAULT_FIELDS.items()}
        self.cache_key = (*cache_key, self.folder, json.dumps([self.type_overrides, self.field_overrides, overrides],
                                                              sort_keys=True))
        self._schema: InstalledSchema | None = None

    # --- the interface the flows use --------------------------------------------------------------
    def close(self) -> None:
        self.http.close()
        if self.rest is not None:
            self.rest.close()

    def shape(self, klass: str) -> X3Shape:
        return self.shapes[klass]

    def installed(self, refresh: bool = False) -> InstalledSchema:
        """The install's schema as the portal maps it: introspected once per connection."""
        if self._schema is not None and not refresh:
            return self._schema
        with _SCHEMAS_LOCK:
            cached = None if refresh else _SCHEMAS.get(self.cache_key)
        if cached is None:
            data = self._post(INTROSPECTION, {})
            schema = data.get("__schema") if isinstance(data, dict) else None
            if not isinstance(schema, dict):
                raise TransientError("Sage X3 GraphQL answered the introspection query without a schema",
                                     code="no_schema")
            classes = {klass: shape.fields.get("lines", "") for klass, shape in self.shapes.items()}
            cached = map_schema(schema, classes, self.type_overrides, self.field_overrides)
            with _SCHEMAS_LOCK:
                _SCHEMAS[self.cache_key] = cached
        self._schema = cached
        return cached

    def iter_pages(self, klass: str, *, since: str = "", after_key: str = "", order_by: list[str] | None = None,
                   count: int | None = None, where: str = "") -> Iterator[list[dict[str, Any]]]:
        """Pages of a class in (update stamp, key) order: updated since ``since`` (inclusive), or
        strictly after (``since``, ``after_key``); or those ``where`` (an Xtrem filter) selects, in
        key order. ``order_by``: X3 columns, as api1 takes them."""
        node = self._node(klass)
        shape = self.shapes[klass]
        stamp, key = self._field(node, shape["updated"]), self._key_field(node, shape["key"])
        if since and after_key:
            condition = (f"{{_or: [{{{stamp}: {{_gt: {_literal(since)}}}}}, "
                         f"{{{stamp}: {{_eq: {_literal(since)}}}, {key}: {{_gt: {_literal(after_key)}}}}}]}}")
        elif since:
            condition = f"{{{stamp}: {{_gte: {_literal(since)}}}}}"
        else:
            condition = where
        order = [self._field(node, column) for column in order_by] if order_by else (
            [key] if where and not since else [stamp, key])
        variables = {"first": count or self.page_size, "after": None, "filter": condition or None,
                     "orderBy": "{" + ", ".join(f"{name}: 1" for name in order) + "}"}
        while True:
            connection = self._page(klass, variables)
            edges = connection.get("edges")
            if not isinstance(edges, list):
                raise TransientError(f"Sage X3 GraphQL answered a {klass} page without edges", code="no_edges")
            rows = [self._row(self._node(klass), edge.get("node") if isinstance(edge, dict) else None) for edge in edges]
            if rows:
                yield rows
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            cursor = info.get("endCursor")
            if not cursor or cursor == variables["after"]:
                raise TransientError(f"Sage X3 GraphQL said more {klass} records follow but gave no new endCursor; "
                                     "what was read is kept", code="no_cursor")
            variables["after"] = cursor

    def find(self, klass: str, logical: str, values: list[str], **equal: str) -> list[dict[str, Any]]:
        """Records whose field ``logical`` is one of ``values`` (and each other logical field equal to its value)."""
        node = self._node(klass)
        shape = self.shapes[klass]
        wanted = sorted({str(v) for v in values if str(v)})
        extra = "".join(f", {self._field(node, shape[name])}: {{_eq: {_literal(value)}}}"
                        for name, value in sorted(equal.items()))
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = ", ".join(_literal(v) for v in wanted[start:start + LOOKUP_CHUNK])
            where = f"{{{self._field(node, shape[logical])}: {{_in: [{chunk}]}}{extra}}}"
            for page in self.iter_pages(klass, where=where):
                found.extend(page)
        return found

    def read(self, klass: str, key: str) -> dict[str, Any] | None:
        """One record with its lines."""
        found = self.find(klass, "key", [key])
        return next((row for row in found if str(self.shapes[klass].get(row, "key")) == key), None)

    def create(self, klass: str, payload: dict[str, Any]) -> dict[str, Any]:
        node = self._node(klass)
        if not node.create_path and self.rest is not None:
            return self.rest.create(klass, payload)
        if not node.create_path:
            raise SystemicError(
                f"This Sage X3 install's GraphQL schema has no create mutation for {node.type_name} ({klass}): it needs "
                "the REST transport (api1) for writes; set the connection's transport to rest for this integration",
                code="needs_rest_for_writes")
        return self._mutate(node, node.create_path, self._input(node, payload), {})

    def update(self, klass: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        node = self._node(klass)
        if not node.update_path and self.rest is not None:
            return self.rest.update(klass, key, payload)
        if not node.update_path:
            raise SystemicError(
                f"This Sage X3 install's GraphQL schema has no update mutation for {node.type_name} ({klass}): it needs "
                "the REST transport (api1) for writes", code="needs_rest_for_writes")
        return self._mutate(node, node.update_path, self._input(node, payload), {"_id": ("ID!", key)})

    def check(self, needs: Any = None) -> list[dict[str, Any]]:
        """Introspect afresh (the syncs use the result), then say what was found and what is missing."""
        try:
            schema = self.installed(refresh=True)
        except SyncError as exc:
            return [{"check": "graphql:schema", "ok": False, "message": f"Cannot introspect Sage X3 GraphQL: {exc}"}]
        lines = [{"check": "graphql:schema", "ok": True, "message": f"Introspected folder {self.folder}: roots "
                  f"{', '.join(schema.roots) or 'none'}; mutations {'present' if schema.has_mutations else 'none'}"}]
        for klass in READ_CLASSES:
            node = schema.nodes.get(klass)
            if node is None:
                lines.append({"check": f"class:{klass}", "ok": False, "message": (
                    f"No GraphQL node type for X3 class {klass} (a type whose description ends with ({klass})); "
                    "name it in the connection's graphql_types")})
                continue
            missing = [c for c in self.shapes[klass].fields.values() if c not in node.columns
                       and c not in node.line_columns]
            if missing:
                lines.append({"check": f"class:{klass}", "ok": False, "message": (
                    f"{node.type_name} ({'.'.join(node.query_path)}) has no field for the X3 column(s) "
                    f"{', '.join(missing)}; name them in the connection's graphql_fields")})
                continue
            try:
                next(iter(self.iter_pages(klass, count=1)), None)
            except SyncError as exc:
                lines.append({"check": f"class:{klass}", "ok": False, "message": f"Cannot read {klass}: {exc}"})
                if exc.kind == "systemic":
                    break
                continue
            lines.append({"check": f"class:{klass}", "ok": True,
                          "message": f"Read {klass} as {node.type_name} at {'.'.join(node.query_path)}"})
        for klass in WRITE_CLASSES:
            node = schema.nodes.get(klass)
            if node is not None and node.create_path:
                lines.append({"check": f"write:{klass}", "ok": True,
                              "message": f"Writes {klass} through {'.'.join(node.create_path)}"})
            elif self.rest is not None:
                lines.append({"check": f"write:{klass}", "ok": True, "message": (
                    f"No create mutation for {klass}: its writes go through api1 REST, reads through GraphQL")})
            else:  # a warning: a connection that is only read works without mutations
                lines.append({"check": f"write:{klass}", "ok": True, "warning": True, "message": (
                    f"No create mutation for {klass}: this install needs the REST transport (api1) for writes, "
                    "which a connected application cannot sign in to; reads work over GraphQL")})
        return lines

    # --- GraphQL underneath --------------------------------------------------------------------------
    def _node(self, klass: str) -> NodeMap:
        node = self.installed().nodes.get(klass)
        if node is None:
            raise SystemicError(f"Sage X3's GraphQL schema has no node type for the X3 class {klass}; name it in "
                                "the connection's graphql_types", code="unknown_class")
        return node

    def _field(self, node: NodeMap, column: str) -> str:
        found = node.columns.get(column)
        if found is None:
            raise SystemicError(f"{node.type_name} has no field for the X3 column {column}; name it in the "
                                "connection's graphql_fields", code="unknown_column")
        return found.name

    def _key_field(self, node: NodeMap, column: str) -> str:
        return "_id" if node.id_column == column else self._field(node, column)

    def _post(self, query: str, variables: dict[str, Any], *, write: bool = False) -> Any:
        response = self.http.request("POST", API_PATH, data=exact_json({"query": query, "variables": variables}),
                                     headers={"Content-Type": "application/json", "x-xtrem-endpoint": self.folder},
                                     idempotent=not write)
        body = decode_json(response, "Sage X3", parse_float=Decimal)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise unexpected_answer(response, "Sage X3", "a GraphQL answer without data")
        return body["data"]

    def _selection(self, node: NodeMap) -> str:
        parts = ["_id"]
        for column, item in node.columns.items():
            if item.kind == "reference":
                parts.append(f"{item.name} {{ _id }}")
            elif item.kind == "lines":
                inner = " ".join(f"{c.name} {{ _id }}" if c.kind == "reference" else c.name
                                 for c in node.line_columns.values())
                page = f"edges {{ node {{ {inner} }} }} pageInfo {{ hasNextPage }}"
                parts.append(f"{item.name}(first: {LINE_PAGE}) {{ {page} }}" if item.lines_style == "args" else
                             f"{item.name} {{ query(first: {LINE_PAGE}) {{ {page} }} }}")
            elif column:
                parts.append(item.name)
        return " ".join(parts)

    def _page(self, klass: str, variables: dict[str, Any], retried: bool = False) -> dict[str, Any]:
        node = self._node(klass)
        names = [name for name in ("first", "after", "filter", "orderBy") if name in node.query_args]
        declared = ", ".join(f"${name}: {node.query_args[name].rstrip('!')}" for name in names)
        call = f"{node.query_path[-1]}({', '.join(f'{name}: ${name}' for name in names)})"
        inner = f"{call} {{ edges {{ node {{ {self._selection(node)} }} }} pageInfo {{ endCursor hasNextPage }} }}"
        query = f"query Page({declared}) {{ {_nest(node.query_path[:-1], inner)} }}"
        try:
            data = self._post(query, {name: variables[name] for name in names})
        except SystemicError as exc:
            if exc.code != "schema_mismatch" or retried:
                raise
            self.installed(refresh=True)  # the install changed since it was introspected: once more
            return self._page(klass, variables, retried=True)
        connection = _dig(data, node.query_path)
        if not isinstance(connection, dict):
            raise TransientError(f"Sage X3 GraphQL answered the {klass} query without its connection",
                                 code="no_connection")
        return connection

    def _input(self, node: NodeMap, payload: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        unknown = []
        for column, value in payload.items():
            if column.startswith("$") or column == self.shapes[node.klass].fields.get("updated"):
                continue
            name = node.inputs.get(column)
            if name is None:
                unknown.append(column)
            elif column == node.lines_column and isinstance(value, list):
                lines = []
                for line in value:
                    missing = [c for c in line if c not in node.line_inputs]
                    unknown += [f"{column}.{c}" for c in missing]
                    lines.append({node.line_inputs[c]: _wire(v) for c, v in line.items() if c in node.line_inputs})
                data[name] = lines
            else:
                data[name] = _wire(value)
        if unknown:
            raise SystemicError(f"{node.input_type} has no input field for the X3 column(s) {', '.join(unknown)}; "
                                "name them in the connection's graphql_fields", code="unknown_column")
        return data

    def _mutate(self, node: NodeMap, path: list[str], data: dict[str, Any],
                extra: dict[str, tuple[str, str]]) -> dict[str, Any]:
        declared = ", ".join([f"$data: {node.input_type}", *(f"${k}: {t}" for k, (t, _) in extra.items())])
        args = ", ".join(["data: $data", *(f"{k}: ${k}" for k in extra)])
        inner = f"{path[-1]}({args}) {{ {self._selection(node)} }}"
        query = f"mutation Write({declared}) {{ {_nest(path[:-1], inner)} }}"
        data_out = self._post(query, {"data": data, **{k: v for k, (_, v) in extra.items()}}, write=True)
        written = _dig(data_out, path)
        return self._row(node, written) if isinstance(written, dict) else {}

    def _row(self, node: NodeMap, item: Any) -> dict[str, Any]:
        """A node as api1 would give the record: X3 columns, typed values, lines as a list."""
        if not isinstance(item, dict):
            raise TransientError(f"Sage X3 GraphQL answered a {node.klass} edge without its node", code="no_node")
        row = {column: _value(col, item) for column, col in node.columns.items() if col.kind != "lines"}
        lines_column = node.lines_column
        if lines_column and lines_column in node.columns:
            col = node.columns[lines_column]
            connection = item.get(col.name)
            if col.lines_style == "query" and isinstance(connection, dict):
                connection = connection.get("query")
            if isinstance(connection, dict):
                if (connection.get("pageInfo") or {}).get("hasNextPage"):
                    raise SystemicError(f"{node.klass} {row.get(self.shapes[node.klass]['key'])} has more than "
                                        f"{LINE_PAGE} lines, more than the client reads in one go", code="too_many_lines")
                row[lines_column] = [{c: _value(lc, (edge or {}).get("node") or {}) for c, lc in node.line_columns.items()}
                                     for edge in connection.get("edges") or []]
        return row


def _value(column: Column, item: dict[str, Any]) -> Any:
    value = item.get(column.name)
    if column.kind == "reference":
        return value.get("_id") if isinstance(value, dict) else value
    if value is None:
        return None
    if column.scalar == "Decimal":
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    if column.scalar == "Int" and isinstance(value, Decimal):
        return int(value)
    return value


def build_graphql_client(spec: ConnectionSpec, store: TokenStore, counter: CallCounter | None = None,
                         policy: HttpPolicy | None = None, on_event: EventSink = ignore_event,
                         session: requests.Session | None = None,
                         clock: Callable[[], datetime] = utcnow) -> SageX3GraphQLClient:
    """The GraphQL client, signed in with a connected app's JWT, Basic, or X3's bearer token."""
    app = None
    if spec.auth_method == "jwt_connected_app":
        try:
            validity = int(str(spec.setting("token_validity", DEFAULT_VALIDITY)))
        except ValueError:
            raise SystemicError("token_validity must be a whole number of seconds") from None
        app = ConnectedApp(spec.setting("client_id"), spec.secret("client_secret"), spec.setting("user"),
                           spec.setting("audience"), validity)
        auth: Any = connected_app_auth(app, store, clock)
        identity = f"jwt:{app.client_id}:{app.user}"
    else:
        auth = x3_auth(spec, store, counter=counter, policy=policy, on_event=on_event, session=session)
        identity = f"{spec.auth_method}:{spec.setting('username') or spec.setting('client_id')}"

    def classify_error(response: requests.Response) -> SyncError | None:
        return token_refusal(response, app) or classify_status(response)

    http = HttpClient(spec.url.rstrip("/"), auth=auth, policy=policy, counter=counter, session=session,
                      error_classifier=classify_error, body_classifier=classify_body,
                      default_headers={"Accept": "application/json"}, secrets=spec.secret_values(), on_event=on_event)
    rest = None
    if app is None:  # Basic and X3's bearer token open api1 too: writes without a mutation go there
        rest = SageX3Client(spec, HttpClient(spec.url.rstrip("/"), auth=auth, policy=policy, counter=counter,
                                             session=session, error_classifier=classify_rest,
                                             default_headers={"Accept": "application/json"},
                                             secrets=spec.secret_values(), on_event=on_event))
    return SageX3GraphQLClient(spec, http, cache_key=(spec.url.rstrip("/"), identity), rest=rest)
