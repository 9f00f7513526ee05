"""Budgets: spend against limits per scope and period, burn rate, period-end forecasts, caps."""
