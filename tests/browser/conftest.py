"""End-to-end fixtures: the sandbox over real HTTP, the portal on a live server, headless Chromium.

Chromium is Debian's (``make system-deps``), driven by Playwright's Python package with
``executable_path``; no browser is downloaded. Screenshots land in ``artifacts/screenshots``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from integrations.sandbox.sage_x3 import SageX3Simulator
from integrations.sandbox.server import serve
from integrations.sandbox.servicenow import ServiceNowSimulator

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PASSWORD = "browser-test-pass"
# a full-page PNG of a rendered console page weighs tens of kilobytes; a blank one, a few
MIN_SCREENSHOT_BYTES = 20_000

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
# body are then flagged as "async unsafe" although they are plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(autouse=True)
def _tasks_run_inline(settings, monkeypatch):
    """No qcluster here: what the console queues (runs, replays, releases, connection tests)
    runs inline, in the live server's thread, before the page it answers is rendered."""
    from django_q.conf import Conf

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make system-deps`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15000)
    expect.set_options(timeout=15000)
    yield page
    context.close()


@pytest.fixture
def http_sandbox() -> Iterator[dict]:
    x3 = SageX3Simulator()
    x3.seed_demo()
    sn = ServiceNowSimulator().seed_demo()
    with serve(x3) as x3_server, serve(sn) as sn_server:
        yield {"x3": x3, "sn": sn, "x3_url": x3_server.url, "sn_url": sn_server.url}


@pytest.fixture
def portal(transactional_db, live_server, http_sandbox, django_user_model):
    """The demo tenant synced over HTTP, with suggested mappings approved (61200 stays held)."""
    from integrations.demo import x3_servicenow_document
    from integrations.engine.mappings import approve
    from integrations.engine.replay import replay_records
    from integrations.engine.runner import run_integration
    from integrations.models import Integration, Mapping, MappingStatus
    from integrations.tenants import load_document

    token = http_sandbox["x3"].issue_refresh_token("ml-connector")
    load_document(x3_servicenow_document(http_sandbox["x3_url"], http_sandbox["sn_url"], x3_refresh_token=token))
    integration = Integration.objects.select_related("source", "target", "tenant").get(name="x3-to-sn")
    run_integration(integration)
    decision = approve(list(Mapping.objects.filter(status=MappingStatus.SUGGESTED)))
    replay_records(decision.released_ids)
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    return {"url": live_server.url, "integration": integration, **http_sandbox}


def login(page, portal) -> None:
    page.goto(f"{portal['url']}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_load_state("networkidle")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_screenshot(page, name: str) -> Path:
    """Take the screenshot and check a real page was captured, not an empty canvas."""
    path = screenshot(page, name)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert path.stat().st_size > MIN_SCREENSHOT_BYTES, f"{path} is only {path.stat().st_size} bytes"
    return path


def messages(page):
    """The admin's message list (success, warning...) at the top of the page."""
    return page.locator("ul.messagelist")
