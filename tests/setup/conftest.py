"""Fixtures of the getting-started tests: the sandbox mounted in-process, tasks run inline, forms filled."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from tests.conftest import SN_URL, X3_URL

PASSWORD = "a-long-Passphrase-42"
KIND = "sage_x3__servicenow"


@pytest.fixture(autouse=True)
def _tasks_run_inline(settings, monkeypatch):
    """No qcluster: what the pages queue (a first run, a release) runs inline before the answer."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(autouse=True)
def _fresh_signup_counts():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def signup_data(name: str = "alice", org: str = "Acme Manufacturing") -> dict[str, str]:
    return {"organisation": org, "username": name, "email": f"{name}@example.com",
            "password1": PASSWORD, "password2": PASSWORD}


def sign_up(client: Client, name: str = "alice", org: str = "Acme Manufacturing") -> Any:
    response = client.post("/signup/", signup_data(name, org))
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


def x3_servicenow_form(x3_url: str = X3_URL, sn_url: str = SN_URL, name: str = "X3 to ServiceNow") -> dict[str, str]:
    return {
        "pair-name": name,
        "source-url": x3_url, "source-company": "SEED", "source-username": "admin", "source-password": "x3-demo-pass",
        "target-url": sn_url, "target-client_id": "ml-connector", "target-client_secret": "sn-demo-secret",
        "target-service_account": "integration.user", "target-table_profile": "seed",
    }


def verify_email(client: Client) -> None:
    link = next(word for word in mail.outbox[-1].body.split() if "/signup/verify/" in word)
    assert client.get(link).status_code == 200
