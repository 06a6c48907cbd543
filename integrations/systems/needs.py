"""What the integrations using a connection need of its tables: the connection test checks it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TableNeed:
    """What the integrations using one connection need of one logical table.

    ``written``: rows are written, so the source-id column must exist. ``columns``: further
    columns by name, each with why it is needed (an integration setting names it, a renamed
    field). ``integrations``: who needs the table, for the report.
    """

    written: bool = False
    columns: dict[str, str] = field(default_factory=dict)
    integrations: set[str] = field(default_factory=set)
