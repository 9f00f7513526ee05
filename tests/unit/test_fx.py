"""Currencies: amounts keep their currency; reports convert at dated rates or refuse."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import ibis
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from costline.cli.main import app
from costline.errors import CostlineError
from costline.fx import CurrencyError, read_rates_file, reporting_lines

NATIVE = Path(__file__).parent.parent / "fixtures" / "native"
AZURE_CAD = NATIVE / "azure_ea_sample-anonymous-ea-export-dataset.csv"  # billed in CAD
AWS_USD = NATIVE / "aws_cur_synthetic_commitments_tags.csv"
MONEY = pa.decimal128(38, 18)


def lines(*rows: tuple[int, str, str]) -> ibis.Table:
    return ibis.memtable(
        pa.table(
            {
                "ChargePeriodStart": pa.array(
                    [dt.datetime(2026, 10, d, tzinfo=dt.UTC) for d, _, _ in rows],
                    pa.timestamp("us", tz="UTC"),
                ),
                "BillingCurrency": [c for _, c, _ in rows],
                "BilledCost": pa.array([Decimal(v) for _, _, v in rows], MONEY),
                "EffectiveCost": pa.array([Decimal(v) for _, _, v in rows], MONEY),
            }
        )
    )


def test_each_line_converts_at_the_rate_of_its_day_and_keeps_its_own_amount() -> None:
    rates = [(dt.date(2026, 10, 1), "CAD", Decimal("0.7")), (dt.date(2026, 10, 10), "CAD", Decimal("0.8")),
             (dt.date(2026, 9, 1), "EUR", Decimal("1.0800000001"))]  # fmt: skip
    t = reporting_lines(lines((1, "USD", "1.5"), (2, "CAD", "1.26"), (15, "CAD", "100"),
                              (3, "EUR", "10")), rates)  # fmt: skip
    got = {(r["x_BillingCurrency"], r["x_BilledCost"]): r for r in t.to_pyarrow().to_pylist()}
    assert {r["BillingCurrency"] for r in got.values()} == {"USD"}
    assert got[("CAD", Decimal("1.26"))]["BilledCost"] == Decimal("0.882")  # the Oct 1 rate
    assert got[("CAD", Decimal(100))]["EffectiveCost"] == Decimal(80)  # the Oct 10 rate
    assert got[("EUR", Decimal(10))]["BilledCost"] == Decimal("10.800000001")  # exact decimals
    assert got[("USD", Decimal("1.5"))]["BilledCost"] == Decimal("1.5")


def test_one_currency_needs_no_rate_and_a_missing_rate_is_refused() -> None:
    only_usd = lines((1, "USD", "2"))
    assert reporting_lines(only_usd) is only_usd
    with pytest.raises(CurrencyError, match="no fx rate for CAD"):
        reporting_lines(lines((1, "USD", "2"), (2, "CAD", "1.26")))
    # A rate that starts after the line's day does not cover it.
    with pytest.raises(CurrencyError, match="CAD before 2026-10-05"):
        reporting_lines(lines((5, "CAD", "3")), [(dt.date(2026, 10, 6), "CAD", Decimal("0.7"))])


def test_a_rates_file_names_its_bad_row_and_column(tmp_path: Path) -> None:
    good = tmp_path / "fx.csv"
    good.write_text("date,currency,rate\n2026-10-01,cad,0.72\n")
    assert read_rates_file(good) == [(dt.date(2026, 10, 1), "CAD", Decimal("0.72"))]
    bad = tmp_path / "bad.csv"
    bad.write_text("date,currency,rate\n2026-10-01,CAD,0.72\n2026-10-02,CAD,-1\n")
    with pytest.raises(CurrencyError, match=r"bad.csv, row 3, column rate: must be positive"):
        read_rates_file(bad)


def _cli(tmp_path: Path, config: str, *args: str) -> tuple[int, str]:
    """Exit code as `costline` (cli.main.main) gives it: a CostlineError's own code."""
    (tmp_path / "costline.yaml").write_text(config)
    env = {"COSTLINE_LEDGER": f"duckdb://{tmp_path / 'l.duckdb'}",
           "COSTLINE_CONFIG": str(tmp_path / "costline.yaml")}  # fmt: skip
    result = CliRunner().invoke(app, list(args), env=env)
    if isinstance(result.exception, CostlineError):
        return result.exception.exit_code, str(result.exception)
    return result.exit_code, result.output


def test_reports_refuse_cad_as_dollars_and_convert_it_with_configured_rates(tmp_path: Path) -> None:
    code, out = _cli(
        tmp_path, "{}\n", "ingest", "focus", str(AZURE_CAD), str(AWS_USD), "-f", "json"
    )
    assert code == 0, out
    showback = ("report", "showback", "--period", "2023-09-01..2023-12-01", "-f", "json")
    code, out = _cli(tmp_path, "{}\n", *showback)
    assert code == 2 and "CAD" in out and "fx" in out  # never "$1.26" under amount_usd
    config = 'fx:\n  rates:\n    - {date: 2023-01-01, currency: CAD, rate: "0.75"}\n'
    code, out = _cli(tmp_path, config, *showback)
    assert code == 0, out
    amount = sum(Decimal(r["amount_usd"]) for r in json.loads(out))
    usd = Decimal("163.2700416667")  # the AWS file's effective cost
    cad = Decimal("1.26136926505726")  # the Azure EA file's, in CAD
    assert amount == usd + cad * Decimal("0.75")
