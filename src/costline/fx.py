"""Currencies: every amount keeps its `BillingCurrency`; sums across currencies need a rate.

`reporting_lines` is the one place cost lines become amounts of one reporting currency (USD, the
`_usd` fields of every report): a line billed in another currency is converted at the rate of its
charge day (the currency's latest rate on or before `ChargePeriodStart`, from `fx:` in
costline.yaml), in the engine, in decimal. A currency without a rate for a line's day is refused
(`CurrencyError`, exit 2) naming the currencies and days, never summed as if it were dollars.
The line's own currency and amounts stay in `x_BillingCurrency` and `x_Billed`/`x_EffectiveCost`.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

import ibis
import pyarrow as pa

from costline.config import Fx
from costline.errors import CostlineError
from costline.ledger import fetch

REPORTING = "USD"
RATE_SQL_TYPE = "decimal(18,10)"
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


class CurrencyError(CostlineError):
    """Amounts in a currency costline has no rate for would be added to dollars."""


def read_rates_file(path: Path) -> list[tuple[dt.date, str, Decimal]]:
    """`date,currency,rate` rows of a CSV; errors name the file, row and column."""
    out = []
    try:
        with path.open(newline="") as fh:
            for number, row in enumerate(csv.DictReader(fh), start=2):
                for column in ("date", "currency", "rate"):
                    if not (row.get(column) or "").strip():
                        raise CurrencyError(f"{path}, row {number}, column {column}: empty")
                try:
                    day = dt.date.fromisoformat(row["date"].strip())
                except ValueError:
                    raise CurrencyError(
                        f"{path}, row {number}, column date: expected YYYY-MM-DD"
                    ) from None
                try:
                    rate = Decimal(row["rate"].strip())
                except InvalidOperation:
                    raise CurrencyError(
                        f"{path}, row {number}, column rate: not a number"
                    ) from None
                if not rate.is_finite() or rate <= 0:
                    raise CurrencyError(f"{path}, row {number}, column rate: must be positive")
                out.append((day, row["currency"].strip().upper(), rate))
    except OSError as exc:
        raise CurrencyError(f"fx.file {path}: {exc.strerror or exc}") from exc
    return out


def _rates_table(rates: Sequence[tuple[dt.date, str, Decimal]]) -> ibis.Table:
    return ibis.memtable(
        pa.table(
            {
                "fx_from": pa.array(
                    [dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC) for d, _, _ in rates],
                    pa.timestamp("us", tz="UTC"),
                ),
                "fx_currency": pa.array([c for _, c, _ in rates], pa.string()),
                "fx_rate": pa.array([r for _, _, r in rates], pa.decimal128(18, 10)),
            }
        )
    )


def currencies(lines: ibis.Table) -> list[str]:
    """The billing currencies the lines hold (NULL read as the reporting currency)."""
    found = lines.select(c=lines.BillingCurrency.fill_null(REPORTING)).distinct()
    return sorted(str(r["c"]) for r in fetch.rows(found))


def reporting_lines(
    lines: ibis.Table, rates: Sequence[tuple[dt.date, str, Decimal]] = ()
) -> ibis.Table:
    """`lines` with every cost column in USD (see the module); the lines unchanged when all are."""
    held = currencies(lines)
    foreign = [c for c in held if c != REPORTING]
    if not foreign:
        return lines
    known = {c for _, c, _ in rates}
    missing = [c for c in foreign if c not in known]
    if missing:
        raise CurrencyError(
            f"the ledger holds amounts in {', '.join(held)}; reports add them in {REPORTING}, and "
            f"costline.yaml has no fx rate for {', '.join(missing)}: add dated rates under `fx:` "
            "(rates, or a file of date,currency,rate)"
        )
    table = _rates_table(rates)
    cur = lines.BillingCurrency.fill_null(REPORTING)
    tagged = lines.mutate(x_BillingCurrency=cur, _row=ibis.row_number())
    joined = tagged.asof_join(
        table,
        on=tagged.ChargePeriodStart >= table.fx_from,
        predicates=[tagged.x_BillingCurrency == table.fx_currency],
    )
    rate = ibis.ifelse(
        joined.x_BillingCurrency == REPORTING, ibis.literal(Decimal(1)).cast(RATE_SQL_TYPE),
        joined.fx_rate,
    )  # fmt: skip
    _refuse_undated(joined, rate)
    money = lines.schema()["BilledCost"]
    converted = {c: (joined[c] * rate).cast(money) for c in COST_COLUMNS if c in lines.columns}
    originals = {f"x_{c}": joined[c] for c in ("BilledCost", "EffectiveCost") if c in lines.columns}
    out = joined.mutate(**converted, **originals, BillingCurrency=ibis.literal(REPORTING))
    return out.select(*lines.columns, "x_BillingCurrency", *originals)


def _refuse_undated(joined: ibis.Table, rate: ibis.Value) -> None:
    gaps = joined.filter(rate.isnull())
    first = gaps.group_by("x_BillingCurrency").aggregate(day=gaps.ChargePeriodStart.min())
    rows = fetch.rows(first)
    if rows:
        said = ", ".join(f"{r['x_BillingCurrency']} before {r['day']:%Y-%m-%d}" for r in rows)
        raise CurrencyError(
            f"no fx rate for {said}: each line needs a rate dated on or before its charge day "
            "(`fx:` in costline.yaml)"
        )


def configured_rates(fx: Fx, base_dir: Path) -> list[tuple[dt.date, str, Decimal]]:
    """The rates of `fx:` in costline.yaml: its list, then its file's rows."""
    rates = [(r.date, r.currency, r.rate) for r in fx.rates]
    if fx.file is not None:
        path = fx.file if fx.file.is_absolute() else base_dir / fx.file
        rates += read_rates_file(path)
    return rates
