"""A monthly figure is counted over the days the data covers, not the whole window asked for."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.unit.recommend_data import END, T0, inputs, line


def test_per_month_counts_from_the_first_bill_in_the_window() -> None:
    # A 4-day window whose bills begin on its third day: 2 days of bills, so x15 a month.
    late = [line("h1", "p4d.24xlarge", 48 + h, Decimal(10)) for h in range(48)]
    got = inputs(late, start=T0, end=T0 + dt.timedelta(days=4))
    assert got.per_month == Decimal(15)


def test_per_month_is_the_whole_window_when_bills_cover_it() -> None:
    full = [line("h1", "p4d.24xlarge", h, Decimal(10)) for h in range(24)]
    assert inputs(full, start=T0, end=END).per_month == Decimal(30)


def test_per_month_of_an_empty_window_is_the_window() -> None:
    assert inputs([], start=T0, end=T0 + dt.timedelta(days=3)).per_month == Decimal(10)
