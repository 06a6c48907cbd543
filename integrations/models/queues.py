"""The records queues people work through, as their own console pages.

Proxies of SyncRecord, the way django-q splits Success and Failure: same table, one page per
state. The admin narrows each to its status; the model stays one.
"""

from __future__ import annotations

from integrations.models.records import SyncRecord


class FailedRecord(SyncRecord):
    """A record whose last attempt failed (transient, data or systemic)."""

    class Meta:
        proxy = True
        verbose_name = "failed record"
        verbose_name_plural = "failed records"


class HeldRecord(SyncRecord):
    """A record waiting for a mapping (or a person's decision on a conflict)."""

    class Meta:
        proxy = True
        verbose_name = "held record"
        verbose_name_plural = "held records (waiting for mapping)"
