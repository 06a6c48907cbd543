"""What the API shows and accepts. Secrets are write-only: never serialized back, not even masked
values, only the names of the ones that are set."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Role, Tenant
from accounts.scoping import tenants_for
from integrations.api.actions import merged_secrets
from integrations.flows import get_flow
from integrations.models import (
    AuditEvent,
    Connection,
    Integration,
    Mapping,
    StreamState,
    SyncAttempt,
    SyncRecord,
    SyncRun,
)
from integrations.systems.redaction import redact, redact_text
from integrations.systems.registry import SCHEMAS, schema_for
from integrations.systems.schema import SECRET_KEYS, ConnectionFields
from integrations.tasks import REPLAY_REASON_MAX, REPLAY_REASON_MIN


class TenantField(serializers.SlugRelatedField):
    """A tenant by slug, among those where the user holds the admin role.

    A tenant the user cannot administer gets the same answer as one that does not exist.
    """

    default_error_messages = {
        "does_not_exist": "No tenant {slug_name}={value} that you administer.",
        "invalid": "Give the tenant's slug.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="slug", **kwargs)

    def get_queryset(self) -> QuerySet:
        request = self.context.get("request")
        return tenants_for(request.user if request else None, Role.ADMIN)


class ConnectionRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Connection
        fields = ["id", "name", "system"]


class ConnectionSerializer(serializers.ModelSerializer):
    """A connection. ``secrets`` is write-only: absent or blank keys keep the stored value."""

    tenant = TenantField(queryset=Tenant.objects.none())
    secrets = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=4000),
        write_only=True,
        required=False,
        help_text="Write-only. Keys by system and auth method: " + "; ".join(
            f"{schema.label} {method}: {', '.join(schema.method_secrets(method))}"
            for schema in SCHEMAS.values() for method in schema.auth_methods
        ) + ". Absent or blank keys keep the stored value.",
    )
    secrets_set = serializers.SerializerMethodField(help_text="Names of the secrets that are stored (never values).")
    settings = serializers.DictField(required=False, help_text="Non-secret settings: usernames, client ids, token URL...")
    last_error = serializers.SerializerMethodField()
    last_test_report = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        fields = [
            "id", "uuid", "tenant", "name", "system", "url", "port", "company", "auth_method", "settings",
            "secrets", "secrets_set", "needs_reauth", "token_expires_at", "refresh_token_expires_at",
            "last_error", "last_test_at", "last_test_ok", "last_test_report", "created_at", "updated_at",
        ]
        read_only_fields = [
            "uuid", "needs_reauth", "token_expires_at", "refresh_token_expires_at", "last_test_at",
            "last_test_ok", "created_at", "updated_at",
        ]
        extra_kwargs = {"port": {"min_value": 1, "max_value": 65535},
                        "system": {"error_messages": {"invalid_choice": "No connector for {input} yet."}}}

    def get_secrets_set(self, obj: Connection) -> list[str]:
        return sorted(k for k, v in (obj.secrets or {}).items() if v not in (None, ""))

    def get_last_error(self, obj: Connection) -> str:
        return redact_text(obj.last_error or "")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_last_test_report(self, obj: Connection) -> dict[str, Any]:
        return redact(obj.last_test_report or {})

    def to_representation(self, instance: Connection) -> dict[str, Any]:
        data = super().to_representation(instance)
        # settings are non-secret by design; drop a secret that slipped in by another road
        data["settings"] = {k: v for k, v in (instance.settings or {}).items() if k not in SECRET_KEYS}
        return data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance: Connection | None = self.instance
        errors: dict[str, str] = {}
        if instance is not None:
            for frozen, current_value in (("tenant", instance.tenant.slug), ("system", instance.system)):
                if frozen in self.initial_data and self.initial_data[frozen] != current_value:
                    errors[frozen] = "Cannot be changed; create a new connection instead."
        if errors:
            raise serializers.ValidationError(errors)

        def current(name: str) -> Any:
            return attrs[name] if name in attrs else getattr(instance, name, None)

        tenant, system, method = current("tenant"), current("system"), current("auth_method")
        name = current("name")
        if (tenant is not None and name and Connection.objects.filter(tenant=tenant, name=name)
                .exclude(pk=getattr(instance, "pk", None)).exists()):
            errors["name"] = "A connection with this name already exists in this tenant."
        schema = schema_for(system)
        if schema is None:
            errors["system"] = f"No connector for {system} yet."
            raise serializers.ValidationError(errors)
        secrets = merged_secrets(getattr(instance, "secrets", None) or {}, schema.method_secrets(method),
                                 attrs.get("secrets") or {})
        fields = ConnectionFields(url=current("url") or "", port=current("port"), company=current("company") or "",
                                  auth_method=method, settings=current("settings"), secrets=secrets)
        for field_name, messages in schema.problems(fields).items():
            errors.setdefault(field_name, messages)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ConnectionUpdateSerializer(ConnectionSerializer):
    """Moving a connection to another tenant or system would be a new connection: both are fixed."""

    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta(ConnectionSerializer.Meta):
        read_only_fields = [*ConnectionSerializer.Meta.read_only_fields, "system"]


class StreamStateSerializer(serializers.ModelSerializer):
    running = serializers.SerializerMethodField(help_text="A run of this stream holds its lock.")

    class Meta:
        model = StreamState
        fields = ["stream", "enabled", "schedule", "cron", "cursor", "last_success_at", "resume", "running"]
        read_only_fields = fields

    def get_running(self, obj: StreamState) -> bool:
        return bool(obj.lock_token)


class IntegrationSerializer(serializers.ModelSerializer):
    """An integration; admins may rename it and change its settings. Use pause/resume for ``enabled``."""

    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    source = ConnectionRefSerializer(read_only=True)
    target = ConnectionRefSerializer(read_only=True)
    streams = StreamStateSerializer(many=True, read_only=True)
    settings = serializers.DictField(required=False)

    class Meta:
        model = Integration
        fields = ["id", "uuid", "tenant", "name", "kind", "source", "target", "enabled", "settings", "streams",
                  "created_at"]
        read_only_fields = ["uuid", "kind", "enabled", "created_at"]

    def validate_settings(self, value: dict[str, Any]) -> dict[str, Any]:
        instance: Integration | None = self.instance
        problems = get_flow(instance.kind).settings_errors(value) if instance else []
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_name(self, value: str) -> str:
        instance: Integration | None = self.instance
        if instance and Integration.objects.filter(tenant_id=instance.tenant_id, name=value).exclude(
                pk=instance.pk).exists():
            raise serializers.ValidationError("An integration with this name already exists in this tenant.")
        return value


class RunNowSerializer(serializers.Serializer):
    streams = serializers.ListField(
        child=serializers.CharField(), required=False, allow_empty=True,
        help_text="Run only these streams (in dependency order); default: every enabled stream.",
    )

    def validate_streams(self, value: list[str]) -> list[str]:
        known = self.context["stream_names"]
        unknown = [s for s in value if s not in known]
        if unknown:
            raise serializers.ValidationError(f"Unknown stream(s) {', '.join(unknown)}; this integration has "
                                              f"{', '.join(known)}.")
        return value


class TaskQueuedSerializer(serializers.Serializer):
    task_id = serializers.CharField(allow_null=True, help_text="The django-q task id.")
    records = serializers.IntegerField(required=False)


class RunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = SyncRun
        fields = ["id", "uuid", "integration", "stream", "trigger", "status", *SyncRun.COUNTERS,
                  "call_usage", "continues_at", "started_at", "finished_at", "duration_seconds", "error",
                  "triggered_by"]
        read_only_fields = fields

    def get_duration_seconds(self, obj: SyncRun) -> float | None:
        return obj.duration.total_seconds() if obj.duration else None

    def get_error(self, obj: SyncRun) -> str:
        return redact_text(obj.error or "")


class RecordSerializer(serializers.ModelSerializer):
    missing = serializers.SerializerMethodField(help_text="Mapping keys (kind:code) this record waits for.")

    class Meta:
        model = SyncRecord
        fields = ["id", "integration", "stream", "source_key", "business_key", "status", "target_id", "target_url",
                  "error_class", "error_message", "missing", "attempts", "next_retry_at", "last_run",
                  "created_at", "updated_at", "synced_at"]
        read_only_fields = fields

    def get_missing(self, obj: SyncRecord) -> list[str]:
        return obj.missing_keys


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncAttempt
        fields = ["number", "run", "outcome", "action", "target_id", "error_class", "error_message", "payload", "at"]
        read_only_fields = fields


class RecordDetailSerializer(RecordSerializer):
    """A record with its lineage: the source snapshot, the target ids and every attempt."""

    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta(RecordSerializer.Meta):
        fields = [*RecordSerializer.Meta.fields, "source_cursor", "source_snapshot", "target_refs", "attempt_log"]
        read_only_fields = fields


REASON_HELP = "Why: kept in the audit trail with each replayed record."


MAX_ID = 2**63 - 1  # beyond a BIGINT the database would raise instead of finding nothing


def id_list() -> serializers.ListField:
    return serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), min_length=1,
                                 max_length=1000)


class ReplaySerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=REPLAY_REASON_MIN, max_length=REPLAY_REASON_MAX, help_text=REASON_HELP)


class BulkReplaySerializer(ReplaySerializer):
    ids = id_list()


class MappingSerializer(serializers.ModelSerializer):
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Mapping
        fields = ["id", "integration", "kind", "source_code", "source_label", "target_code", "target_label",
                  "target_external_id", "status", "reason", "confidence", "ignore_reason", "decided_by", "decided_at",
                  "updated_at"]
        read_only_fields = fields


class MappingImpactSerializer(MappingSerializer):
    """A mapping with what waits for it: listed with ``order=impact`` or ``held``, and in detail."""

    held_count = serializers.IntegerField(read_only=True, help_text="Held records waiting for this code.")
    held_documents = serializers.IntegerField(read_only=True, help_text="Of them, invoices (money documents).")
    held_money = serializers.JSONField(read_only=True, help_text="The invoices' total per currency (decimal strings).")

    class Meta(MappingSerializer.Meta):
        fields = [*MappingSerializer.Meta.fields, "held_count", "held_documents", "held_money"]
        read_only_fields = fields


class MappingDetailSerializer(MappingImpactSerializer):
    held_records = serializers.IntegerField(read_only=True, help_text="Records held waiting for this mapping.")

    class Meta(MappingImpactSerializer.Meta):
        fields = [*MappingImpactSerializer.Meta.fields, "held_records"]
        read_only_fields = fields


class ApproveSerializer(serializers.Serializer):
    target_code = serializers.CharField(
        required=False, max_length=128,
        help_text="Map to this target code (read from the target side) instead of the suggestion.",
    )


class BulkIdsSerializer(serializers.Serializer):
    ids = id_list()


class IgnoreSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=3, max_length=300,
                                   help_text="Why this code never needs a mapping (kept in the audit trail).")


class MappingImportSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="The CSV file (multipart).")
    csv = serializers.CharField(required=False, trim_whitespace=False, help_text="Or the CSV text itself.")
    integration = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID,
                                           help_text="For rows without an integration column: this integration.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("file") and not attrs.get("csv"):
            raise serializers.ValidationError("Give the CSV as file (multipart) or as csv (text).")
        return attrs


class LineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    message = serializers.CharField()


class MappingImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Rows without a target code.")
    errors = LineErrorSerializer(many=True, help_text="Per line; when any, nothing was imported.")


class DecisionSerializer(serializers.Serializer):
    approved = serializers.IntegerField()
    rejected = serializers.IntegerField()
    released = serializers.IntegerField(help_text="Held records released by these approvals, queued for replay.")
    skipped = serializers.ListField(child=serializers.IntegerField(), help_text="Mappings with no target to approve.")
    task_id = serializers.CharField(allow_null=True, help_text="The replay task of the released records.")


class AuditEventSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = AuditEvent
        fields = ["id", "tenant", "integration", "connection", "record", "run", "actor_name", "action", "message",
                  "detail", "request_id", "created_at"]
        read_only_fields = fields


class MembershipSerializer(serializers.Serializer):
    tenant = serializers.CharField(source="tenant.slug")
    name = serializers.CharField(source="tenant.name")
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()
    tenants = MembershipSerializer(many=True)
