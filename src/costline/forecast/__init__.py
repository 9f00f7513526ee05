"""Forecasts of daily spend: models chosen by backtest, period-end totals, spike scenarios."""
