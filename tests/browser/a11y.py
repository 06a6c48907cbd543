"""Accessibility check for the browser tests: axe-core (bundled by axe-playwright-python) run in
the page under test. "Serious" and "critical" violations fail the test, each named with its rule,
its help text and the elements it found, so the failure says what to fix.

A violation may pass only as an expected failure, named in the xfail reason, never silently:
one listed in ``KNOWN`` with why (none today).
"""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

BLOCKING = ("serious", "critical")
# WCAG 2.0-2.2 A and AA rules; axe's own best practices are advice, not criteria
OPTIONS = {"resultTypes": ["violations"],
           "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}
CONSOLE_CSS = "console/console.css"

# (rule, element) -> why it is left: violations in templates owned elsewhere
KNOWN: dict[tuple[str, str], str] = {}

_axe = Axe()


def violations(page: Any, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """The page's axe violations of the given impacts."""
    results = _axe.run(page, options=OPTIONS)
    return [v for v in results.response["violations"] if v.get("impact") in impacts]


def _target(node: dict[str, Any]) -> str:
    return " ".join(map(str, node["target"]))


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for violation in found:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} – {violation['helpUrl']}")
        for node in violation["nodes"][:10]:
            lines.append(f"    {_target(node)}: {node['html'][:160]}")
    return "\n".join(lines)


def _split(found: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Violations not in ``KNOWN``, and the reasons of those that are."""
    unknown, known = [], []
    for violation in found:
        nodes = [n for n in violation["nodes"] if (violation["id"], _target(n)) not in KNOWN]
        known += [KNOWN[(violation["id"], _target(n))] for n in violation["nodes"] if n not in nodes]
        if nodes:
            unknown.append({**violation, "nodes": nodes})
    return unknown, sorted(set(known))


def assert_accessible(page: Any, what: str = "") -> None:
    """Fail on any serious or critical axe violation of the page as it is now (see the module doc
    for the two named expected failures)."""
    what = what or page.url
    assert page.locator(f'link[href*="{CONSOLE_CSS}"]').count(), f"{what} does not load {CONSOLE_CSS}"
    unknown, known = _split(violations(page))
    assert not unknown, f"accessibility violations on {what}:\n{describe(unknown)}"
    if known:
        pytest.xfail(f"{what}: " + "; ".join(known))
