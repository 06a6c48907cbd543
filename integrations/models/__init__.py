"""The portal's data model, one module per concern (see DESIGN.md section 3)."""

from integrations.models.alerts import AlertCondition, AlertEvent, AlertSettings, AlertState, AlertStatus
from integrations.models.audit import AuditEvent, AuditImmutableError
from integrations.models.connections import AuthMethod, Connection, System
from integrations.models.integrations import Integration, Schedule, StreamState
from integrations.models.mappings import (
    Mapping,
    MappingKind,
    MappingReason,
    MappingStatus,
    ReferenceRecord,
    Side,
)
from integrations.models.queues import FailedRecord, HeldRecord
from integrations.models.reconciliation import (
    DifferenceReason,
    Period,
    PeriodError,
    ReconciliationLine,
    ReconciliationRun,
    ReconciliationStatus,
    ReconciliationTrigger,
)
from integrations.models.records import (
    ErrorClass,
    RecordStatus,
    RunStatus,
    SyncAttempt,
    SyncRecord,
    SyncRun,
    Trigger,
)
from integrations.models.webhooks import WebhookEvent

__all__ = [
    "AlertCondition",
    "AlertEvent",
    "AlertSettings",
    "AlertState",
    "AlertStatus",
    "AuditEvent",
    "AuditImmutableError",
    "AuthMethod",
    "Connection",
    "DifferenceReason",
    "ErrorClass",
    "FailedRecord",
    "HeldRecord",
    "Integration",
    "Mapping",
    "MappingKind",
    "MappingReason",
    "MappingStatus",
    "Period",
    "PeriodError",
    "ReconciliationLine",
    "ReconciliationRun",
    "ReconciliationStatus",
    "ReconciliationTrigger",
    "RecordStatus",
    "ReferenceRecord",
    "RunStatus",
    "Schedule",
    "Side",
    "StreamState",
    "SyncAttempt",
    "SyncRecord",
    "SyncRun",
    "System",
    "Trigger",
    "WebhookEvent",
]
