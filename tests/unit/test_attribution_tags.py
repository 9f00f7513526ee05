"""First attribution: team and cost domain from tags, across providers' spellings."""

from __future__ import annotations

import ibis

from costline.attribution.tags import cost_domain, team


def _lines(tags: list[dict[str, str] | None]) -> ibis.Table:
    return ibis.memtable({"Tags": tags}, schema={"Tags": "map<string, string>"})


def test_team_aliases_and_value_spellings() -> None:
    t = _lines(
        [{"team": "search"}, {"Team": "Foundation Models"}, {"team_name": "ML_Platform"}, {}, None]
    )
    assert t.select(team(t)).to_pyarrow().column(0).to_pylist() == [
        "search",
        "foundation-models",
        "ml-platform",
        "(untagged)",
        "(untagged)",
    ]


def test_cost_domains_from_workload_tags() -> None:
    t = _lines(
        [
            {"workload-type": "Fine-Tuning"},
            {"workload": "inference"},
            {"workload-type": "billing"},
            {"workload": "etl"},
            {"workload-type": "quantum"},
            {},
        ]
    )
    assert t.select(cost_domain(t)).to_pyarrow().column(0).to_pylist() == [
        "training",
        "online_inference",
        "shared_platform",
        "non_ai",
        "(unclassified)",
        "(untagged)",
    ]
