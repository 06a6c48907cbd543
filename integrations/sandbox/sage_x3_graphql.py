"""The X3 simulator's GraphQL (Xtrem) endpoint, ``POST /xtrem/api``, over the same store as api1.

What it plays (API_FACTS 2.2 and 2.2b; the shapes are [U] decisions shared with the client):

- The folder comes from the ``x-xtrem-endpoint`` header. The schema is built from SDL with
  graphql-core (:mod:`.sage_x3_graphql_schema`) in one of two variants (``x3MasterData`` or
  ``sage``), with or without mutations; graphql-core parses, validates and executes.
- Relay connections: ``first`` (default 20) / ``after``, ``edges { node cursor }``,
  ``pageInfo { endCursor hasNextPage }``, ``totalCount``. ``filter`` and ``orderBy`` are Xtrem's
  JSON-like strings (``{_updateStamp: {_gte: '…'}}``, ``{_updateStamp: 1, _id: 1}``) with
  ``_eq _ne _gt _gte _lt _lte _in _nin``, ``_and``/``_or``; cursors are keysets of the order, so
  records sharing one ``_updateStamp`` are never skipped or repeated at a page boundary.
- Decimals are strings with their exact digits; ``_updateStamp`` is ``…T08:00:00.000Z``.
- Mutations ``create(data:)`` for suppliers, supplier invoices and journal entries (and a
  supplier ``update``) run the store's checks (:meth:`X3Store.document_problems`) and numbering;
  a refusal is an ``errors`` entry with ``extensions.diagnoses``. A committed write may lose its
  answer (the simulator's "commit then drop").
- Errors come as an ``errors`` array in an HTTP 200; an outage (the simulator's transient
  fault) as ``{"data": null, "errors": [{… "extensions": {"code": "SERVICE_UNAVAILABLE"}}]}``.
- Auth: HTTP Basic and cloud bearer tokens as on api1 (per ``auth_modes``), and the on-premise
  connected application's own HS256 JWT, refused with 401 ``Error 41|42|45|50: Invalid token``
  for the issuer, the user (``sub``), the audience, or the signature and lifetime.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

import jwt
from graphql import GraphQLError, OperationType, build_schema, execute, get_operation_ast, parse, validate
from graphql.language import parse_value
from graphql.utilities import value_from_ast_untyped

from .base import DropResponse, SimRequest, SimResponse
from .sage_x3_graphql_schema import MASTER, NODES, VARIANTS, Field, Node, sdl
from .sage_x3_query import decode_cursor, encode_cursor, sort_key
from .sage_x3_schema import CLASSES, DATE, DATETIME, DEC, ClassSpec, ValueProblem, coerce, coerce_record
from .sage_x3_store import NUMBERED

if TYPE_CHECKING:
    from .sage_x3 import SageX3Simulator

GRAPHQL_PATH = "/xtrem/api"
PAGE_DEFAULT = 20
PAGE_MAX = 1000
CLOCK_SKEW = 60  # seconds a token's iat may lie in the future
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_OPS = {"_eq", "_ne", "_gt", "_gte", "_lt", "_lte", "_in", "_nin"}


@dataclass
class ConnectedApp:
    """An X3 connected application (Administration > Settings > Authentication)."""

    client_id: str
    secret: str
    user: str
    audience: str
    token_validity: int = 600


def unavailable() -> SimResponse:
    """X3's "try later", GraphQL style: HTTP 200 with an errors array and no data."""
    return SimResponse.json(200, {"data": None, "errors": [
        {"message": "Service temporarily unavailable", "extensions": {"code": "SERVICE_UNAVAILABLE"}}]})


def _error(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def _wire(kind: str, value: Any) -> Any:
    """A stored value as the GraphQL answer carries it: decimals as exact strings."""
    if value is None:
        return None
    if kind == DEC:
        return format(value, "f")
    if kind == DATETIME:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if kind == DATE:
        return value.isoformat()
    return value


class X3GraphQL:
    """The ``/xtrem/api`` endpoint of one :class:`SageX3Simulator`."""

    def __init__(self, sim: SageX3Simulator, variant: str = MASTER, mutations: bool = True) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"graphql_root must be one of {', '.join(VARIANTS)}")
        self.sim = sim
        self.variant = variant
        self.mutations = mutations
        self.apps: dict[str, ConnectedApp] = {}
        kinds: dict[str, dict[str, str]] = {}
        for name, spec in CLASSES.items():
            kinds[name] = dict(spec.fields)
            if spec.lines_name:
                kinds[spec.lines_name] = dict(spec.line_fields)
        self.kinds = kinds
        self.schema = build_schema(sdl(variant, mutations, kinds))
        self._drop = False

    def add_connected_app(self, client_id: str, secret: str, user: str, audience: str,
                          token_validity: int = 600) -> ConnectedApp:
        app = ConnectedApp(client_id, secret, user, audience, token_validity)
        with self.sim.lock:
            self.apps[client_id] = app
        return app

    # === HTTP ==================================================================================
    def handle(self, request: SimRequest) -> SimResponse:
        if request.method != "POST":
            return SimResponse.json(405, {"errors": [{"message": "GraphQL requests are POSTed"}]})
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        folder = request.header("x-xtrem-endpoint") or ""
        if folder not in self.sim._data:
            return SimResponse.json(400, {"errors": [{"message": f"Endpoint {folder or '(none)'} not found: "
                                                     "set the x-xtrem-endpoint header to an X3 folder"}]})
        try:
            body = json.loads(request.body or b"null")
            query, variables = body["query"], body.get("variables") or {}
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return SimResponse.json(400, {"errors": [{"message": "A GraphQL request is {query, variables}"}]})
        try:
            document = parse(query)
        except GraphQLError as exc:
            return self._answer(None, [_error(exc.message, "GRAPHQL_PARSE_FAILED")])
        problems = validate(self.schema, document)
        if problems:
            return self._answer(None, [_error(p.message, "GRAPHQL_VALIDATION_FAILED") for p in problems])
        self._drop = False
        operation = get_operation_ast(document, body.get("operationName"))
        mutation = operation is not None and operation.operation == OperationType.MUTATION
        result = execute(self.schema, document, root_value=self._root(folder, mutation), variable_values=variables,
                         operation_name=body.get("operationName"))
        response = self._answer(result.data, result.errors or [])
        if self._drop:
            raise DropResponse("sage_x3: GraphQL mutation committed, answer dropped")
        return response

    def _answer(self, data: Any, errors: list[GraphQLError]) -> SimResponse:
        body: dict[str, Any] = {"data": data}
        if errors:
            body["errors"] = [e.formatted for e in errors]
        return SimResponse.json(200, body)

    # === auth ==================================================================================
    def _authenticate(self, request: SimRequest) -> SimResponse | None:
        scheme, _, credentials = (request.header("Authorization") or "").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic" and "basic" in self.sim.auth_modes:
            try:
                user, _, password = base64.b64decode(credentials).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            expected = self.sim.users.get(user)
            if expected is not None and hmac.compare_digest(expected, password):
                return None
            return SimResponse.text(401, "Invalid user name or password")
        if scheme.lower() == "bearer":
            if "oauth2" in self.sim.auth_modes and self.sim.oauth.check_bearer(credentials) is None:
                return None
            problem = self._jwt_problem(credentials)
            return None if problem is None else SimResponse.text(401, f"Error {problem}: Invalid token")
        return SimResponse.text(401, "Authentication required")

    def _jwt_problem(self, token: str) -> int | None:
        """X3's error number for a connected app's JWT: 41 iss, 42 sub, 45 aud, 50 signature or
        lifetime ([C]: a public connector's notes, not Sage-published); ``None`` when valid."""
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return 50
        app = self.apps.get(str(claims.get("iss", "")))
        if app is None:
            return 41
        if claims.get("sub") != app.user:
            return 42
        if claims.get("aud") != app.audience:
            return 45
        if header.get("alg") != "HS256":
            return 50
        try:
            jwt.decode(token, app.secret, algorithms=["HS256"],
                       options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False})
        except jwt.PyJWTError:
            return 50
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return 50
        now = int(self.sim.now().timestamp())
        if exp <= now or iat > now + CLOCK_SKEW or exp - iat > app.token_validity:
            return 50
        return None

    # === the data graph ==========================================================================
    def _root(self, folder: str, mutation: bool) -> dict[str, Any]:
        """Packages of nodes as nested dicts; graphql-core calls the callables with their arguments."""
        packages: dict[str, dict[str, Any]] = {}
        for node in NODES.values():
            package, name = node.path(self.variant)
            if mutation:
                entry: Any = {"create": lambda info, data, n=node: self._create(folder, n, data),
                              "update": lambda info, _id, data, n=node: self._update(folder, n, _id, data)}
            elif self.variant == MASTER:
                entry = {"query": self._pager(folder, node), "read": lambda info, _id, n=node: self._read(folder, n, _id)}
            else:
                entry = self._pager(folder, node)
            packages.setdefault(package, {})[name] = entry
        return packages if self.variant == MASTER else {"sage": packages}

    def _columns(self, node: Node) -> dict[str, str]:
        """GraphQL field name → X3 column, for filters and orders."""
        names = {f.name(self.variant): f.column for f in node.fields}
        return {"_id": CLASSES[node.klass].key[0], "_updateStamp": "UPDDATTIM", **names}

    def _pager(self, folder: str, node: Node) -> Callable[..., dict[str, Any]]:
        def page(info: Any, first: int | None = None, after: str | None = None, filter: str | None = None,  # noqa: A002
                 orderBy: str | None = None) -> dict[str, Any]:  # noqa: N803 - the GraphQL argument's name
            return self._page(folder, node, first, after, filter, orderBy)
        return page

    def _page(self, folder: str, node: Node, first: int | None, after: str | None, filter_text: str | None,
              order_text: str | None) -> dict[str, Any]:
        spec = CLASSES[node.klass]
        columns = self._columns(node)
        size = PAGE_DEFAULT if first is None else first
        if size < 0:
            raise _error("first must not be negative", "BAD_USER_INPUT")
        size = min(size, PAGE_MAX)
        test = self._predicate(_literal(filter_text, "filter"), columns, spec) if filter_text else (lambda r: True)
        order: list[tuple[str, bool]] = []
        for name, direction in (_literal(order_text, "orderBy") if order_text else {}).items():
            if name not in columns or direction not in (1, -1):
                raise _error(f"orderBy: {name} is not a sortable property of {node.type_name}", "BAD_USER_INPUT")
            order.append((columns[name], direction == -1))
        for key in spec.key:  # a total order: the key breaks ties
            if key not in [name for name, _ in order]:
                order.append((key, False))
        records = sorted((r for r in self.sim._data[folder][node.klass].values() if test(r)),
                         key=lambda r: sort_key(r, order))
        start = 0
        if after:
            try:
                start = bisect_right([sort_key(r, order) for r in records], decode_cursor(after, order))
            except ValueError as exc:
                raise _error(f"after: {exc}", "BAD_USER_INPUT") from None
        chosen = records[start:start + size]
        edges = [{"node": self._render(folder, node, r), "cursor": encode_cursor(r, order)} for r in chosen]
        return {"edges": edges, "totalCount": len(records), "pageInfo": {
            "endCursor": edges[-1]["cursor"] if edges else None, "hasNextPage": start + size < len(records),
            "startCursor": edges[0]["cursor"] if edges else None, "hasPreviousPage": start > 0}}

    def _predicate(self, condition: Any, columns: dict[str, str], spec: ClassSpec) -> Callable[[dict[str, Any]], bool]:
        if not isinstance(condition, dict):
            raise _error("filter: expected an object", "BAD_USER_INPUT")
        tests: list[Callable[[dict[str, Any]], bool]] = []
        for name, value in condition.items():
            if name in ("_and", "_or"):
                if not isinstance(value, list):
                    raise _error(f"filter: {name} takes a list", "BAD_USER_INPUT")
                parts = [self._predicate(item, columns, spec) for item in value]
                tests.append((lambda r, p=parts: all(t(r) for t in p)) if name == "_and" else
                             (lambda r, p=parts: any(t(r) for t in p)))
                continue
            if name not in columns:
                raise _error(f"filter: {name} is not a property of this node", "BAD_USER_INPUT")
            column = columns[name]
            kind = spec.fields[column]
            if isinstance(value, dict) and set(value) == {"_id"}:  # a reference, by its _id
                value = value["_id"]
            ops = value if isinstance(value, dict) else {"_eq": value}
            for op, operand in ops.items():
                if op not in _OPS:
                    raise _error(f"filter: unknown operator {op}", "BAD_USER_INPUT")
                tests.append(_comparison(column, kind, op, operand))
        return lambda r: all(t(r) for t in tests)

    def _render(self, folder: str, node: Node, record: dict[str, Any]) -> dict[str, Any]:
        spec = CLASSES[node.klass]
        out: dict[str, Any] = {"_id": spec.key_of(record), "_updateStamp": _wire(DATETIME, record.get("UPDDATTIM"))}
        out.update(_values(node.fields, self.variant, record, spec.fields))
        if node.lines:
            lines = record.get(spec.lines_name or "") or []
            rows = [{"_id": f"{spec.key_of(record)}~{n}", **_values(node.line_fields, self.variant, line, spec.line_fields)}
                    for n, line in enumerate(lines, start=1)]

            def collection(info: Any, first: int | None = None, after: str | None = None,
                           rows: list[dict[str, Any]] = rows) -> dict[str, Any]:
                return _line_page(rows, first, after)

            out[node.lines.name(self.variant)] = {"query": collection} if self.variant == MASTER else collection
        return out

    def _read(self, folder: str, node: Node, key: str) -> dict[str, Any] | None:
        record = self.sim._data[folder][node.klass].get(key)
        return self._render(folder, node, record) if record is not None else None

    # === mutations ==============================================================================
    def _payload(self, node: Node, data: dict[str, Any]) -> dict[str, Any]:
        columns = {f.name(self.variant): f.column for f in node.fields}
        line_columns = {f.name(self.variant): f.column for f in node.line_fields}
        payload: dict[str, Any] = {}
        for name, value in data.items():
            if node.lines and name == node.lines.name(self.variant):
                payload[node.lines.column] = [{line_columns[k]: v for k, v in line.items()} for line in value or []]
            else:
                payload[columns[name]] = value
        return payload

    def _create(self, folder: str, node: Node, data: dict[str, Any]) -> dict[str, Any]:
        spec = CLASSES[node.klass]
        store = self.sim._data[folder][spec.name]
        try:
            changes = coerce_record(spec, self._payload(node, data), partial=True)
            numbered = spec.name in NUMBERED and not changes.get(spec.key[0])
            record = coerce_record(spec, changes, partial=numbered)
        except ValueProblem as exc:
            raise _refused([str(exc)]) from None
        if not numbered and spec.key_of(record) in store:
            raise _refused([f"Record {spec.key_of(record)} already exists"])
        problems = self.sim.document_problems(folder, spec.name, record)
        if problems:
            raise _refused(problems)
        if numbered:
            record[spec.key[0]] = self.sim.next_number(folder, spec.name, record)
        lines = {spec.lines_name: record.get(spec.lines_name) or []} if spec.lines_name else {}
        record = {name: record.get(name) for name in spec.fields} | lines | {"UPDDATTIM": self.sim.now()}
        self.sim.commit_created(folder, spec.name, record)
        self._committed()
        return self._render(folder, node, record)

    def _update(self, folder: str, node: Node, key: str, data: dict[str, Any]) -> dict[str, Any]:
        spec = CLASSES[node.klass]
        store = self.sim._data[folder][spec.name]
        current = store.get(key)
        if current is None:
            raise _refused([f"Record {key} not found in {spec.name}"])
        try:
            changes = coerce_record(spec, self._payload(node, data), partial=True)
        except ValueProblem as exc:
            raise _refused([str(exc)]) from None
        if any(name in changes and changes[name] != current[name] for name in spec.key):
            raise _refused(["The key cannot be modified"])
        record = {**current, **changes, "UPDDATTIM": self.sim.now()}
        store[key] = record
        self.sim._changed(folder, spec.name)
        self._committed()
        return self._render(folder, node, record)

    def _committed(self) -> None:
        try:
            self.sim.maybe_drop()
        except DropResponse:
            self._drop = True  # raised once the answer is built: graphql-core would catch it here


def _refused(problems: list[str]) -> GraphQLError:
    """X3's refusal of a mutation [U]: one diagnosis per problem, in an operator's words."""
    return _error("The record was not saved", "BUSINESS_RULE_ERROR",
                  diagnoses=[{"severity": "error", "message": p} for p in problems])


def _values(fields: tuple[Field, ...], variant: str, record: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        value = record.get(field.column)
        if field.reference:
            out[field.name(variant)] = {"_id": value, "code": value} if value else None
        else:
            out[field.name(variant)] = _wire(kinds[field.column], value)
    return out


def _line_page(rows: list[dict[str, Any]], first: int | None, after: str | None) -> dict[str, Any]:
    start = int(after) + 1 if after and after.isdigit() else 0
    size = min(PAGE_DEFAULT if first is None else max(first, 0), PAGE_MAX)
    chosen = rows[start:start + size]
    edges = [{"node": row, "cursor": str(start + n)} for n, row in enumerate(chosen)]
    return {"edges": edges, "totalCount": len(rows), "pageInfo": {
        "endCursor": edges[-1]["cursor"] if edges else None, "hasNextPage": start + size < len(rows),
        "startCursor": edges[0]["cursor"] if edges else None, "hasPreviousPage": start > 0}}


def _literal(text: str, what: str) -> Any:
    """Xtrem's JSON-like filter/orderBy text as a value: single-quoted strings become GraphQL
    strings, then graphql-core's own value parser reads it."""
    try:
        converted = _QUOTED.sub(lambda m: json.dumps(m.group(1).replace("\\'", "'")), text)
        return value_from_ast_untyped(parse_value(converted))
    except GraphQLError as exc:
        raise _error(f"{what}: cannot read {text!r}: {exc.message}", "BAD_USER_INPUT") from None


def _comparison(column: str, kind: str, op: str, operand: Any) -> Callable[[dict[str, Any]], bool]:
    def typed(value: Any) -> Any:
        if value is None:
            return None
        try:
            return coerce(kind, value, column)
        except ValueProblem as exc:
            raise _error(f"filter: {exc}", "BAD_USER_INPUT") from None

    if op in ("_in", "_nin"):
        if not isinstance(operand, list):
            raise _error(f"filter: {op} takes a list", "BAD_USER_INPUT")
        wanted = {typed(v) for v in operand}
        return (lambda r: r.get(column) in wanted) if op == "_in" else (lambda r: r.get(column) not in wanted)
    value = typed(operand)
    if op == "_eq":
        return lambda r: r.get(column) == value
    if op == "_ne":
        return lambda r: r.get(column) != value
    if value is None:
        return lambda r: False
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "_gt": lambda a, b: a > b, "_gte": lambda a, b: a >= b, "_lt": lambda a, b: a < b, "_lte": lambda a, b: a <= b}
    test = compare[op]
    return lambda r: r.get(column) is not None and test(r[column], value)


__all__ = ["GRAPHQL_PATH", "ConnectedApp", "X3GraphQL", "unavailable"]
