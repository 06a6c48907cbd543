"""List filters shared by console pages; none of them counts or scans a big table."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from accounts.scoping import scope
from integrations.admin.base import tenant_path
from integrations.engine.documents import stream_label
from integrations.models import StreamState


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A foreign-key filter whose choices are only the user's tenants' rows.

    Django's own lists every row of the related table, which would name other tenants'
    integrations and connections.
    """

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        path = tenant_path(related)
        rows = related._default_manager.all()
        if path is not None:
            rows = scope(rows, request.user, path)
        if path != "tenant":
            return [(obj.pk, str(obj)) for obj in rows]
        rows = list(rows.select_related("tenant"))
        if len({obj.tenant_id for obj in rows}) < 2:
            return [(obj.pk, str(obj)) for obj in rows]
        # same names recur across tenants: say whose it is
        return [(obj.pk, f"{obj} ({obj.tenant})") for obj in rows]

    def has_output(self) -> bool:
        # The changelist drops a filter without output *and the parameter it consumed*: a user
        # with one integration who asked for another tenant's (?integration__id__exact=<id>) got
        # every row of their own. A filter that was asked for is always kept and applied.
        return bool(self.used_parameters) or super().has_output()

    def queryset(self, request, queryset):
        wanted = self.used_parameters.get(self.lookup_kwarg)
        if wanted is not None:
            visible = {str(pk) for pk, _ in self.lookup_choices}
            if not {str(value) for value in wanted} <= visible:
                # an id the user cannot see (another tenant's, or none at all): nothing matches
                return queryset.none()
        return super().queryset(request, queryset)


class StreamFilter(admin.SimpleListFilter):
    """Streams of the user's integrations, read from their stream states, not from records.

    Each is offered by its label ("Supplier invoices (X3 → ServiceNow AP)"); the value in the
    address stays the stream's name. A name two kinds of integration share, with different
    labels, lists its labels together.
    """

    title = "document kind"
    parameter_name = "stream"
    integration_path = "integration"

    def lookups(self, request, model_admin):
        streams = scope(StreamState.objects.all(), request.user, "integration__tenant")
        labels: dict[str, list[str]] = {}
        for kind, name in streams.order_by().values_list("integration__kind", "stream").distinct():
            found = labels.setdefault(name, [])
            label = stream_label(kind, name)
            if label not in found:
                found.append(label)
        return sorted(((name, " / ".join(sorted(words))) for name, words in labels.items()),
                      key=lambda choice: choice[1].lower())

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(stream=self.value())
        return queryset


class AgeFilter(admin.SimpleListFilter):
    """How long ago a row last changed; ``field`` is the timestamp compared."""

    title = "age"
    parameter_name = "age"
    field = "updated_at"
    CHOICES = {
        "1h": ("Last hour", timedelta(hours=1), None),
        "24h": ("Last 24 hours", timedelta(days=1), None),
        "7d": ("Last 7 days", timedelta(days=7), None),
        "old": ("Older than 7 days", None, timedelta(days=7)),
        "stale": ("Older than 30 days", None, timedelta(days=30)),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _, _) in self.CHOICES.items()]

    def queryset(self, request, queryset):
        choice = self.CHOICES.get(self.value() or "")
        if choice is None:
            return queryset
        _, newer_than, older_than = choice
        now = timezone.now()
        if newer_than is not None:
            return queryset.filter(**{f"{self.field}__gte": now - newer_than})
        return queryset.filter(**{f"{self.field}__lt": now - older_than})
