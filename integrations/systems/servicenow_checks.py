"""What the ServiceNow connection test checks beyond credentials and tables: who the connection
acts as and its roles, and the columns its integrations rely on; plus the guard that keeps a
run from writing to a table without the source-id column.

Facts followed (API_FACTS 1.4, 1.5 and 9):

- With OAuth client credentials the calls run as the OAuth Application User, whose name the
  connection need not know: ``sys_user?sysparm_query=sys_id=javascript:gs.getUserID()`` answers
  the caller's own record. An instance that does not evaluate the script ignores the condition
  and answers every user, so only exactly one row is believed.
- Roles are rows of ``sys_user_has_role`` (inherited ones too), read by the user's sys_id.
- A written field the table does not have is dropped silently and a query condition on it is
  ignored: a missing source-id column is found here or nowhere. ``sys_dictionary`` lists a
  table's own columns (``name`` = table, ``element`` = column); an inherited one is listed under
  the parent that defines it (``sys_db_object.super_class``), so the search walks up.
- A user without read access to ``sys_dictionary`` gets a 403, or an empty list when the ACL
  filters rows. To tell "missing" from "hidden", each query also asks for ``sys_id``, which the
  root of every table hierarchy defines [U: from the platform's data model, not a doc excerpt]:
  a hierarchy in which not even ``sys_id`` shows is hidden from us, not missing the column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from integrations.systems.errors import AuthError, SyncError, SystemicError
from integrations.systems.needs import TableNeed

if TYPE_CHECKING:
    from integrations.systems.servicenow import ServiceNowClient

# A table hierarchy deeper than this is not followed further (ServiceNow's are a few levels).
MAX_INHERITANCE = 10
# What the customer creates for the source identity: `<system>.<8 hex>:<key>`, and line keys
# `<key>/<line>`, fit in 100 characters for every ERP key we know.
SOURCE_COLUMN_TYPE = "String, 100"
USER_QUERY = "sys_id=javascript:gs.getUserID()"

Line = dict[str, Any]


@dataclass
class TableRead:
    """One Table API query: ``limit`` rows at most, from ``offset``."""

    table: str
    query: str
    fields: list[str] | None = None
    limit: int | None = None
    offset: int = 0


@dataclass
class ColumnScan:
    """Where the asked columns are defined.

    ``owner[(table, column)]``: the table (itself or an ancestor) whose dictionary lists it.
    ``missing``: looked for through the whole hierarchy, which we can see, and not found.
    ``hidden``: tables whose dictionary entries this user cannot see (nothing, not even sys_id).
    ``unregistered``: tables absent from ``sys_db_object`` (not installed, or hidden too).
    """

    owner: dict[tuple[str, str], str] = field(default_factory=dict)
    missing: set[tuple[str, str]] = field(default_factory=set)
    hidden: set[str] = field(default_factory=set)
    unregistered: set[str] = field(default_factory=set)


def dictionary_read(tables: list[str], columns: list[str]) -> TableRead:
    """The ``sys_dictionary`` query for these columns of these tables (at most one row per pair
    can match, whatever the connection's page size)."""
    return TableRead("sys_dictionary", f"nameIN{','.join(tables)}^elementIN{','.join(columns)}",
                     ["name", "element"], len(tables) * len(columns))


def _defined(sn: ServiceNowClient, tables: list[str], columns: list[str]) -> set[tuple[str, str]]:
    """(table, column) pairs that ``sys_dictionary`` lists, of those asked (one query)."""
    rows, _ = sn.read(dictionary_read(tables, columns))
    return _listed(rows, tables, columns)


def _listed(rows: list[dict[str, Any]], tables: list[str], columns: list[str]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for row in rows:  # re-checked: an ignored condition would answer other rows
        name, element = str(row.get("name") or ""), str(row.get("element") or "")
        if name in tables and element in columns:
            found.add((name, element))
    return found


def _parents(sn: ServiceNowClient, tables: list[str]) -> dict[str, str]:
    """Each registered table's parent (``super_class``) name, empty for a root (one query)."""
    rows, _ = sn.list("sys_db_object", f"nameIN{','.join(tables)}", fields=["name", "super_class.name"],
                      limit=len(tables) + 1)
    return {str(row.get("name")): str(row.get("super_class.name") or "") for row in rows
            if str(row.get("name")) in tables}


def scan_columns(sn: ServiceNowClient, wanted: dict[str, set[str]]) -> ColumnScan:
    """Where each wanted column of each table is defined, through ``sys_dictionary``.

    One query when every column is on its own table; each level of ``super_class`` followed
    costs two more (the parents, then their dictionary), and only for the columns not found yet.
    """
    scan = ColumnScan()
    pending = {table: set(columns) for table, columns in wanted.items() if columns}
    at = {table: table for table in pending}  # the ancestor being searched
    chain = {table: [table] for table in pending}
    visible: set[str] = set()
    while pending:
        columns = sorted(set().union(*pending.values()) | {"sys_id"})
        defined = _defined(sn, sorted({at[table] for table in pending}), columns)
        for table in list(pending):
            here = {element for name, element in defined if name == at[table]}
            if here:
                visible.add(table)
            for column in pending[table] & here:
                scan.owner[(table, column)] = at[table]
            pending[table] -= here
            if not pending[table]:
                del pending[table]
        if not pending:
            break
        parents = _parents(sn, sorted({at[table] for table in pending}))
        for table in list(pending):
            if at[table] not in parents and at[table] == table:
                scan.unregistered.add(table)
            parent = parents.get(at[table], "")
            if parent and parent not in chain[table] and len(chain[table]) < MAX_INHERITANCE:
                at[table] = parent
                chain[table].append(parent)
                continue
            columns_left = pending.pop(table)
            if table in visible:
                scan.missing |= {(table, column) for column in columns_left}
            else:
                scan.hidden.add(table)
    return scan


def unreadable(exc: SyncError) -> bool:
    """A refusal to read the schema tables (ACL), as opposed to credentials or an outage."""
    return isinstance(exc, SystemicError) and not isinstance(exc, AuthError) and exc.status in (403, 404)


def missing_source_column(table: str, column: str) -> str:
    return (f"Create the column {column} ({SOURCE_COLUMN_TYPE}) on {table}: the portal keeps each row's source "
            f"identity there (the connection's source id field) and finds its rows by it; without it every "
            f"sync would create them again")


# --- the connection test ---------------------------------------------------------------------
def check_columns(sn: ServiceNowClient, needs: dict[str, TableNeed], installed: set[str]) -> list[Line]:
    """A line per table whose columns are all there, and one per missing column naming what to create."""
    wanted: dict[str, dict[str, str]] = {}  # table -> column -> the message if it is missing
    for logical, need in sorted(needs.items()):
        table = sn.tables.get(logical, "")
        if table not in installed:
            continue  # reported as a missing table already
        columns = wanted.setdefault(table, {})
        who = ", ".join(sorted(need.integrations))
        if need.written:
            columns.setdefault(sn.source_id_field, missing_source_column(table, sn.source_id_field))
        for kind, fields in (("code", sn.code_fields), ("name", sn.label_fields)):
            if logical in fields:
                column = fields[logical]
                columns.setdefault(column, (
                    f"Column {column} is missing on {table}: it should hold the {logical.replace('_', ' ')}'s "
                    f"{kind}; create it, or set the connection's {'code' if kind == 'code' else 'label'}_fields "
                    f"for {logical} to the column that does"))
        for column, why in sorted(need.columns.items()):
            columns.setdefault(column, f"Create the column {column} on {table}: {why} ({who})")
    if not wanted:
        return []
    try:
        scan = scan_columns(sn, {table: set(columns) for table, columns in wanted.items()})
    except SyncError as exc:
        if not unreadable(exc):
            return [{"check": "columns", "ok": False, "message": f"Cannot check the columns: {exc}"}]
        scan = ColumnScan(hidden=set(wanted))
    lines: list[Line] = []
    for table, columns in sorted(wanted.items()):
        missing = sorted(column for column in columns if (table, column) in scan.missing)
        if table in scan.hidden:
            found, missing, unknown = _probe(sn, table, sorted(columns))
            if unknown:
                lines.append({"check": f"columns:{table}", "ok": False, "message": (
                    f"Cannot check the columns {', '.join(unknown)} of {table}: the user cannot read "
                    "sys_dictionary and the table has no rows yet; grant read access to sys_dictionary and "
                    "sys_db_object, or check by hand that they exist")})
            scan.owner.update({(table, column): table for column in found})
        for column in missing:
            lines.append({"check": f"column:{table}.{column}", "ok": False, "message": columns[column]})
        present = [column for column in sorted(columns) if (table, column) in scan.owner]
        if present and not missing and len(present) == len(columns):
            inherited = [f"{column} from {scan.owner[(table, column)]}" for column in present
                         if scan.owner[(table, column)] != table]
            note = f" (inherited: {', '.join(inherited)})" if inherited else ""
            lines.append({"check": f"columns:{table}", "ok": True,
                          "message": f"{table} has the columns {', '.join(present)}{note}"})
    return lines


def _probe(sn: ServiceNowClient, table: str, columns: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Without the dictionary: read one row asking for the columns (a missing one is left out of
    the answer). Returns (found, missing, unknown); all unknown when the table has no rows."""
    try:
        rows, _ = sn.list(table, fields=[*columns, "sys_id"], limit=1)
    except SyncError:
        return [], [], columns
    if not rows:
        return [], [], columns
    return [c for c in columns if c in rows[0]], [c for c in columns if c not in rows[0]], []


def whoami(sn: ServiceNowClient) -> tuple[str, str] | None:
    """(sys_id, user name) of the user the connection's calls run as, or None when the instance
    does not say (exactly one row, or we cannot tell)."""
    rows, _ = sn.list("sys_user", USER_QUERY, fields=["sys_id", "user_name"], limit=2)
    if len(rows) != 1 or not rows[0].get("sys_id"):
        return None
    return str(rows[0]["sys_id"]), str(rows[0].get("user_name") or rows[0]["sys_id"])


def check_roles(sn: ServiceNowClient) -> list[Line]:
    """The roles of the user the connection acts as: found through the token itself, else by the
    configured user name; each missing role named."""
    configured = str(sn.spec.setting("username") or sn.spec.setting("service_account") or "")
    try:
        me = whoami(sn)
    except SyncError as exc:
        if not configured:
            return [{"check": "roles", "ok": False,
                     "message": f"Cannot read which ServiceNow user the connection acts as: {exc}"}]
        me = None
    lines: list[Line] = []
    if me is not None:
        user_id, user = me
        note = f" (the service account setting says {configured})" if configured and configured != user else ""
        lines.append({"check": "user", "ok": True, "message": f"The connection acts as the ServiceNow user {user}{note}"})
        query, match = f"user={user_id}", (lambda row: str(row.get("user") or "") == user_id)
    elif configured:
        user = configured
        query, match = f"user.user_name={user}", (lambda row: str(row.get("user.user_name", user)) == user)
    else:
        return [{"check": "roles", "ok": False, "message": (
            "Cannot tell which ServiceNow user the connection acts as (the instance did not answer "
            f"sys_user?sysparm_query={USER_QUERY} with one user): set the service account user name")}]
    try:
        rows, _ = sn.list("sys_user_has_role", f"{query}^role.nameIN{','.join(sn.required_roles)}",
                          fields=["role.name", "user", "user.user_name"], limit=100)
    except SyncError as exc:
        return [*lines, {"check": "roles", "ok": False, "message": f"Cannot read the roles of {user}: {exc}"}]
    held = {str(row.get("role.name", "")) for row in rows if match(row)}
    return [*lines, *(
        {"check": f"role:{role}", "ok": role in held,
         "message": f"{user} holds {role}" if role in held else f"{user} lacks the role {role}"}
        for role in sn.required_roles
    )]


# --- the guard of every run ------------------------------------------------------------------
class SourceColumnGuard:
    """Refuses to write to a table without the source-id column (a systemic error).

    Checked once per client, i.e. once per sync cycle: before the first write, one
    ``sys_dictionary`` query covers the source-id column of every table of the profile at once
    (one extra call per cycle that writes anything, none when it rides with a read made before
    the first write: :meth:`first_read`); a table that does not list it itself is
    followed up its ``super_class`` before the first write into it. When this user cannot read
    the dictionary the write goes ahead, once noted in the audit trail: the connection test says
    what to grant.
    """

    def __init__(self, sn: ServiceNowClient) -> None:
        self.sn = sn
        self.verdicts: dict[str, str] = {}  # table -> ok | unresolved | missing | unverified

    def first_read(self, table: str) -> TableRead | None:
        """The one query that judges ``table`` and every other table of the profile not judged
        yet, or None when ``table`` is judged: for a read before the first write into ``table``
        to carry in the same call (:meth:`ServiceNowClient.iter_pages_before_write`), the
        answer then given to :meth:`judge`."""
        if table in self.verdicts:
            return None
        return dictionary_read(self._unjudged(table), [self.sn.source_id_field, "sys_id"])

    def judge(self, table: str, answer: list[dict[str, Any]] | SyncError) -> None:
        """First verdicts from the answer to :meth:`first_read` (its rows, or the error it met)."""
        tables, column = self._unjudged(table), self.sn.source_id_field
        if isinstance(answer, SyncError):
            if not unreadable(answer):
                raise answer
            self._unverified(tables, f"the user cannot read sys_dictionary: {answer}")
            return
        listed = _listed(answer, tables, [column, "sys_id"])
        for name in tables:
            self.verdicts[name] = "ok" if (name, column) in listed else "unresolved"

    def _unjudged(self, table: str) -> list[str]:
        return sorted({table, *self.sn.tables.values()} - set(self.verdicts))

    def require(self, table: str) -> None:
        column = self.sn.source_id_field
        if table not in self.verdicts:
            read = self.first_read(table)
            assert read is not None
            try:
                rows, _ = self.sn.read(read)
            except SyncError as exc:
                self.judge(table, exc)
            else:
                self.judge(table, rows)
        if self.verdicts[table] == "unresolved":
            try:
                scan = scan_columns(self.sn, {table: {column}})
            except SyncError as exc:
                if not unreadable(exc):
                    raise
                scan = ColumnScan(hidden={table})
            if (table, column) in scan.owner:
                self.verdicts[table] = "ok"
            elif (table, column) in scan.missing:
                self.verdicts[table] = "missing"
            elif table in scan.unregistered:
                self.verdicts[table] = "unverified"  # not installed: the write itself says so
            else:
                self._unverified([table], "the user cannot see its entries in sys_dictionary")
        if self.verdicts[table] == "missing":
            raise SystemicError(f"ServiceNow table {table} has no column {column}; nothing was written to it. "
                                f"{missing_source_column(table, column)}", code="missing_column")

    def _unverified(self, tables: list[str], why: str) -> None:
        for table in tables:
            self.verdicts[table] = "unverified"
        self.sn.http.on_event("connection.columns_unverified", {
            "reason": f"Could not check that {', '.join(tables)} have the column {self.sn.source_id_field} "
                      f"({why}); writing anyway. Run the connection test to see what to grant.",
            "tables": tables})
