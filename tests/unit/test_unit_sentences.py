"""The unit-cost report's sentences state an endpoint's cost as a monthly rate."""

import datetime as dt
from decimal import Decimal

from costline.economics.unit_report import per_month, previous_window, unit_sentences

UTC = dt.UTC


def at(*ymd: int) -> dt.datetime:
    return dt.datetime(*ymd, tzinfo=UTC)


ENDPOINT = {
    "kind": "inference_endpoint", "team": "search", "name": "ranker",
    "cost_usd": Decimal("3000.00"), "per_success_usd": Decimal("0.000300"),
    "per_1k_inferences_usd": Decimal("0.3000"), "inferences": 10_000_000,
}  # fmt: skip


def test_a_month_of_serving_is_its_monthly_cost() -> None:
    said = unit_sentences({"declared": [ENDPOINT]}, "2026-10", (at(2026, 10, 1), at(2026, 11, 1)))
    assert said == [
        "search's ranker endpoint costs $3,000.00/month to serve (10,000,000 inferences in "
        "2026-10, $0.3000 per 1K), $0.000300 per prediction."
    ]


def test_a_shorter_window_is_scaled_to_a_30_day_month() -> None:
    window = (at(2026, 10, 1), at(2026, 10, 11))
    assert per_month(Decimal("3000.00"), window) == Decimal("9000.00")
    (said,) = unit_sentences({"declared": [ENDPOINT]}, "2026-10-01..2026-10-11", window)
    assert said.startswith("search's ranker endpoint costs $9,000.00/month to serve at its ")
    assert "($3,000.00 in the window)" in said and said.endswith("$0.000300 per prediction.")


def test_the_previous_period_of_a_month_is_the_month_before() -> None:
    assert previous_window(at(2026, 3, 1), at(2026, 4, 1)) == (at(2026, 2, 1), at(2026, 3, 1))
    assert previous_window(at(2026, 3, 5), at(2026, 3, 12)) == (at(2026, 2, 26), at(2026, 3, 5))
