"""In-memory ServiceNow tables: rows of strings, system fields, references, dot-walking.

Everything ServiceNow stores comes back as a string (``"true"``, ``"12.50"``, ``"3"``), so
values are coerced on write and never typed again. Each row carries the system fields a real
instance maintains; ``sys_updated_on`` has second precision, so rows written in the same
second share it, which is what sync cursors must cope with.

The store also describes itself, as an instance does (API_FACTS 1.5 and 9): every installed
table has a row in ``sys_db_object`` (``super_class`` points at the table it extends) and each
column it defines a row in ``sys_dictionary`` (``name`` = the table, ``element`` = the column).
A column a table inherits is listed under the parent that defines it, never under the child,
and the system fields are defined by the root of each hierarchy.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .clock import ClockFn, MonotonicStamper

SYS_FIELDS = ("sys_id", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by", "sys_mod_count")
_SYS_ID = re.compile(r"^[0-9a-f]{32}$")


def stable_sys_id(*parts: str) -> str:
    """A deterministic 32-hex sys_id, so seeded demo data is identical on every start."""
    return hashlib.md5(":".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


def to_sn_string(value: Any) -> str:
    """Coerce a JSON value the way the platform stores it: everything becomes a string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and "value" in value:
        # A reference object read from the API and posted back: keep its sys_id.
        return to_sn_string(value["value"])
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


@dataclass
class Table:
    """One installed table. ``fields`` are declared columns; written columns are learnt."""

    name: str
    label: str
    sys_id: str
    fields: list[str] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)  # column -> target table
    defaults: dict[str, str] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()  # any one of these grants access; empty = open
    strict: bool = False  # strict: unknown columns in a write are dropped, as on a real schema
    number_prefix: str | None = None
    super_class: str = ""  # the table this one extends (its columns are this table's too)
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    counter: int = 1000

    def defines(self, column: str) -> bool:
        """The column is declared by this table itself (not inherited, not learnt from a write)."""
        return column in self.fields or column in self.references or (not self.super_class and column in SYS_FIELDS)


class TableStore:
    """All tables of one instance plus the write rules shared by HTTP and seeding.

    ``strict``: every table drops written columns it does not define and ignores query
    conditions on them, like a real instance; otherwise (the default) a table learns a column
    from the first write that carries it.
    """

    def __init__(self, clock: ClockFn | None = None, strict: bool = False) -> None:
        self.stamper = MonotonicStamper(clock)
        self.tables: dict[str, Table] = {}
        self.strict = strict

    # --- schema ---------------------------------------------------------------------------
    def install(
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
        table = self.tables.get(name)
        if table is None:
            table = Table(
                name=name, label=label or name.replace("_", " ").title(), sys_id=stable_sys_id("sys_db_object", name)
            )
            self.tables[name] = table
        elif label:
            table.label = label
        for column in fields or []:
            if column not in table.fields:
                table.fields.append(column)
        table.references.update(references or {})
        table.defaults.update({k: to_sn_string(v) for k, v in (defaults or {}).items()})
        if roles is not None:
            table.roles = frozenset(roles)
        table.strict = strict or table.strict or self.strict
        table.number_prefix = number_prefix or table.number_prefix
        if super_class is not None:
            table.super_class = super_class
        self.describe(table)
        return table

    def uninstall(self, name: str) -> None:
        table = self.tables.pop(name, None)
        if table is None:
            return
        for registry, column in (("sys_db_object", "name"), ("sys_dictionary", "name")):
            rows = self.tables[registry].rows if registry in self.tables else {}
            for sys_id in [sys_id for sys_id, row in rows.items() if row.get(column) == name]:
                del rows[sys_id]

    def drop_column(self, name: str, column: str) -> None:
        """Remove a column from a table's schema, its dictionary entry and its rows."""
        table = self.require(name)
        if column in table.fields:
            table.fields.remove(column)
        table.references.pop(column, None)
        table.seen.discard(column)
        for row in table.rows.values():
            row.pop(column, None)
        if "sys_dictionary" in self.tables:
            self.tables["sys_dictionary"].rows.pop(stable_sys_id("sys_dictionary", name, column), None)

    def describe(self, table: Table) -> None:
        """Register ``table`` in ``sys_db_object`` and its own columns in ``sys_dictionary`` (once
        those system tables are installed; installing them describes every table before them)."""
        registry, dictionary = self.tables.get("sys_db_object"), self.tables.get("sys_dictionary")
        if registry is not None:
            parent = stable_sys_id("sys_db_object", table.super_class) if table.super_class else ""
            registry.rows.pop(table.sys_id, None)
            self.insert("sys_db_object", {"sys_id": table.sys_id, "name": table.name, "label": table.label,
                                          "super_class": parent}, trusted=True)
        if dictionary is not None:
            own = [*([] if table.super_class else SYS_FIELDS), *table.fields,
                   *(c for c in table.references if c not in table.fields)]
            for column in own:
                sys_id = stable_sys_id("sys_dictionary", table.name, column)
                if sys_id not in dictionary.rows:
                    reference = table.references.get(column, "")
                    # [U] internal_type/max_length values: plain strings, references 32 (a sys_id)
                    self.insert("sys_dictionary", {
                        "sys_id": sys_id, "name": table.name, "element": column,
                        "column_label": column.replace("_", " ").capitalize(),
                        "internal_type": "reference" if reference else "string",
                        "max_length": "32" if reference else "100", "reference": reference,
                    }, trusted=True)

    def defines(self, table: Table, column: str) -> bool:
        """The column is in the table's schema: its own, or one of the tables it extends."""
        if column in SYS_FIELDS:
            return True
        seen: set[str] = set()
        current: Table | None = table
        while current is not None and current.name not in seen:
            if current.defines(column):
                return True
            seen.add(current.name)
            current = self.tables.get(current.super_class)
        return False

    def has_column(self, table: Table, column: str) -> bool:
        """A column writes and queries may use: defined, or (not strict) learnt from a write."""
        return self.defines(table, column) or (not table.strict and column in table.seen)

    def get(self, name: str) -> Table | None:
        return self.tables.get(name)

    def require(self, name: str) -> Table:
        table = self.tables.get(name)
        if table is None:
            raise LookupError(f"table {name!r} is not installed")
        return table

    # --- writes ---------------------------------------------------------------------------
    def insert(self, name: str, values: dict[str, Any], user: str = "system", trusted: bool = False) -> dict[str, str]:
        """Insert one row. ``trusted`` (seeding) may set system fields; HTTP writes may not."""
        table = self.require(name)
        clean = self._clean(table, values, keep_sys=trusted)
        sys_id = to_sn_string(values.get("sys_id", ""))
        if not _SYS_ID.match(sys_id) or sys_id in table.rows:
            sys_id = uuid.uuid4().hex
        stamp = self.stamper.stamp()
        row: dict[str, str] = {column: "" for column in table.fields}
        row.update(table.defaults)
        if table.number_prefix and not clean.get("number"):
            table.counter += 1
            row["number"] = f"{table.number_prefix}{table.counter:07d}"
        row.update(clean)
        row.update(
            {
                "sys_id": sys_id,
                "sys_created_on": clean.get("sys_created_on") or stamp,
                "sys_created_by": clean.get("sys_created_by") or user,
                "sys_updated_on": clean.get("sys_updated_on") or clean.get("sys_created_on") or stamp,
                "sys_updated_by": clean.get("sys_updated_by") or user,
                "sys_mod_count": clean.get("sys_mod_count") or "0",
            }
        )
        table.rows[sys_id] = row
        table.seen.update(row)
        return row

    def update(self, name: str, sys_id: str, values: dict[str, Any], user: str = "system") -> dict[str, str] | None:
        """Partial update (PUT and PATCH behave alike on the Table API). None if missing.

        Like the platform, an update that changes nothing is not written, so neither
        ``sys_updated_on`` nor ``sys_mod_count`` moves.
        """
        table = self.require(name)
        row = table.rows.get(sys_id)
        if row is None:
            return None
        clean = self._clean(table, values, keep_sys=False)
        changes = {k: v for k, v in clean.items() if row.get(k) != v}
        if changes:
            row.update(changes)
            row["sys_updated_on"] = self.stamper.stamp()
            row["sys_updated_by"] = user
            row["sys_mod_count"] = str(int(row.get("sys_mod_count") or "0") + 1)
            table.seen.update(changes)
        return row

    def delete(self, name: str, sys_id: str) -> bool:
        return self.require(name).rows.pop(sys_id, None) is not None

    def _clean(self, table: Table, values: dict[str, Any], keep_sys: bool) -> dict[str, str]:
        clean: dict[str, str] = {}
        for column, value in values.items():
            if not isinstance(column, str) or column == "sys_id":
                continue
            if column in SYS_FIELDS and not keep_sys:
                continue  # system fields are the platform's, not the caller's
            if table.strict and not self.defines(table, column):
                continue  # a real schema silently drops columns it does not have
            clean[column] = to_sn_string(value)
        return clean

    # --- reads ----------------------------------------------------------------------------
    def resolve(self, table: Table, row: dict[str, str], path: str) -> str | None:
        """A column value, following ``ref.column`` dot-walks through reference fields."""
        head, _, rest = path.partition(".")
        if not rest:
            return row.get(head)
        target = self.tables.get(table.references.get(head, ""))
        if target is None:
            return None
        ref_row = target.rows.get(row.get(head) or "")
        return None if ref_row is None else self.resolve(target, ref_row, rest)

    def knows(self, table: Table, path: str) -> bool:
        head, _, rest = path.partition(".")
        if not rest:
            return self.has_column(table, head)
        target = self.tables.get(table.references.get(head, ""))
        return target is not None and self.knows(target, rest)

    def render(
        self,
        table: Table,
        row: dict[str, str],
        base_url: str,
        fields: list[str] | None = None,
        reference_links: bool = True,
    ) -> dict[str, Any]:
        """A row as the Table API returns it; references become ``{"link","value"}`` objects."""
        wanted = [f for f in fields or [] if self.knows(table, f)]
        columns = wanted or list(row)
        out: dict[str, Any] = {}
        for column in columns:
            value = self.resolve(table, row, column)
            value = "" if value is None else value
            target = table.references.get(column)
            if target and value and reference_links:
                out[column] = {"link": f"{base_url}/api/now/table/{target}/{value}", "value": value}
            else:
                out[column] = value
        return out
