"""Token and session authentication, the OpenAPI schema and the docs page (served without a CDN)."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib.staticfiles import finders
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from tests.api.conftest import PASSWORD


def test_a_token_is_obtained_with_a_password_and_then_authenticates(world):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "viewer", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"token", "expiry"}
    expiry = parse_datetime(response.json()["expiry"])
    assert timezone.now() < expiry <= timezone.now() + timedelta(hours=10)
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    rows = client.get("/api/integrations/").json()["results"]
    assert [r["tenant"] for r in rows] == ["acme"]
    assert client.post(f"/api/integrations/{world.acme.pk}/run/").status_code == 403


def test_a_wrong_password_gets_no_token(world):
    response = APIClient().post("/api/auth/token/", {"username": "viewer", "password": "guess"}, format="json")
    assert response.status_code == 400 and "token" not in response.json()


def test_a_bad_token_is_refused(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert client.get("/api/records/").status_code == 401


def test_an_inactive_users_token_stops_working(world):
    client = APIClient()
    token = client.post("/api/auth/token/", {"username": "owner", "password": PASSWORD}, format="json").json()["token"]
    owner = world.user("owner")
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/connections/").status_code == 401


def test_a_session_works_and_writes_need_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    # django-axes throttles sign-ins by their request, which the test client's login() must be handed
    assert client.login(request=HttpRequest(), username="operator", password=PASSWORD)
    assert [r["tenant"] for r in client.get("/api/connections/").json()["results"]] == ["acme", "acme"]
    response = client.post(f"/api/integrations/{world.acme.pk}/pause/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_the_schema_documents_every_endpoint(world):
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/connections/", "/api/connections/{id}/test/", "/api/integrations/{id}/run/",
                 "/api/integrations/{id}/pause/", "/api/integrations/{id}/resume/", "/api/runs/",
                 "/api/records/", "/api/records/{id}/replay/", "/api/records/replay/", "/api/mappings/approve/",
                 "/api/mappings/{id}/approve/", "/api/mappings/{id}/reject/", "/api/audit/", "/api/auth/token/"]:
        assert path in paths
    secrets = response.json()["components"]["schemas"]["ConnectionRequest"]["properties"]["secrets"]
    assert secrets["writeOnly"] is True
    assert "secrets" not in response.json()["components"]["schemas"]["Connection"]["properties"]


def test_the_docs_page_loads_its_assets_from_our_static_files_not_a_cdn(world):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/static/drf_spectacular_sidecar/") for a in assets), assets
    assert "cdn" not in html.lower()
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset
