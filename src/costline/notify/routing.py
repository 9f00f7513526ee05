"""Which routes hear of a finding: its owners' routes, plus those of the escalation tiers reached.

1. every configured owner whose `name` is the finding's `owner`, or whose `match` selector matches
   the finding's `scope`, contributes its `routes`, in the order owners are configured;
2. then the route names a detector put in `evidence["routes"]`: the routes of the escalation tiers
   a breach has reached so far (platform, then finance, then leadership);
3. names repeat only once, in first-seen order; names no longer configured are skipped;
4. a route hears only of findings at least as severe as its `min_severity`.

>>> from costline.config import Config
>>> from costline.clock import FixedClock
>>> import datetime as dt
>>> config = Config.model_validate({
...     "routes": [{"type": "slack", "name": "fraud-slack", "webhook_url_env": "FRAUD_SLACK"},
...                {"type": "pagerduty", "name": "oncall", "routing_key_env": "PD_KEY",
...                 "min_severity": "critical"}],
...     "owners": [{"name": "fraud", "match": {"team": "fraud"}, "routes": ["fraud-slack", "oncall"]}]})
>>> f = Finding.new(kind="anomaly", scope={"team": "fraud"}, dedup_key="d", title="t",
...                 severity="warning", clock=FixedClock(dt.datetime(2026, 10, 3, tzinfo=dt.UTC)))
>>> [r.name for r in routes_for(f, config)]
['fraud-slack']
"""

from __future__ import annotations

from costline.config import Config, RouteConfig
from costline.model import Finding


def route_names(finding: Finding, config: Config) -> list[str]:
    """The route names a finding is routed to before the severity filter, de-duplicated in order."""
    names: list[str] = []
    for owner in config.owners:
        if (finding.owner is not None and owner.name == finding.owner) or owner.match.matches(
            finding.scope
        ):
            names.extend(owner.routes)
    escalated = finding.evidence.get("routes")
    if isinstance(escalated, list):
        names.extend(name for name in escalated if isinstance(name, str))
    return list(dict.fromkeys(names))


def routes_for(finding: Finding, config: Config) -> list[RouteConfig]:
    """The configured routes that deliver this finding, in order (see the module docstring)."""
    defined = {route.name: route for route in config.routes}
    chosen = [defined[name] for name in route_names(finding, config) if name in defined]
    return [r for r in chosen if r.min_severity.rank <= finding.severity.rank]
