"""What a settings document may hold: each system declares its settings, this module checks them.

A connection's ``settings`` (and an integration's) are typed by the people who set them up, by
API clients and by tenant documents. Every one of those faces validates through
:func:`settings_errors` with the declarations below, so a bound lives in one place: a
``page_size`` of 10**30, a NUL byte or a 1 MB value is refused with a message naming the
setting, before anything is stored.

Plain Python: no Django here (``systems/`` never imports models).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from integrations.systems.concurrency import MAX_CONCURRENCY

INT, TEXT, BOOL, MAP, LIST = "int", "text", "bool", "map", "list"

# Bounds for any settings document, whatever the system.
MAX_DOCUMENT_BYTES = 16_384
MAX_TEXT_LENGTH = 1_000
MAX_KEY_LENGTH = 64
MAX_ITEMS = 100
MAX_DEPTH = 3
# control characters other than tab and newline have no place in a setting (NUL breaks
# PostgreSQL's jsonb and is a classic smuggling trick)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Setting:
    """One setting: its type, bounds, default and the help text shown to whoever sets it."""

    name: str
    kind: str = TEXT
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    max_length: int = MAX_TEXT_LENGTH
    help: str = ""
    # for MAP: the values are texts (depth 1) or maps of texts (depth 2)
    nested: bool = False

    def errors(self, value: Any) -> list[str]:
        name = self.name
        if self.kind == INT:
            if isinstance(value, bool) or not isinstance(value, int):
                return [f"{name}: must be a whole number"]
            low = self.minimum if self.minimum is not None else 0
            if value < low or (self.maximum is not None and value > self.maximum):
                high = f" and {self.maximum:,}" if self.maximum is not None else ""
                return [f"{name}: must be between {low:,}{high}" if high else f"{name}: must be at least {low:,}"]
            return []
        if self.kind == BOOL:
            return [] if isinstance(value, bool) else [f"{name}: must be true or false"]
        if self.kind == TEXT:
            problem = _text_problem(value, self.max_length)
            if problem:
                return [f"{name}: {problem}"]
            if self.choices and value not in self.choices:
                return [f"{name}: must be one of {', '.join(self.choices)}"]
            return []
        if self.kind == LIST:
            if not isinstance(value, list):
                return [f"{name}: must be a list of texts"]
            if len(value) > MAX_ITEMS:
                return [f"{name}: at most {MAX_ITEMS} entries"]
            return [f"{name}[{i}]: {p}" for i, item in enumerate(value) if (p := _text_problem(item, self.max_length))]
        if self.kind == MAP:
            return _map_errors(name, value, depth=2 if self.nested else 1, max_length=self.max_length)
        raise ValueError(f"unknown setting kind {self.kind!r}")


def _text_problem(value: Any, max_length: int) -> str:
    if not isinstance(value, str):
        return "must be a text"
    if len(value) > max_length:
        return f"at most {max_length:,} characters (got {len(value):,})"
    if _CONTROL_RE.search(value):
        return "must not contain control characters (NUL and the like)"
    return ""


def _key_problem(key: Any) -> str:
    if not isinstance(key, str) or not key:
        return "names must be non-empty texts"
    if len(key) > MAX_KEY_LENGTH:
        return f"names are at most {MAX_KEY_LENGTH} characters"
    if _CONTROL_RE.search(key):
        return "names must not contain control characters"
    return ""


def _map_errors(path: str, value: Any, depth: int, max_length: int) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: must be an object"]
    if len(value) > MAX_ITEMS:
        return [f"{path}: at most {MAX_ITEMS} entries"]
    errors = []
    for key, item in value.items():
        problem = _key_problem(key)
        if problem:
            errors.append(f"{path}: {problem}")
            continue
        if depth > 1 and isinstance(item, dict):
            errors.extend(_map_errors(f"{path}.{key}", item, depth - 1, max_length))
        elif (problem := _text_problem(item, max_length)):
            errors.append(f"{path}.{key}: {problem}")
    return errors


def document_errors(value: Any) -> list[str]:
    """Bounds every settings document meets: an object, at most 16 KiB as JSON, no control characters."""
    if not isinstance(value, dict):
        return ["must be an object of settings, e.g. {\"page_size\": 100}"]
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return ["must be plain JSON (texts, numbers, true/false, lists and objects)"]
    if size > MAX_DOCUMENT_BYTES:
        return [f"at most {MAX_DOCUMENT_BYTES:,} bytes as JSON (got {size:,})"]
    return [f"{problem}: {key!r:.80}" for key in value if (problem := _key_problem(key))]


def settings_errors(value: Any, declared: Iterable[Setting], *, extra: Iterable[Setting] = ()) -> list[str]:
    """Every problem of a settings document against the declared settings; empty when valid.

    Unknown names are refused (a typo would otherwise be stored and silently ignored).
    """
    errors = document_errors(value)
    if errors:
        return errors
    # a system's own declaration wins over the plain text of an auth key (e.g. a validity in seconds)
    specs = {spec.name: spec for spec in (*extra, *declared)}
    for key, item in value.items():
        spec = specs.get(key)
        if spec is None:
            errors.append(f"{key}: not a setting here (known: {', '.join(sorted(specs)) or 'none'})")
        elif item is not None:
            errors.extend(spec.errors(item))
    return errors


def text_settings(names: Iterable[str], help_texts: Mapping[str, str] | None = None) -> tuple[Setting, ...]:
    """Plain text settings (user names, client ids...), e.g. the non-secret keys of an auth method."""
    helps = help_texts or {}
    return tuple(Setting(name, TEXT, max_length=500, help=helps.get(name, "")) for name in names)


# --- auth methods -------------------------------------------------------------------------------
# method → (required keys, optional keys); keys named in SECRET_KEYS are stored encrypted in the
# connection's secrets, the others are settings.
AUTH_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "basic": (("username", "password"), ()),
    "oauth2_client_credentials": (("client_id", "client_secret"), ("token_url", "scope", "service_account")),
    "oauth2_refresh_token": (("client_id", "client_secret", "refresh_token"), ("token_url",)),
    # Sage Intacct: Web Services sender + API user; the company id may sit here or in "company".
    "session": (("sender_id", "sender_password", "user_id", "user_password"),
                ("company_id", "entity_id", "location_id")),
    # SYSPRO e.net: an operator and the company's password (the company id is "company").
    "enet": (("operator", "operator_password"), ("company_password",)),
    # Sage X3 GraphQL on premise: a connected application, whose JWT the client signs itself
    # (token_validity in seconds, the app's "Tokens validity").
    "jwt_connected_app": (("client_id", "client_secret", "user", "audience"), ("token_validity",)),
}
SECRET_KEYS = frozenset({"password", "client_secret", "refresh_token", "sender_password", "user_password",
                         "operator_password", "company_password",
                         # credentials a system asks for besides its sign-in (ServiceTitan's app and webhook keys)
                         "app_key", "webhook_key"})


def secret_keys_for(method: str) -> tuple[str, ...]:
    required, optional = AUTH_KEYS.get(method, ((), ()))
    return tuple(k for k in (*required, *optional) if k in SECRET_KEYS)


def auth_setting_keys_for(method: str) -> tuple[str, ...]:
    required, optional = AUTH_KEYS.get(method, ((), ()))
    return tuple(k for k in (*required, *optional) if k not in SECRET_KEYS)


# Settings every connection accepts, whatever its system.
COMMON_CONNECTION_SETTINGS = (
    Setting("call_budget", INT, default=0, minimum=0, maximum=10_000_000,
            help="API calls this connection may make per sync cycle (0: no limit), e.g. an IIS call limit."),
    Setting("write_concurrency", INT, default=None, minimum=1, maximum=MAX_CONCURRENCY,
            help="Documents written at once where each is a call of its own (Sage X3); into ServiceNow, above 1 "
                 "two Batch API calls of a write overlap. Keep it within the system's rate limit. Empty: the "
                 "portal's default (SYNC_WRITE_CONCURRENCY, 4)."),
)


def connection_settings_errors(declared: Iterable[Setting], auth_method: str, value: Any) -> list[str]:
    """A connection's settings: the system's own, plus the non-secret keys of its auth method."""
    errors = settings_errors(value, (*COMMON_CONNECTION_SETTINGS, *declared),
                             extra=text_settings(auth_setting_keys_for(auth_method)))
    misplaced = sorted(k for k in value if k in SECRET_KEYS) if isinstance(value, dict) else []
    if misplaced:
        errors = [e for e in errors if e.split(":")[0] not in misplaced]
        errors.insert(0, f"{', '.join(misplaced)}: secrets go in 'secrets', which is write-only and never shown back")
    return errors


# --- a system's connection schema ----------------------------------------------------------------
@dataclass
class ConnectionFields:
    """What a person enters for a connection, from whichever face (form, API, tenant document)."""

    url: str = ""
    port: int | None = None
    company: str = ""
    auth_method: str = ""
    settings: Any = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


Problems = dict[str, list[str]]  # field name (url, company, auth_method, settings, secrets) → messages


@dataclass(frozen=True)
class ConnectionSchema:
    """Everything the portal knows about connecting to one system, declared by its module.

    The admin form, the API and tenant documents build and check connections from this alone,
    so a new system adds its schema and touches no engine, admin or API file.
    """

    system: str
    label: str
    auth_methods: tuple[str, ...]
    settings: tuple[Setting, ...] = ()
    help: str = ""
    url_help: str = ""
    # what ``company`` means for this system ("" when unused) and whether it is required
    company_label: str = ""
    company_required: bool = False
    # the name tenant documents give ``company`` for this system (X3 calls it the folder)
    company_key: str = "company"
    # settings an auth method needs on this system beyond the method's own required keys
    required_settings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # help text per auth key (username, client_id, sender_id...)
    key_help: Mapping[str, str] = field(default_factory=dict)
    # a bare name for the instance (ServiceNow "acme") → its URL; None: a full URL is required
    instance_url: Callable[[str], str] | None = None
    # rules of this vendor that the generic checks cannot express
    extra_checks: Callable[[ConnectionFields], Problems] | None = None
    # secrets this system needs whatever the sign-in method (names from SECRET_KEYS)
    extra_secrets: tuple[str, ...] = ()

    def secret_keys(self) -> tuple[str, ...]:
        """Every secret any of this system's auth methods uses, in a stable order."""
        keys: list[str] = []
        for method in self.auth_methods:
            keys.extend(k for k in self.method_secrets(method) if k not in keys)
        return tuple(keys)

    def method_secrets(self, method: str) -> tuple[str, ...]:
        """The secrets a connection of this system signing in with ``method`` may hold."""
        return (*secret_keys_for(method), *(k for k in self.extra_secrets if k not in secret_keys_for(method)))

    def normalise_url(self, url: str) -> str:
        if self.instance_url is not None and url and "://" not in url:
            return self.instance_url(url)
        return url

    def problems(self, fields: ConnectionFields) -> Problems:
        """Every problem of a connection as entered, by field; empty when it can be saved."""
        found: Problems = {}

        def add(name: str, message: str) -> None:
            found.setdefault(name, []).append(message)

        url = self.normalise_url(fields.url or "")
        parts = urlsplit(url)
        if not url:
            add("url", "required")
        elif parts.scheme not in ("http", "https") or not parts.netloc:
            bare = " (or the instance name)" if self.instance_url else ""
            add("url", f"must be an http(s) URL{bare}")
        if fields.port is not None and (isinstance(fields.port, bool) or not isinstance(fields.port, int)
                                        or not 0 < fields.port < 65536):
            add("port", "must be a whole number between 1 and 65535")
        if self.company_required and not fields.company:
            add("company", f"required for {self.label}: {self.company_label}")
        method = fields.auth_method
        if method not in self.auth_methods:
            add("auth_method", f"{self.label} signs in with {' or '.join(repr(m) for m in self.auth_methods)}, "
                               f"not {method!r}")
            return found
        for problem in connection_settings_errors(self.settings, method, fields.settings):
            add("settings", problem)
        settings = fields.settings if isinstance(fields.settings, dict) else {}
        required = [k for k in AUTH_KEYS[method][0] if k not in SECRET_KEYS]
        required += [k for k in self.required_settings.get(method, ()) if k not in required]
        for key in required:
            if not settings.get(key):
                add("settings", f"{key}: required for {method}")
        unknown = sorted(set(fields.secrets) - set(self.method_secrets(method)))
        if unknown:
            add("secrets", f"{', '.join(unknown)}: not a secret of {method} "
                           f"(expected: {', '.join(secret_keys_for(method)) or 'none'})")
        for key in AUTH_KEYS[method][0]:
            if key in SECRET_KEYS and not fields.secrets.get(key):
                add("secrets", f"{key}: required for {method}")
        if self.extra_checks is not None:
            for name, messages in self.extra_checks(fields).items():
                for message in messages:
                    add(name, message)
        return found
