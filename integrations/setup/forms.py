"""The guided setup's forms, built from each system's connection schema and each pair's settings.

What a form collects becomes a tenant document (:mod:`integrations.tenants`), validated and loaded
by the same code as ``load_tenant``: one set of rules, and each problem is shown at its field.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.text import slugify

from accounts.models import Tenant
from integrations.flows import flow_kinds, get_flow
from integrations.models import Connection, Integration
from integrations.systems.registry import schema_for
from integrations.systems.schema import AUTH_KEYS, BOOL, INT, SECRET_KEYS, TEXT, ConnectionSchema

# Every key some sign-in method uses: what a connection's settings hold besides the system's own.
AUTH_SETTING_KEYS = frozenset(key for required, optional in AUTH_KEYS.values() for key in (*required, *optional))
METHOD_LABELS = {
    "basic": "User name and password",
    "oauth2_client_credentials": "OAuth client id and secret",
    "oauth2_refresh_token": "OAuth refresh token",
    "session": "Web Services sender and API user",
    "enet": "e.net operator",
    "jwt_connected_app": "Connected application (JWT)",
}
KEY_LABELS = {
    "url": "Address", "sender_id": "Sender id", "sender_password": "Sender password", "user_id": "User id",
    "user_password": "User password", "client_id": "Client id", "client_secret": "Client secret",
    "app_key": "App key", "webhook_key": "Webhook key", "operator_password": "Operator password",
    "company_password": "Company password", "service_account": "Integration user",
    "token_url": "Token address", "table_profile": "ServiceNow tables", "refresh_token": "Refresh token",
}
_PATH = re.compile(r"^\$\.(?P<where>connections\[(?P<n>\d)\]|integrations\[0\]|tenant)\.?(?P<rest>[^:]*): (?P<msg>.*)$")


def methods_of(schema: ConnectionSchema) -> list[str]:
    """The sign-in methods the guided setup offers: those with a known set of keys."""
    return [method for method in schema.auth_methods if method in AUTH_KEYS]


def _label(key: str) -> str:
    return KEY_LABELS.get(key, key.replace("_", " ").capitalize())


class PairForm(forms.Form):
    kind = forms.ChoiceField(widget=forms.RadioSelect, label="What do you want to connect?")
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), required=False, label="Organisation")

    def __init__(self, *args: Any, tenants: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = flow_kinds()
        if tenants is not None and tenants.count() > 1:
            self.fields["tenant"].queryset = tenants
            self.fields["tenant"].required = True
        else:
            del self.fields["tenant"]


class SideForm(forms.Form):
    """One side of the pair: address, company, sign-in keys and the system's choice settings."""

    def __init__(self, *args: Any, system: str, method: str, connection: Connection | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema_for(system)
        assert self.schema is not None, system
        self.system, self.method, self.connection = system, method, connection
        schema = self.schema
        stored = (connection.secrets or {}) if connection else {}
        settings = (connection.settings or {}) if connection else {}
        self.fields["url"] = forms.CharField(max_length=500, label="Address", help_text=schema.url_help,
                                             initial=connection.url if connection else "")
        if system == "sage_x3":
            self.fields["port"] = forms.IntegerField(required=False, min_value=1, max_value=65535, label="Port",
                                                     help_text="Only if it is not in the address (often 8124).",
                                                     initial=connection.port if connection else None)
        if schema.company_label:
            what, _, example = schema.company_label.partition(", ")
            self.fields["company"] = forms.CharField(
                max_length=100, required=schema.company_required, label=what[:1].upper() + what[1:].replace("the ", "", 1),
                help_text=f"{example[:1].upper()}{example[1:]}." if example else "",
                initial=connection.company if connection else "")
        required, optional = AUTH_KEYS[method]
        extra_required = tuple(k for k in schema.required_settings.get(method, ()) if k not in required)
        keys = [*required, *extra_required, *optional,
                *(k for k in schema.extra_secrets if k not in required and k not in optional)]
        self.secret_keys: list[str] = []
        for key in keys:
            needed = key in required or key in extra_required or key in schema.extra_secrets
            help_text = schema.key_help.get(key, "")
            if key in SECRET_KEYS:
                self.secret_keys.append(key)
                is_set = bool(stored.get(key))
                self.fields[key] = forms.CharField(
                    required=needed and not is_set, strip=False, label=_label(key),
                    widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                    help_text=(help_text + (" Stored; leave blank to keep it." if is_set else "")).strip())
            else:
                self.fields[key] = forms.CharField(required=needed, max_length=500, label=_label(key),
                                                   help_text=help_text, initial=settings.get(key, ""))
        self.setting_names: list[str] = []
        for setting in schema.settings:
            if setting.choices:
                self.setting_names.append(setting.name)
                self.fields[setting.name] = forms.ChoiceField(
                    required=False, choices=[(c, c) for c in setting.choices], label=_label(setting.name),
                    help_text=setting.help,
                    initial=settings.get(setting.name, setting.default))
        for key, field in self.fields.items():  # the internal name, for whoever asks IT
            field.widget.attrs["title"] = schema.company_key if key == "company" else key

    def connection_document(self, name: str) -> dict[str, Any]:
        """This side as a tenant document's connection (stored secrets fill the blanks left to keep them)."""
        data = self.cleaned_data
        stored = (self.connection.secrets or {}) if self.connection else {}
        kept = {k: v for k, v in ((self.connection.settings or {}) if self.connection else {}).items()
                if k not in AUTH_SETTING_KEYS and k not in self.setting_names}
        auth: dict[str, Any] = {"method": self.method}
        for key in self.fields:
            if key in ("url", "port", "company") or key in self.setting_names:
                continue
            value = data.get(key) or (stored.get(key) if key in self.secret_keys else "")
            if value:
                auth[key] = value
        doc: dict[str, Any] = {"name": name, "system": self.system, "url": data["url"].strip(), "auth": auth,
                               "settings": {**kept, **{k: data[k] for k in self.setting_names if data.get(k)}}}
        if data.get("port"):
            doc["port"] = data["port"]
        if data.get("company"):
            doc[self.schema.company_key] = data["company"].strip()
        return doc


class PairSettingsForm(forms.Form):
    """The integration's name and the pair's own plain settings (text, numbers, yes/no)."""

    name = forms.CharField(max_length=100, label="Name of this integration")

    def __init__(self, *args: Any, kind: str, integration: Integration | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.flow = get_flow(kind)
        current = (integration.settings or {}) if integration else {}
        self.fields["name"].initial = integration.name if integration else self.flow.label.replace("→", "to")
        self.setting_names: list[str] = []
        for setting in self.flow.settings:
            if setting.kind not in (TEXT, INT, BOOL):
                continue
            self.setting_names.append(setting.name)
            label = _label(setting.name)
            initial = current.get(setting.name, setting.default)
            if setting.kind == BOOL:
                field: forms.Field = forms.BooleanField(required=False, label=label, help_text=setting.help,
                                                        initial=bool(initial))
            elif setting.kind == INT:
                field = forms.IntegerField(required=False, label=label, help_text=setting.help, initial=initial,
                                           min_value=setting.minimum, max_value=setting.maximum)
            else:
                field = forms.CharField(required=False, label=label, help_text=setting.help, initial=initial or "",
                                        max_length=setting.max_length)
            self.fields[setting.name] = field

    def settings_document(self, current: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in current.items() if k not in self.setting_names}
        for name in self.setting_names:
            value = self.cleaned_data.get(name)
            if value not in (None, ""):
                out[name] = value
        return out


def connection_name(integration_name: str, side: str) -> str:
    return f"{slugify(integration_name)[:80] or 'integration'}-{side}"


def place_errors(errors: list[str], source: SideForm, target: SideForm, pair: PairSettingsForm) -> None:
    """Put each "$.path: message" of the document's validation on the field it is about."""
    for error in errors:
        match = _PATH.match(error)
        if not match:
            pair.add_error(None, error)
            continue
        form: forms.Form = pair
        if match["n"] is not None:
            form = source if match["n"] == "0" else target
        rest = match["rest"].split(".")[-1] if match["rest"] else ""
        if rest in ("folder", "tenant_id"):
            rest = "company"
        field = rest if rest in form.fields else None
        form.add_error(field, match["msg"] if field else f"{match['rest']}: {match['msg']}")
