"""The generated walk: every console URL and every API operation, for every role, with both tenants' ids.

Nothing here lists pages by hand. Console URLs come from the URL conf (``get_resolver()``), API
operations from the OpenAPI schema (every documented method, plus every undocumented one, which
must not succeed), and the URL conf's API patterns the schema leaves out (format suffixes, the
root). Each id in a URL, each id list or tenant in a generated body is filled twice: with an
object of Acme (the tenant the roles belong to) and with one of Globex (the other tenant). A new
page or endpoint is walked without a line of test code.

Every answer is checked:

- never a 5xx;
- no secret a connection holds (passwords, client secrets, refresh tokens, cached access tokens,
  planted passwords) in any body or redirect, whoever asks;
- no planted markup unescaped in any HTML page;
- an Acme member (or an anonymous caller) never sees Globex's names or markers, gets no 2xx for
  a Globex id in a URL, and changes nothing of Globex (its audit trail, rows and decisions).

Each request runs in a savepoint rolled back afterwards, so a delete or an approval does not
starve the requests after it. Figures are printed (``pytest -s``) and kept in ``FIGURES``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Model
from django.test import Client, RequestFactory
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve
from drf_spectacular.generators import SchemaGenerator

from accounts.models import Membership
from integrations.admin.base import tenant_path
from integrations.models import AuditEvent, Connection, Integration, Mapping, SyncRecord, SyncRun
from tests.security.conftest import GLOBEX_ONLY, ROLE_USERS, XSS, body_of

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
# names the URL conf gives the parts of a URL, and what fills them
ID_PARAMS = frozenset({"object_id", "pk", "id"})
FIGURES: dict[str, Any] = {}


@dataclass(frozen=True)
class Call:
    face: str  # "admin" | "api"
    page: str  # the URL pattern or schema path it was generated from
    method: str
    url: str
    tenant: str = ""  # "acme" | "globex": whose id fills the URL or body; "" when none does
    data: Any = None
    html: bool = False  # an API GET asked for the browsable (HTML) API


# --- what the URL conf and the schema offer -----------------------------------------------------
def url_patterns(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """Every pattern of the URL conf with its full route (regex and path routes mixed)."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry.url_patterns, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def concrete(route: str, values: dict[str, str]) -> str:
    """A URL for ``route`` with its named parts filled in."""
    url = re.sub(r"(?<!\?P)<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], route)
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], url)
    return "/" + url.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")


def route_params(route: str) -> list[str]:
    return re.findall(r"(?<!\?P)<(?:\w+:)?(\w+)>", route) + re.findall(r"\(\?P<(\w+)>", route)


def admin_model(route: str) -> type[Model] | None:
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if not match:
        return None
    try:
        return apps.get_model(match.group(1), match.group(2))
    except LookupError:
        return None


class Ids:
    """One object per model and tenant, as each admin's own queryset has them (queues included): the
    newest, where the world planted its markup."""

    def __init__(self, world: Any) -> None:
        self.world = world
        self.request = RequestFactory().get("/")
        self.request.user = world.users["root"]
        self.cache: dict[tuple[type[Model], str], str | None] = {}

    def of(self, model: type[Model], tenant: str) -> str | None:
        key = (model, tenant)
        if key not in self.cache:
            self.cache[key] = self._newest(model, tenant)
        return self.cache[key]

    def _newest(self, model: type[Model], tenant: str) -> str | None:
        model_admin = admin.site._registry.get(model)
        rows = model_admin.get_queryset(self.request) if model_admin else model._default_manager.all()
        path = tenant_path(model)
        if path is None:
            if tenant == "globex":
                return None  # no tenant: nothing of the other tenant's to try
            pk = rows.order_by("-pk").values_list("pk", flat=True).first()
        else:
            integration = self.world.acme if tenant == "acme" else self.world.globex
            pk = rows.filter(**{path: integration.tenant_id}).order_by("-pk").values_list("pk", flat=True).first()
        return None if pk is None else str(pk)

    def tenants(self, model: type[Model] | None) -> list[str]:
        if model is None:
            return []
        return [t for t in ("acme", "globex") if self.of(model, t) is not None]


def admin_calls(ids: Ids) -> Iterator[Call]:
    for route, entry in url_patterns():
        if not route.startswith("admin/"):
            continue
        params = route_params(route)
        model = admin_model(route)
        fillings: list[tuple[str, dict[str, str]]] = []
        if not params:
            fillings = [("", {})]
        elif params == ["app_label"]:
            fillings = [("", {"app_label": label}) for label in sorted({m._meta.app_label for m in admin.site._registry})]
        elif params == ["url"]:
            fillings = [("", {"url": "no-such-page/"})]
        elif set(params) == {"content_type_id", "object_id"}:
            ct = ContentType.objects.get_for_model(Connection)
            fillings = [(t, {"content_type_id": str(ct.pk), "object_id": ids.of(Connection, t)})
                        for t in ids.tenants(Connection)]
        elif len(params) == 1 and params[0] in ID_PARAMS:
            fillings = [(t, {params[0]: ids.of(model, t)}) for t in ids.tenants(model)]
        else:
            raise AssertionError(f"the walk does not know how to fill {route} ({params}): teach admin_calls()")
        for tenant, values in fillings:
            url = concrete(route, values)
            assert resolve(url).func == entry.callback or entry.name is None, f"{url} does not resolve to {route}"
            yield Call("admin", route, "GET", url, tenant)
            yield Call("admin", route, "POST", url, tenant,
                       {"post": "yes", "confirm": "yes", "reason": "walk: a generated request"})
        if route.endswith("/") and model is not None and entry.name and entry.name.endswith("_changelist"):
            # each bulk action of the page, on each tenant's object
            model_admin = admin.site._registry[model]
            for tenant in ids.tenants(model):
                for action in ("delete_selected", *(model_admin.actions or ())):
                    yield Call("admin", f"{route} action {action}", "POST", concrete(route, {}), tenant,
                               {"action": action, "_selected_action": [ids.of(model, tenant)], "select_across": "0",
                                "index": "0", "post": "yes", "confirm": "yes", "reason": "walk: a generated action"})


def resolve_ref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def example(schema: dict[str, Any], node: dict[str, Any], name: str, pk: str, slug: str) -> Any:
    """A value for ``node`` that a careless client might send: real ids and slugs, benign text."""
    node = resolve_ref(schema, node)
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in node:
            return example(schema, node[combined][0], name, pk, slug)
    kind = node.get("type")
    if "enum" in node:
        return node["enum"][0]
    if kind == "object":
        return {key: example(schema, prop, key, pk, slug) for key, prop in node.get("properties", {}).items()
                if not resolve_ref(schema, prop).get("readOnly")}
    if kind == "array":
        return [example(schema, node.get("items", {}), name, pk, slug)]
    if kind == "integer":
        return int(pk) if name in ("id", "ids") else max(1, node.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "string":
        if name == "tenant":
            return slug
        if node.get("format") == "uri":
            return "https://walk.example.com"
        return "walk: a generated request"
    return {}


def api_model(url: str) -> type[Model] | None:
    cls = getattr(resolve(url).func, "cls", None)
    return getattr(cls, "model", None)


def api_calls(ids: Ids, world: Any) -> Iterator[Call]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    slugs = {"acme": world.acme.tenant.slug, "globex": world.globex.tenant.slug}
    covered: set[str] = set()
    for path, operations in schema["paths"].items():
        probe = path.replace("{id}", "1")
        model = api_model(probe)
        has_id = "{id}" in path
        for method in METHODS:
            operation = operations.get(method.lower())
            body = None
            if operation and "requestBody" in operation:
                content = operation["requestBody"]["content"]
                body = content.get("application/json", next(iter(content.values())))["schema"]
            query: dict[str, Any] = {}
            for param in (operation or {}).get("parameters", []):
                if param.get("in") == "query" and param["name"] in ("integration", "connection", "record", "run",
                                                                       "tenant"):
                    query[param["name"]] = param["name"]
            tenants = ids.tenants(model) if (has_id or body or query) else []
            for tenant in tenants or [""]:
                pk = ids.of(model, tenant) if tenant else "1"
                url = path.replace("{id}", pk)
                covered.add(url)
                data = example(schema, body, "", pk, slugs.get(tenant, "acme")) if body else None
                if query and method == "GET":
                    url += "?" + "&".join(f"{k}={_query_value(ids, k, tenant, slugs)}" for k in query)
                yield Call("api", path, method, url, tenant if (has_id or body or query) else "", data)
                if method == "GET" and operation:
                    yield Call("api", path, method, url, tenant if (has_id or body or query) else "", html=True)
    # what the URL conf serves under /api/ that the schema does not describe: the root, format suffixes
    for route, entry in url_patterns():
        if not route.startswith("api/"):
            continue
        params = route_params(route)
        # a format suffix is "json" in a regex route, ".json" in DRF's path converter
        suffix = next(s for s in ("json", ".json") if _resolves(concrete(route, {p: "1" if p == "pk" else s
                                                                                for p in params})))
        model = api_model(concrete(route, {p: "1" if p == "pk" else suffix for p in params}))
        tenants = ids.tenants(model) if "pk" in params else [""]
        for tenant in tenants:
            url = concrete(route, {p: (ids.of(model, tenant) if p == "pk" else suffix) for p in params})
            if url not in covered:
                covered.add(url)
                yield Call("api", route, "GET", url, tenant)


def _resolves(url: str) -> bool:
    try:
        resolve(url)
    except Resolver404:
        return False
    return True


def _query_value(ids: Ids, name: str, tenant: str, slugs: dict[str, str]) -> str:
    if name == "tenant":
        return slugs[tenant]
    model = {"integration": Integration, "connection": Connection, "record": SyncRecord, "run": SyncRun}[name]
    return ids.of(model, tenant) or "1"


# --- checks -------------------------------------------------------------------------------------
def globex_state(world: Any) -> tuple:
    """What an Acme member must never change: Globex's audit trail, rows and decisions."""
    globex = world.globex
    return (
        AuditEvent.objects.filter(tenant_id=globex.tenant_id).count(),
        Connection.objects.filter(tenant_id=globex.tenant_id).count(),
        tuple(Integration.objects.filter(tenant_id=globex.tenant_id).values_list("pk", "name", "enabled")),
        tuple(Mapping.objects.filter(integration=globex).values("status").annotate(n=Count("pk"))
              .order_by("status").values_list("status", "n")),
        tuple(SyncRecord.objects.filter(integration=globex).values("status").annotate(n=Count("pk"))
              .order_by("status").values_list("status", "n")),
        Membership.objects.filter(tenant_id=globex.tenant_id).count(),
    )


def problems_of(call: Call, role: str, response: Any, body: str, secrets: list[str]) -> list[str]:
    found = []
    status = response.status_code
    if status >= 500:
        exc = getattr(response, "exc_info", None)
        found.append(f"HTTP {status}" + (f": {exc[0].__name__}: {exc[1]}" if exc else ""))
    seen = body + " " + response.get("Location", "")
    found += [f"secret {s[:4]}… shown" for s in secrets if s in seen]
    if "html" in response.get("Content-Type", ""):
        found += [f"unescaped {marker!r}" for marker in XSS if marker in body]
    if role != "superuser":
        found += [f"other tenant's {marker!r} shown" for marker in GLOBEX_ONLY if marker in seen]
        if role == "anonymous":
            found += ["Acme's data shown to anonymous" for marker in ("acme-marker", "Acme Manufacturing")
                      if marker in seen]
    if role not in ("superuser", "anonymous") and call.tenant == "globex":
        id_in_path = any(part in call.page for part in ("object_id>", "{id}", "(?P<pk>"))
        if id_in_path and 200 <= status < 300:
            found.append(f"HTTP {status} for the other tenant's object")
        if call.method == "GET" and response.get("Content-Type", "").startswith("application/json"):
            results = response.json().get("results") if isinstance(response.json(), dict) else None
            if results:
                found.append(f"{len(results)} row(s) of the other tenant listed")
    return found


def clients(world: Any) -> dict[str, Client]:
    made = {}
    for role, username in ROLE_USERS.items():
        client = Client(raise_request_exception=False)
        if username:
            client.force_login(world.users[username])
        made[role] = client
    return made


def send(client: Client, call: Call) -> Any:
    if call.face == "api" and call.method != "GET":
        payload = json.dumps(call.data) if call.data is not None else ""
        return client.generic(call.method, call.url, payload, content_type="application/json")
    if call.method == "GET":
        headers = {"Accept": "text/html"} if call.html else {"Accept": "application/json"} if call.face == "api" else {}
        return client.get(call.url, headers=headers)
    return client.generic(call.method, call.url, _form(call.data), content_type="application/x-www-form-urlencoded")


def _form(data: dict[str, Any] | None) -> str:
    return urlencode(data or {}, doseq=True)


# --- the walk -----------------------------------------------------------------------------------
def test_every_page_and_endpoint_for_every_role_and_both_tenants(sw, capsys):
    started = time.monotonic()
    ids = Ids(sw)
    calls = [*admin_calls(ids), *api_calls(ids, sw)]
    by_role = clients(sw)
    secrets = sw.extra["secrets"]
    assert len(secrets) >= 6, secrets  # what the check looks for: the planted and the real ones
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    escaped_seen = globex_seen = 0
    before = globex_state(sw)
    for role, client in by_role.items():
        for call in calls:
            with transaction.atomic():
                response = send(client, call)
                body = body_of(response)
                unsafe_on_globex = call.method != "GET" and role not in ("superuser",)
                if unsafe_on_globex and globex_state(sw) != before:
                    problems.append(f"{role} {call.method} {call.url}: changed the other tenant")
                transaction.set_rollback(True)
            statuses[response.status_code // 100 * 100] += 1
            escaped_seen += ESCAPED in body
            globex_seen += role == "superuser" and any(marker in body for marker in GLOBEX_ONLY)
            problems += [f"{role} {call.method} {call.url} ({call.page}): {p}"
                         for p in problems_of(call, role, response, body, secrets)]
            if call.face == "admin" and "/logout/" in call.url and ROLE_USERS[role]:
                client.force_login(sw.users[ROLE_USERS[role]])  # signed out by the walk: sign in again
    FIGURES.update(
        requests=len(calls) * len(by_role), roles=len(by_role),
        admin_patterns=len({c.page for c in calls if c.face == "admin" and " action " not in c.page}),
        admin_actions=len({c.page for c in calls if " action " in c.page}),
        api_schema_operations=len({(c.page, c.method) for c in calls if c.face == "api" and c.page.startswith("/")}),
        api_patterns_outside_schema=len({c.page for c in calls if c.face == "api" and not c.page.startswith("/")}),
        urls=len({c.url for c in calls}), statuses=dict(sorted(statuses.items())),
        pages_showing_escaped_markup=escaped_seen, globex_pages_seen_by_superuser=globex_seen,
        seconds=round(time.monotonic() - started, 1),
    )
    with capsys.disabled():
        print("\nwalk: " + ", ".join(f"{k}={v}" for k, v in FIGURES.items()))
    # the checks look at something: the planted markup and the other tenant's names do show, where allowed
    assert escaped_seen, "the planted markup showed nowhere: the XSS check saw nothing"
    assert globex_seen, "the superuser saw none of Globex's names: the tenant check saw nothing"
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:60])
