"""Bulk writes for the per-page bookkeeping, without the ORM's per-value machinery.

Measured with ``manage.py benchmark`` (10,000 invoices of 5 lines): ``bulk_update`` compiled one
``CASE WHEN`` branch per row and column and cost more than every HTTP call of the sync; even
``bulk_create`` spends most of its time preparing each value through the generic field API.
These helpers write the same rows with plain parametrised SQL (multi-row ``INSERT``, and one
``UPDATE ... WHERE id = %s`` executed for many rows), preparing values with one adapter per
column chosen once: the backend's own adapters for date-times and JSON (so SQLite and
PostgreSQL get exactly what the ORM would send), and the model field's full preparation for
any value the fast path does not recognise. No signals fire, as with ``bulk_create``.

On PostgreSQL the statements go through a server-binding cursor: Django's default cursor binds
client-side, which spelled every value of a multi-row INSERT into the SQL text in Python (a sixth
of a worker's CPU in ``benchmark --scale``); here the values travel beside the statement, each
dumped by psycopg's C adapters, and inserts are one single-row statement run for every row
(``executemany``, which psycopg pipelines: one round trip). Nothing is prepared on the server (a
pooler in transaction mode could not keep it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import connections, models, router, transaction
from django.db.models.constants import OnConflict
from django.utils import timezone

from integrations.flows.base import EncodedJSON

Adapter = Callable[[Any], Any]


class _ExactEncoder(json.JSONEncoder):
    """For JSON columns without an encoder of their own: Decimals as strings, at write time.

    Decimals (and dates...) become strings, never floats, so a payload can be written as the
    flow built it instead of being serialised and parsed once more beforehand.
    """

    def default(self, o: Any) -> Any:
        return str(o)

    def encode(self, o: Any) -> str:
        # a snapshot already serialised to compute its hash is stored as that very text
        return o.json if type(o) is EncodedJSON else super().encode(o)


_TEXT = frozenset({"CharField", "TextField", "URLField", "SlugField", "EmailField"})
_INTEGER = frozenset({"IntegerField", "PositiveIntegerField", "BigIntegerField", "SmallIntegerField",
                      "PositiveSmallIntegerField", "PositiveBigIntegerField", "ForeignKey", "OneToOneField"})


def _adapter(field: models.Field, connection: Any) -> Adapter:
    def generic(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    kind = field.get_internal_type()
    if kind in _TEXT:
        return lambda value: value if value is None or type(value) is str else generic(value)
    if kind in _INTEGER:
        return lambda value: value if value is None or type(value) is int else generic(value)
    if kind == "BooleanField":
        return lambda value: value if value is None or type(value) is bool else generic(value)
    if kind == "DateTimeField":
        adapt = connection.ops.adapt_datetimefield_value
        last: list[Any] = [None, None]  # rows of a batch share one "now": adapt it once

        def adapt_datetime(value: Any) -> Any:
            if value is None:
                return None
            if value is last[0]:
                return last[1]
            if type(value) is not datetime or value.tzinfo is None:
                return generic(value)
            last[:] = [value, adapt(value)]
            return last[1]

        return adapt_datetime
    if kind == "JSONField":
        adapt_json, encoder = connection.ops.adapt_json_value, field.encoder or _ExactEncoder
        return lambda value: None if value is None else adapt_json(value, encoder)
    return generic


def _columns(model: type[models.Model], names: Iterable[str] | None,
             connection: Any) -> list[tuple[models.Field, Adapter]]:
    meta = model._meta
    fields = ([meta.get_field(name) for name in names] if names is not None
              else [f for f in meta.concrete_fields if not f.primary_key])
    return [(field, _adapter(field, connection)) for field in fields]


def _stamp(objs: list[models.Model], fields: list[models.Field], adding: bool) -> None:
    """What ``pre_save`` does for ``auto_now`` / ``auto_now_add`` columns, once for the batch."""
    now = timezone.now()
    for field in fields:
        if getattr(field, "auto_now", False) or (adding and getattr(field, "auto_now_add", False)):
            for obj in objs:
                setattr(obj, field.attname, now)


class Row:
    """A row to insert with :func:`insert_many` without building a model instance (whose
    ``__init__`` walks every field: measured at a tenth of a page's bookkeeping for its
    attempts). Columns not given take the field's default (:func:`row_of`)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


_DEFAULTS: dict[type[models.Model], dict[str, Any]] = {}


def row_of(model: type[models.Model], **values: Any) -> Row:
    """A :class:`Row` of ``model`` (attribute names: ``record_id``, not ``record``): the given
    values over the defaults of its other concrete columns. Read-only use: defaults are shared."""
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        defaults = _DEFAULTS[model] = {field.attname: field.get_default() for field in model._meta.concrete_fields
                                       if not field.primary_key}
    unknown = values.keys() - defaults.keys()
    if unknown:
        raise TypeError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
    return Row({**defaults, **values})


_MUTABLE = (dict, list)


def new_instance(model: type[models.Model], **values: Any) -> models.Model:
    """``model(**values)`` for a row about to be inserted in bulk, without ``Model.__init__``'s
    walk over every field and its signals: the defaults are computed once per model (a fresh one
    per row where it is mutable, a dict or a list), the given values set over them."""
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        row_of(model)
        defaults = _DEFAULTS[model]
    obj = model.__new__(model)
    state = obj.__dict__
    state.update(defaults)
    for name, value in defaults.items():
        if isinstance(value, _MUTABLE):
            state[name] = type(value)(value)
    state[model._meta.pk.attname] = None
    state.update(values)
    obj._state = models.base.ModelState()
    return obj


def _binds_on_server(connection: Any) -> bool:
    return connection.vendor == "postgresql"


def _cursor(connection: Any) -> Any:
    """A cursor that sends values apart from the SQL where the backend binds client-side by default."""
    if not _binds_on_server(connection) or connection.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor  # psycopg 3 only, like the settings

    connection.ensure_connection()
    raw = ServerBindingCursor(connection.connection)
    # The only server-binding cursor of this connection: never prepare (the others cannot).
    connection.connection.prepare_threshold = None
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def insert_many(model: type[models.Model], objs: list[Any], *, stamp: bool = True,
                ignore_conflicts: bool = False) -> None:
    """INSERT every concrete column but the primary key: multi-row statements, or on PostgreSQL
    one short statement run for every row (no statement nears the protocol's 65,535 parameters).

    The pks are not read back (``executemany`` and multi-row inserts cannot portably return
    them in order): select the rows by a unique key afterwards when they are needed.
    ``stamp=False`` keeps the objects' own ``auto_now``/``auto_now_add`` values (bulk loads of
    history); by default they get "now", as ``save`` would give them. ``ignore_conflicts``
    skips a row a unique constraint already holds (another process inserted it first), in the
    backend's own words, as ``bulk_create(ignore_conflicts=True)`` does.
    """
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    columns = _columns(model, None, connection)
    fields = [field for field, _ in columns]
    if stamp:
        _stamp(objs, fields, adding=True)
    quote = connection.ops.quote_name
    size = max(1, connection.ops.bulk_batch_size(fields, objs))
    # Identifiers come from the model and are quoted; every value is a parameter.
    conflict = OnConflict.IGNORE if ignore_conflicts else None
    head = (f"{connection.ops.insert_statement(on_conflict=conflict)} {quote(model._meta.db_table)} "
            f"({', '.join(quote(f.column) for f in fields)}) VALUES ")
    tail = connection.ops.on_conflict_suffix_sql(fields, conflict, None, None) if conflict else ""
    one = f"({', '.join(['%s'] * len(fields))})"
    suffix = f" {tail}" if tail else ""
    with transaction.atomic(using=alias, savepoint=False), _cursor(connection) as cursor:
        if _binds_on_server(connection):
            # one short statement for every row, pipelined by psycopg: the driver reads a long
            # multi-row statement's placeholders in Python each time, a short one once
            cursor.executemany(head + one + suffix, [[adapt(getattr(obj, field.attname)) for field, adapt in columns]
                                                     for obj in objs])
            return
        for start in range(0, len(objs), size):
            batch = objs[start:start + size]
            params = [adapt(getattr(obj, field.attname)) for obj in batch for field, adapt in columns]
            cursor.execute(head + ", ".join([one] * len(batch)) + suffix, params)


def update_many(model: type[models.Model], objs: list[models.Model], names: list[str]) -> None:
    """UPDATE the ``names`` columns of rows that exist, by pk (each object once).

    PostgreSQL: one statement run for every row (pipelined by psycopg). SQLite: one
    ``UPDATE ... FROM (VALUES ...)`` per batch of rows. Its driver lets go of the interpreter lock
    around every statement it steps, and ``executemany`` steps once per row: with the page's HTTP
    threads busy, taking the lock back after each row cost up to a switch interval (5 ms), and
    20,000 outcome rows took seconds of waiting (``manage.py benchmark --pair servicetitan-x3``).
    """
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    columns = _columns(model, names, connection)
    _stamp(objs, [field for field, _ in columns], adding=False)
    meta = model._meta
    quote = connection.ops.quote_name
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    params = [[adapt(getattr(obj, field.attname)) for field, adapt in columns] + [obj.pk] for obj in objs]
    # One transaction: in autocommit, SQLite would commit (and sync the disk) once per row.
    with transaction.atomic(using=alias, savepoint=False), _cursor(connection) as cursor:
        if not _updates_from_values(connection):
            cursor.executemany("UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608 - quoted identifiers
                table, ", ".join(f"{quote(field.column)} = %s" for field, _ in columns), pk), params)
            return
        # VALUES columns are named column1, column2...: the pk is the last; each value takes the
        # column's own type affinity when stored, as a bound parameter of a plain UPDATE does.
        width = len(columns) + 1
        assign = ", ".join(f"{quote(field.column)} = v.column{n}" for n, (field, _) in enumerate(columns, 1))
        one = f"({', '.join(['%s'] * width)})"
        size = max(1, connection.ops.bulk_batch_size([field for field, _ in columns] + [meta.pk], objs))
        for start in range(0, len(params), size):
            batch = params[start:start + size]
            cursor.execute(f"UPDATE {table} SET {assign} FROM (VALUES {', '.join([one] * len(batch))}) AS v "  # noqa: S608
                           f"WHERE {table}.{pk} = v.column{width}", [value for row in batch for value in row])


def _updates_from_values(connection: Any) -> bool:
    """SQLite from 3.33 on takes ``UPDATE ... FROM``."""
    return connection.vendor == "sqlite" and connection.Database.sqlite_version_info >= (3, 33, 0)
