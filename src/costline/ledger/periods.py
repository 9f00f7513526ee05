"""Which billing periods are final: FOCUS 1.4's Billing Period dataset, as the ledger holds it.

A provider keeps restating an open month; once it says `Closed` the month's bill is final. The
`billing_periods` table keeps one row per (invoice issuer, period start, last update), so a period's
status is the one of its latest update (a `Closed` wins a tie). A period no Billing Period file
mentioned has no status here: costline does not guess one from the calendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis

from costline.ledger.store import Ledger

FINAL = "final"
OPEN = "open"


@dataclass(frozen=True)
class PeriodStatus:
    invoice_issuer: str | None
    start: dt.datetime
    end: dt.datetime | None
    status: str  # final | open
    last_updated: dt.datetime | None

    @property
    def is_final(self) -> bool:
        return self.status == FINAL

    def describe(self) -> str:
        """`period 2026-05 (AWS) is final`: how summaries say it."""
        who = f" ({self.invoice_issuer})" if self.invoice_issuer else ""
        return f"period {self.start:%Y-%m}{who} is {self.status}"


def latest_status(periods: ibis.Table) -> ibis.Table:
    """One row per (InvoiceIssuerName, BillingPeriodStart): its latest BillingPeriodStatus."""
    order = [ibis.desc(periods.BillingPeriodLastUpdated), periods.BillingPeriodStatus]
    ranked = periods.mutate(
        __rank=ibis.row_number().over(
            group_by=[periods.InvoiceIssuerName, periods.BillingPeriodStart], order_by=order
        )
    )
    return ranked.filter(ranked.__rank == 0).select(
        "InvoiceIssuerName",
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "BillingPeriodStatus",
        "BillingPeriodLastUpdated",
    )


def period_statuses(ledger: Ledger, *, ingestion_id: str | None = None) -> list[PeriodStatus]:
    """Every billing period with a known status, oldest first; with `ingestion_id`, only those
    that ingestion brought cost lines or Billing Period rows for."""
    expr = latest_status(ledger.table("billing_periods"))
    if ingestion_id is not None:
        keys = ["InvoiceIssuerName", "BillingPeriodStart"]
        rows = ledger.table("billing_periods")
        touched = (
            ledger.ingestion_lines(ingestion_id)
            .select(*keys)
            .union(rows.filter(rows.x_ingestion_id == ingestion_id).select(*keys))
            .distinct()
        )
        expr = expr.semi_join(touched, keys)
    expr = expr.order_by(["BillingPeriodStart", "InvoiceIssuerName"])
    return [
        PeriodStatus(
            invoice_issuer=r["InvoiceIssuerName"],
            start=r["BillingPeriodStart"],
            end=r["BillingPeriodEnd"],
            status=FINAL if r["BillingPeriodStatus"] == "Closed" else OPEN,
            last_updated=r["BillingPeriodLastUpdated"],
        )
        for r in ledger.backend.to_pyarrow(expr).to_pylist()
    ]


def final_periods(ledger: Ledger) -> list[PeriodStatus]:
    """The billing periods their provider has closed: their bills will not change any more."""
    return [p for p in period_statuses(ledger) if p.is_final]
