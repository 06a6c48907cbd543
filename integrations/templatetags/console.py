"""Console template tags: the dashboard on the admin index and its inline SVG bar charts.

Charts are drawn here on the server as SVG: no chart library, nothing fetched from outside.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from integrations.admin import dashboard, inbox
from integrations.admin.dashboard import Day
from integrations.admin.display import refresh_warning_days

register = template.Library()

SYNCED_COLOUR = "#2e7d32"
FAILED_COLOUR = "#c62828"


@register.inclusion_tag("console/dashboard.html", takes_context=True)
def console_dashboard(context: dict[str, Any]) -> dict[str, Any]:
    user = context["request"].user
    rows = dashboard.build(user)
    return {"rows": rows, "totals": dashboard.totals(rows), "inbox": inbox.build(rows, user),
            "warn_days": refresh_warning_days(), "chart_days": dashboard.CHART_DAYS}


@register.simple_tag
def bar_chart(days: list[Day], height: int = 36, bar: int = 5, gap: int = 1) -> SafeString:
    """Records synced (green) with failed (red) stacked on top, one bar per day, as inline SVG.

    Each day is a group with a <title> (the browser's tooltip) over a transparent hit area, so
    empty days can be hovered too.
    """
    peak = max((d.synced + d.failed for d in days), default=0) or 1
    step = bar + gap
    groups = []
    for i, d in enumerate(days):
        x = i * step
        synced_h, failed_h = _h(d.synced, peak, height), _h(d.failed, peak, height)
        rects = [format_html('<rect x="{}" y="0" width="{}" height="{}" fill="transparent"></rect>', x, bar, height)]
        if synced_h:
            rects.append(format_html('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>',
                                     x, height - synced_h, bar, synced_h, SYNCED_COLOUR))
        if failed_h:
            rects.append(format_html('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>',
                                     x, max(0, height - synced_h - failed_h), bar, failed_h, FAILED_COLOUR))
        groups.append(format_html("<g><title>{}: {} synced, {} failed</title>{}</g>", f"{d.day:%Y-%m-%d}",
                                  d.synced, d.failed, format_html_join("", "{}", ((r,) for r in rects))))
    synced, failed = sum(d.synced for d in days), sum(d.failed for d in days)
    width = max(len(days) * step - gap, 1)
    return format_html(
        '<svg class="console-chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" '
        'role="img" aria-label="{} synced and {} failed over {} days">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#b0bec5" stroke-width="1"></line>{}</svg>',
        width, height + 1, width, height + 1, synced, failed, len(days), height + 0.5, width, height + 0.5,
        format_html_join("", "{}", ((g,) for g in groups)),
    )


def _h(value: int, peak: int, height: int) -> float:
    """Bar height; a non-zero day is always at least one pixel tall, so it shows."""
    if not value:
        return 0
    return round(max(1.0, value / peak * height), 1)
