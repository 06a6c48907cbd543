"""What one X3 install's GraphQL schema holds for the portal: found by introspection, mapped by column.

The schema varies per install and version (API_FACTS 2.2: two roots at least), so nothing here
is a hard-coded path. Every type and field description ends with the X3 class or column in
parentheses (API_FACTS 2.2b, "Company name (BPSNAM)"): a class's node type is the object type
whose description ends with ``(CLASS)``, reached from the query root through any nesting
(``x3MasterData { supplier { query(…) } }`` or ``sage { x3BusinessPartners { supplier(…) } }``);
each X3 column maps to the field whose description ends with it, whatever its name
(``companyName1`` or ``companyName``). Per connection, ``graphql_types`` names the node type of a
class and ``graphql_fields`` the field of a column, where descriptions say nothing.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

INTROSPECTION = """query Introspect { __schema { queryType { name } mutationType { name }
  types { kind name description
    fields { name description args { name type { ...Ref } } type { ...Ref } }
    inputFields { name description type { ...Ref } } } } }
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""
_COLUMN = re.compile(r"\(\s*([A-Za-z0-9_]+)\s*\)\s*\.?\s*$")
MAX_DEPTH = 4  # packages nest a node's query at most this deep under the root


@dataclass
class Column:
    """One X3 column as a GraphQL field: a scalar, a reference (``{ _id }``) or the lines."""

    name: str
    kind: str  # "scalar", "reference" or "lines"
    scalar: str = ""  # the scalar's type name (Decimal, Int, String…)
    lines_style: str = ""  # "args": lines(first:) is the connection; "query": lines { query(first:) }


@dataclass
class NodeMap:
    """One X3 class on this install: where its query is, its columns, its create/update mutations."""

    klass: str
    type_name: str
    query_path: list[str]
    query_args: dict[str, str]
    columns: dict[str, Column]
    line_columns: dict[str, Column] = field(default_factory=dict)
    lines_column: str = ""
    id_column: str = ""  # the column ``_id`` carries, when its description names one
    create_path: list[str] = field(default_factory=list)
    update_path: list[str] = field(default_factory=list)
    input_type: str = ""
    inputs: dict[str, str] = field(default_factory=dict)  # column → input field
    line_inputs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeMap:
        data = dict(data)
        data["columns"] = {k: Column(**v) for k, v in data["columns"].items()}
        data["line_columns"] = {k: Column(**v) for k, v in data.get("line_columns", {}).items()}
        return cls(**data)


@dataclass
class InstalledSchema:
    """The mapping of every class the portal uses, and what could not be found."""

    roots: list[str]
    has_mutations: bool
    nodes: dict[str, NodeMap]
    missing_types: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstalledSchema:
        return cls(data["roots"], data["has_mutations"],
                   {k: NodeMap.from_dict(v) for k, v in data["nodes"].items()}, list(data["missing_types"]))


def column_of(description: str | None) -> str:
    """The X3 class or column a description ends with, in parentheses ("" when none)."""
    match = _COLUMN.search(description or "")
    return match.group(1) if match else ""


def _named(ref: dict[str, Any] | None) -> dict[str, Any]:
    while ref and ref.get("kind") in ("NON_NULL", "LIST"):
        ref = ref.get("ofType")
    return ref or {}


def _is_list(ref: dict[str, Any] | None) -> bool:
    while ref and ref.get("kind") == "NON_NULL":
        ref = ref.get("ofType")
    return bool(ref) and ref.get("kind") == "LIST"


def type_text(ref: dict[str, Any] | None) -> str:
    """A type reference as GraphQL writes it in a variable declaration (``Int``, ``String!``)."""
    if not ref:
        return "String"
    if ref.get("kind") == "NON_NULL":
        return type_text(ref.get("ofType")) + "!"
    if ref.get("kind") == "LIST":
        return "[" + type_text(ref.get("ofType")) + "]"
    return str(ref.get("name"))


class _Types:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.by_name = {t["name"]: t for t in schema.get("types") or [] if isinstance(t, dict) and t.get("name")}

    def fields(self, name: str) -> list[dict[str, Any]]:
        return list((self.by_name.get(name) or {}).get("fields") or [])

    def field(self, name: str, field_name: str) -> dict[str, Any] | None:
        return next((f for f in self.fields(name) if f.get("name") == field_name), None)

    def connection_node(self, name: str) -> str:
        """The node type of a Relay connection type (``edges { node }``), or ""."""
        edges = self.field(name, "edges")
        node = self.field(_named(edges["type"]).get("name", ""), "node") if edges else None
        return _named(node["type"]).get("name", "") if node else ""

    def lines_style(self, name: str) -> tuple[str, str]:
        """(style, line type) when ``name`` is a lines collection: a connection itself ("args") or
        an object whose ``query`` field is one ("query")."""
        node = self.connection_node(name)
        if node:
            return "args", node
        query = self.field(name, "query")
        node = self.connection_node(_named(query["type"]).get("name", "")) if query else ""
        return ("query", node) if node else ("", "")


def _columns(types: _Types, type_name: str, overrides: dict[str, str]) -> tuple[dict[str, Column], str, str, str]:
    """Column → field of a node or line type; also its lines' field and line type, and ``_id``'s column."""
    by_override = {name: column for column, name in overrides.items()}
    columns: dict[str, Column] = {}
    lines_column = line_type = id_column = ""
    for item in types.fields(type_name):
        name = item["name"]
        column = by_override.get(name) or column_of(item.get("description"))
        if not column:
            continue
        if name == "_id":
            id_column = column
            continue  # a plain field naming the same column reads better; _id is the fallback below
        named = _named(item["type"])
        if named.get("kind") in ("SCALAR", "ENUM"):
            found = Column(name, "scalar", named.get("name", ""))
        else:
            style, lines_of = types.lines_style(named.get("name", ""))
            if style:
                found = Column(name, "lines", lines_style=style)
                lines_column, line_type = column, lines_of
            else:
                found = Column(name, "reference")
        if column not in columns or column in overrides:
            columns[column] = found
    if id_column and id_column not in columns:
        columns[id_column] = Column("_id", "scalar", "ID")
    return columns, lines_column, line_type, id_column


def _find_path(types: _Types, root: str, accept: Any, skip: set[str]) -> tuple[list[str], dict[str, Any]] | None:
    """The shortest path of fields from ``root`` to a field ``accept(field)`` takes, through
    object types (packages) only."""
    queue: list[tuple[str, list[str]]] = [(root, [])]
    seen = {root}
    while queue:
        current, path = queue.pop(0)
        for item in types.fields(current):
            if accept(item):
                return [*path, item["name"]], item
            named = _named(item["type"])
            name = named.get("name", "")
            if (named.get("kind") == "OBJECT" and name not in seen and name not in skip and len(path) < MAX_DEPTH
                    and not types.connection_node(name)):
                seen.add(name)
                queue.append((name, [*path, item["name"]]))
    return None


def map_schema(schema: dict[str, Any], classes: dict[str, str], type_overrides: dict[str, str],
               field_overrides: dict[str, dict[str, str]]) -> InstalledSchema:
    """Map each X3 class of ``classes`` (class → lines column, "" for none) onto the introspected
    ``schema`` (the ``__schema`` object)."""
    types = _Types(schema)
    query_root = ((schema.get("queryType") or {}).get("name")) or "Query"
    mutation_root = ((schema.get("mutationType") or {}).get("name")) or ""
    described = {column_of(t.get("description")): t["name"] for t in types.by_name.values()
                 if t.get("kind") == "OBJECT" and column_of(t.get("description"))}
    node_types = set(described.values())
    nodes: dict[str, NodeMap] = {}
    missing: list[str] = []
    for klass, lines_name in classes.items():
        type_name = type_overrides.get(klass) or described.get(klass, "")
        found = _find_path(types, query_root, lambda f, t=type_name: bool(t) and types.connection_node(
            _named(f["type"]).get("name", "")) == t and any(a["name"] == "first" for a in f.get("args") or []),
            node_types) if type_name else None
        if found is None:
            missing.append(klass)
            continue
        path, query_field = found
        overrides = field_overrides.get(klass) or {}
        columns, lines_column, line_type, id_column = _columns(types, type_name, overrides)
        node = NodeMap(klass, type_name, path, {a["name"]: type_text(a["type"]) for a in query_field.get("args") or []},
                       columns, id_column=id_column)
        if line_type:
            line_overrides = {k: v for k, v in overrides.items() if k not in columns}
            node.line_columns = _columns(types, line_type, line_overrides)[0]
            node.lines_column = lines_name or lines_column
            if lines_name and lines_column != lines_name and lines_column in columns:
                columns[lines_name] = columns.pop(lines_column)
        if mutation_root:
            _map_mutations(types, mutation_root, node, node_types)
        nodes[klass] = node
    roots = [f["name"] for f in types.fields(query_root)]
    return InstalledSchema(roots, bool(mutation_root), nodes, missing)


def _map_mutations(types: _Types, root: str, node: NodeMap, node_types: set[str]) -> None:
    def returns_node(item: dict[str, Any]) -> bool:
        return _named(item["type"]).get("name") == node.type_name

    def arg(item: dict[str, Any], name: str) -> dict[str, Any] | None:
        return next((a for a in item.get("args") or [] if a["name"] == name), None)

    create = _find_path(types, root, lambda f: f["name"] == "create" and returns_node(f) and arg(f, "data"),
                        node_types)
    if create is None:
        return
    node.create_path = create[0]
    data = arg(create[1], "data") or {}
    node.input_type = type_text(data.get("type"))
    input_name = _named(data.get("type")).get("name", "")
    update = _find_path(types, root, lambda f: f["name"] == "update" and returns_node(f) and arg(f, "data")
                        and arg(f, "_id"), node_types)
    node.update_path = update[0] if update else []
    for item in (types.by_name.get(input_name) or {}).get("inputFields") or []:
        column = column_of(item.get("description")) or next(
            (c for c, col in node.columns.items() if col.name == item["name"]), "")
        if not column:
            continue
        named = _named(item["type"])
        if _is_list(item["type"]) and named.get("kind") == "INPUT_OBJECT":
            node.inputs[node.lines_column or column] = item["name"]
            for line_item in (types.by_name.get(named.get("name", "")) or {}).get("inputFields") or []:
                line_column = column_of(line_item.get("description")) or next(
                    (c for c, col in node.line_columns.items() if col.name == line_item["name"]), "")
                if line_column:
                    node.line_inputs[line_column] = line_item["name"]
        else:
            node.inputs[column] = item["name"]
