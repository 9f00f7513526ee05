"""A third party's billing dialect, registered through pluggy, is used by `ingest focus`."""

from __future__ import annotations

import types
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from costline.ledger.store import Ledger
from costline.pipeline import ingest_focus
from costline.plugins import hookimpl, manager
from costline.sources.base import NativeDialect, billing_dialects, quote_ident


def _select(columns: Sequence[str]) -> list[tuple[str, str]]:
    return [
        ("BilledCost", quote_ident("amount")),
        ("EffectiveCost", quote_ident("amount")),
        ("BillingCurrency", "'EUR'"),
        ("ChargePeriodStart", quote_ident("day")),
        ("ChargePeriodEnd", f"CAST(CAST({quote_ident('day')} AS DATE) + 1 AS VARCHAR)"),
        (
            "BillingPeriodStart",
            f"CAST(date_trunc('month', CAST({quote_ident('day')} AS DATE)) AS VARCHAR)",
        ),
        (
            "BillingPeriodEnd",
            f"CAST(date_trunc('month', CAST({quote_ident('day')} AS DATE)) + INTERVAL 1 MONTH AS VARCHAR)",
        ),
        ("ProviderName", "'TinyCloud'"),
        ("ServiceName", quote_ident("service")),
    ]


TINY = NativeDialect(
    name="tinycloud",
    description="TinyCloud daily bill",
    detect=lambda cols: list(cols) == ["day", "service", "amount"],
    select=_select,
)


def test_third_party_dialect_is_registered_and_used(tmp_path: Path) -> None:
    plugin = types.SimpleNamespace(costline_billing_dialects=hookimpl(lambda: [TINY]))
    manager().register(plugin, name="tinycloud-test")
    try:
        assert "tinycloud" in [d.name for d in billing_dialects()]
        bill = tmp_path / "tiny.csv"
        bill.write_text(
            "day,service,amount\n2026-10-01,GPU,12.50\n2026-10-02,GPU,0.000000000000000001\n"
        )
        with Ledger(f"duckdb:///{tmp_path / 'l.duckdb'}") as ledger:
            summary = ingest_focus(ledger, [bill])
            assert summary.files[0].dialect == "tinycloud"
            assert summary.totals[0].currency == "EUR"
            assert summary.totals[0].billed == Decimal("12.500000000000000001")
    finally:
        manager().unregister(name="tinycloud-test")
    assert "tinycloud" not in [d.name for d in billing_dialects()]
