"""The REST API's views, one module per concern."""

from integrations.api.views.audit import AuditEventViewSet, MeView
from integrations.api.views.connections import ConnectionViewSet
from integrations.api.views.integrations import IntegrationViewSet, RunViewSet
from integrations.api.views.mappings import MappingViewSet
from integrations.api.views.reconciliation import ReconciliationViewSet
from integrations.api.views.records import RecordViewSet

__all__ = [
    "AuditEventViewSet",
    "ConnectionViewSet",
    "IntegrationViewSet",
    "MappingViewSet",
    "MeView",
    "ReconciliationViewSet",
    "RecordViewSet",
    "RunViewSet",
]
