"""One date format on the console: "2026-12-03 10:15 UTC", in the configured zone with its abbreviation."""

from __future__ import annotations

from datetime import UTC, datetime

from django.test import override_settings
from django.utils import timezone

from integrations.admin.display import EMPTY, local

MOMENT = datetime(2026, 12, 3, 10, 15, tzinfo=UTC)


def test_it_shows_a_utc_time_with_its_zone():
    with override_settings(TIME_ZONE="UTC"), timezone.override("UTC"):
        assert local(MOMENT) == "2026-12-03 10:15 UTC"


def test_it_shows_the_configured_zone_in_winter_and_in_summer():
    with timezone.override("Europe/Berlin"):
        assert local(MOMENT) == "2026-12-03 11:15 CET"
        assert local(datetime(2026, 7, 1, 10, 15, tzinfo=UTC)) == "2026-07-01 12:15 CEST"
    with timezone.override("America/Chicago"):
        assert local(MOMENT) == "2026-12-03 04:15 CST"


def test_no_time_is_a_dash():
    assert local(None) == EMPTY
