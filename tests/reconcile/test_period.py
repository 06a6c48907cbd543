"""Periods (a month by default, any range of at most a year) and the flows' value readers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from integrations.flows.base import as_day, as_decimal
from integrations.models import Period, PeriodError


@pytest.mark.parametrize(("text", "first", "last"), [
    ("2026-11", date(2026, 11, 1), date(2026, 11, 30)),
    ("2028-02", date(2028, 2, 1), date(2028, 2, 29)),
    ("2026-12", date(2026, 12, 1), date(2026, 12, 31)),
])
def test_a_month_is_its_first_to_its_last_day(text, first, last):
    period = Period.month(text)
    assert (period.first, period.last, period.label, period.is_month) == (first, last, text, True)
    assert len(period.days()) == last.day and first in period and date(2026, 10, 31) not in period


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-11", "2026/11", "", "0000-01", "2026-1", "２０２６-11"])
def test_a_month_that_is_not_one_is_refused(text):
    with pytest.raises(PeriodError):
        Period.month(text)


def test_a_range_of_days_includes_both_ends_and_reads_as_a_month_when_it_is_one():
    assert Period.between("2026-11-03", "2026-11-17").label == "2026-11-03 – 2026-11-17"
    assert Period.between("2026-11-01", "2026-11-30").label == "2026-11"
    assert Period.between("9999-12-01", "9999-12-31").label == "9999-12"
    for start, end in (("2026-11-30", "2026-11-01"), ("2025-01-01", "2026-01-02"), ("2026-02-30", "2026-03-01"),
                       ("yesterday", "today")):
        with pytest.raises(PeriodError):
            Period.between(start, end)


def test_the_month_before_is_what_a_run_after_month_end_closes():
    assert Period.month_before(date(2026, 12, 3)) == Period.month("2026-11")
    assert Period.month_before(date(2027, 1, 1)) == Period.month("2026-12")


def test_values_as_stored_are_read_exactly_or_not_at_all():
    assert as_day("2026-11-03") == as_day("2026-11-03T10:00:00Z") == date(2026, 11, 3)
    assert as_day("11/03/2026") is None and as_day(None) is None
    assert as_decimal("1234.50") == Decimal("1234.50") and as_decimal(12) == Decimal(12)
    assert as_decimal("") is None and as_decimal("NaN") is None and as_decimal("12,00") is None
