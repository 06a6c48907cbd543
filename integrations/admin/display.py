"""Small HTML pieces the console pages share: times, badges, JSON, links, expiry warnings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

from integrations.engine.documents import stream_label
from integrations.systems.redaction import redact, redact_text

EMPTY = "–"
# Badge backgrounds under white text, each at least 4.5:1 (WCAG AA for small text; tests/console
# checks it): the Material 800s pass, but orange 800 (#ef6c00) is only 3.1:1, so amber is darker.
AMBER = "#b45309"
GREY = "#546e7a"
BADGE_COLOURS = {
    "ok": "#2e7d32", "succeeded": "#2e7d32", "synced": "#2e7d32", "approved": "#2e7d32",
    "failing": "#c62828", "failed": "#c62828", "rejected": "#c62828", "reauth": "#c62828",
    "stale": AMBER, "held": AMBER, "partial": AMBER, "interrupted": AMBER, "suggested": AMBER, "warning": AMBER,
    "running": "#1565c0", "pending": "#1565c0",
}


# The one date format of the console: "2026-12-03 10:15 UTC", in the operators' zone (TIME_ZONE)
# with its abbreviation, so nobody wonders whose 10:15 it is. Templates write the same with
# Django's date filter: ``|date:"Y-m-d H:i T"``.
DATE_FORMAT = "%Y-%m-%d %H:%M %Z"


def local(value: datetime | None) -> str:
    """A stored (UTC) time shown in the operators' time zone, with the zone's abbreviation."""
    if value is None:
        return EMPTY
    return timezone.localtime(value).strftime(DATE_FORMAT)


def badge(key: str, label: str = "") -> SafeString:
    colour = BADGE_COLOURS.get(key, GREY)
    return format_html('<span class="console-badge" style="background:{}">{}</span>', colour, label or key)


def run_badge(run: Any) -> SafeString:
    """A run's result as a finance-ops person reads it: a run that finished with failed records is
    amber "Completed with N errors", never a green "Succeeded"."""
    if run.status == "succeeded" and getattr(run, "failed", 0):
        errors = run.failed
        return badge("warning", f"Completed with {errors:,} error{'s' if errors != 1 else ''}")
    return badge(run.status, run.get_status_display())


def pretty_json(value: Any, *, secrets: bool = True) -> SafeString:
    """JSON in a <pre>; with ``secrets`` (the default) secret-looking keys are masked first."""
    shown = redact(value) if secrets else value
    # focusable: a long document scrolls inside the <pre>, and keyboard users must reach it too
    return format_html('<pre class="console-json" tabindex="0">{}</pre>',
                       json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def safe_link(url: str, text: str) -> SafeString | str:
    """A link out to the target system, only for http(s) addresses."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, text or url)
    return text or EMPTY


def duration(delta: timedelta | None) -> str:
    if delta is None:
        return EMPTY
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{delta.total_seconds():.1f}s"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s"


def expiry(value: datetime | None, *, warn_days: int | None = None) -> SafeString | str:
    """When a token runs out; flagged when past, or within ``warn_days`` of it."""
    if value is None:
        return EMPTY
    now = timezone.now()
    if value <= now:
        return format_html('{} <strong class="console-warn">expired {} ago: re-authorise</strong>',
                           local(value), timesince(value, now))
    if warn_days is not None and value - now <= timedelta(days=warn_days):
        return format_html('{} <strong class="console-warn">runs out in {}: re-authorise before then</strong>',
                           local(value), timeuntil(value, now))
    return format_html("{} <span class=\"quiet\">(in {})</span>", local(value), timeuntil(value, now))


def refresh_warning_days() -> int:
    return settings.REFRESH_TOKEN_WARNING_DAYS


def refresh_expiring(value: datetime | None) -> bool:
    return value is not None and value - timezone.now() <= timedelta(days=refresh_warning_days())


def test_report(report: dict[str, Any] | None) -> SafeString | str:
    """Connection.last_test_report as a table: each check, passed or not, and why."""
    if not report:
        return "Not tested yet."
    rows = format_html_join(
        "", '<tr><td>{}</td><td>{}</td><td>{}</td></tr>',
        ((("✔" if line.get("ok") else "✘"), line.get("check", ""), redact_text(str(line.get("message", ""))))
         for line in report.get("checks", [])),
    )
    verdict = badge("ok", "all checks passed") if report.get("ok") else badge(
        "failed", f"{len(report.get('failed', []))} check(s) failed")
    return format_html(
        '<div class="console-report">{} <span class="quiet">{} API call(s)</span>'
        '<table><thead><tr><th></th><th>check</th><th>result</th></tr></thead><tbody>{}</tbody></table></div>',
        verdict, report.get("api_calls", 0), rows,
    )


def stream_name(kind: str, stream: str) -> SafeString:
    """A stream in words ("Supplier invoices (X3 → ServiceNow AP)"), its technical name in the tooltip."""
    return format_html('<span title="technical name: {}">{}</span>', stream, stream_label(kind, stream))
