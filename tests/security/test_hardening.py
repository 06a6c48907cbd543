"""Hardening (issue 13, defect 6): HTTPS settings, the Content-Security-Policy, hashed API tokens.

- Outside development the portal redirects to HTTPS, sends Secure cookies and HSTS, and
  ``manage.py check --deploy`` has nothing to say (run in a subprocess with production
  settings, as a deployment would).
- Every page carries a Content-Security-Policy without 'unsafe-inline' scripts (that the admin
  and Swagger UI render under it in Chromium without a violation is tests/browser/test_csp.py).
- API tokens are kept as hashes and expire; the old plaintext token table is dropped by a
  migration.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from rest_framework.test import APIClient

BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-enough-test-passphrase"


def run_portal(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``python <args>`` in the project with production settings: none of the test run's own."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PORTAL_", "DJANGO_", "SECRET_KEY", "LOGIN_", "API_TOKEN")) and k != "DEBUG"}
    clean.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "DATABASE_URL": f"sqlite:///{tmp_path / 'p.sqlite3'}",
                  "SECRET_KEY": secrets.token_urlsafe(50), **env})
    return subprocess.run([sys.executable, *args], cwd=BASE_DIR, env=clean, capture_output=True, text=True,
                          timeout=120)


SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: str(getattr(s, name, None)) for name in (
    "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER", "AXES_COOLOFF_TIME",
    "AXES_FAILURE_LIMIT", "LOGIN_ADDRESS_FAILURE_LIMIT")}))
"""


def portal_settings(tmp_path: Path, **env: str) -> dict[str, str]:
    done = run_portal(tmp_path, "-c", SHOW_SETTINGS, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- HTTPS and check --deploy -------------------------------------------------------------------

def test_check_deploy_has_no_warnings_with_production_settings(tmp_path):
    done = run_portal(tmp_path, "manage.py", "check", "--deploy", PORTAL_HTTPS="true", DEBUG="false")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output
    assert "WARNING" not in output.upper(), output


def test_https_is_on_by_default_outside_development(tmp_path):
    production = portal_settings(tmp_path)
    assert production["SECURE_SSL_REDIRECT"] == production["SESSION_COOKIE_SECURE"] == "True"
    assert production["CSRF_COOKIE_SECURE"] == production["SECURE_HSTS_INCLUDE_SUBDOMAINS"] == "True"
    assert production["SECURE_HSTS_SECONDS"] == str(365 * 24 * 3600)
    assert production["SECURE_HSTS_PRELOAD"] == "True"
    assert production["SECURE_PROXY_SSL_HEADER"] == "None"  # a client could claim https itself
    development = portal_settings(tmp_path, PORTAL_DEV="true")
    assert development["SECURE_SSL_REDIRECT"] == development["SESSION_COOKIE_SECURE"] == "False"
    assert development["SECURE_HSTS_SECONDS"] == "0"
    demo = portal_settings(tmp_path, PORTAL_HTTPS="false")  # what `make demo` says: plain HTTP on localhost
    assert demo["SECURE_SSL_REDIRECT"] == demo["CSRF_COOKIE_SECURE"] == "False"


def test_the_proxy_header_preload_and_throttling_come_from_the_environment(tmp_path):
    tuned = portal_settings(tmp_path, PORTAL_BEHIND_PROXY="true", PORTAL_HSTS_PRELOAD="false",
                            LOGIN_COOLOFF_MINUTES="30", LOGIN_FAILURE_LIMIT="3", LOGIN_ADDRESS_FAILURE_LIMIT="9")
    assert tuned["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert tuned["SECURE_HSTS_PRELOAD"] == "False"
    assert tuned["AXES_COOLOFF_TIME"] == str(timedelta(minutes=30))
    assert (tuned["AXES_FAILURE_LIMIT"], tuned["LOGIN_ADDRESS_FAILURE_LIMIT"]) == ("3", "9")


# --- Content-Security-Policy --------------------------------------------------------------------

def policy_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/admin/login/", "/api/docs/", "/api/schema/?format=json"])
def test_every_page_has_a_policy_without_inline_scripts(client, url):
    response = client.get(url)
    assert response.status_code == 200
    policy = policy_of(response)
    assert policy["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_swagger_uis_inline_start_up_script_carries_the_policys_nonce(client):
    response = client.get("/api/docs/")
    nonce = next(v for v in policy_of(response)["script-src"] if v.startswith("'nonce-"))[len("'nonce-"):-1]
    html = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
    assert inline == [f' nonce="{nonce}"'], inline
    assert client.get("/api/docs/")["Content-Security-Policy"] != response["Content-Security-Policy"]  # per request


# --- API tokens ---------------------------------------------------------------------------------

@pytest.fixture
def api_user(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return get_user_model().objects.create_user("api-client", password=PASSWORD)


def obtain_token() -> dict:
    response = APIClient().post("/api/auth/token/", {"username": "api-client", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_an_api_token_is_stored_nowhere_in_the_database(api_user):
    token = obtain_token()["token"]
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (our own table names)
            for row in cursor.fetchall():
                assert not any(isinstance(v, str) and token in v for v in row), f"the token is in {table}"
    assert "rest_framework.authtoken" not in [app.name for app in apps.get_app_configs()]


def test_an_api_token_expires(api_user):
    from knox.models import AuthToken

    body = obtain_token()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/me/").status_code == 200
    AuthToken.objects.filter(user=api_user).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/me/").status_code == 401
    assert not AuthToken.objects.filter(user=api_user).exists()  # an expired token is deleted when seen


def test_a_token_can_be_revoked(api_user):
    token = obtain_token()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/auth/token/revoke/").status_code == 204
    assert client.get("/api/me/").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/me/", "/api/auth/token/revoke/"])
def test_a_token_that_is_not_ascii_is_refused_not_a_server_error(url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token \u00e9t\u00e9")
    response = client.get(url) if url == "/api/me/" else client.post(url)
    assert response.status_code == 401


def test_the_migration_drops_the_plaintext_token_table(db):
    migration = importlib.import_module("accounts.migrations.0002_remove_plaintext_api_tokens")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamp, user_id integer)")
        cursor.execute("INSERT INTO authtoken_token VALUES ('0123456789abcdef0123456789abcdef01234567', "
                       "CURRENT_TIMESTAMP, 1)")
    MigrationRecorder(connection).record_applied("authtoken", "0001_initial")
    # the schema editor is used for its execute() only: entering it is refused inside a test's transaction on SQLite
    migration.drop_plaintext_tokens(apps, connection.schema_editor())
    with connection.cursor() as cursor:
        assert "authtoken_token" not in connection.introspection.table_names(cursor)
    assert not MigrationRecorder(connection).migration_qs.filter(app="authtoken").exists()
