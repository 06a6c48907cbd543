"""Badges carry white text: each background must reach WCAG AA contrast (4.5:1 for small text)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from integrations.admin import display

DASHBOARD = Path(__file__).resolve().parents[2] / "templates" / "console" / "dashboard.html"
AA_SMALL_TEXT = 4.5


def luminance(colour: str) -> float:
    """Relative luminance of an sRGB colour (#rrggbb), as WCAG 2 defines it."""
    channels = [int(colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula_gives_the_known_extremes():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic near miss


@pytest.mark.parametrize("key", sorted(display.BADGE_COLOURS))
def test_each_badge_colour_reads_white_text_at_aa(key):
    assert contrast(display.BADGE_COLOURS[key], "#ffffff") >= AA_SMALL_TEXT, key


def test_the_default_badge_grey_reads_white_text_at_aa():
    assert contrast(display.GREY, "#ffffff") >= AA_SMALL_TEXT


def test_every_badge_colour_written_in_the_dashboard_reads_white_text_at_aa():
    colours = set(re.findall(r"#[0-9a-fA-F]{6}\b", DASHBOARD.read_text()))
    assert colours, "the dashboard's badge colours moved: point this test at them"
    weak = {c: round(contrast(c, "#ffffff"), 2) for c in colours if contrast(c, "#ffffff") < AA_SMALL_TEXT}
    assert not weak, f"badge colours under 4.5:1 against white: {weak}"
