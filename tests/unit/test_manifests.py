"""Experiment manifests: read from files or costline.yaml, defaults from the configuration, the
JSON Schema, and bad manifests named by file, line and key (exit 2)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from costline.config import ConfigValidationError, config_json_schema, load_config, parse_config
from costline.errors import EXIT_BAD_INPUT
from costline.governance.manifests import read_manifests
from costline.manifest import effective_budget, effective_ttl_hours
from tests.unit.governance_data import GOOD, cli, manifest


def test_a_manifest_file_with_the_configured_defaults(tmp_path: Path) -> None:
    path = manifest(tmp_path, "m", GOOD, budget_usd=None, ttl_hours=None)
    raw = path.read_text().replace("budget_usd: null\n", "").replace("ttl_hours: null\n", "")
    path.write_text(raw)
    config = parse_config("experiments: {cap_usd: 750}")
    [declared] = read_manifests([path], config)
    m = declared.manifest
    assert declared.source == str(path)
    assert (m.name, m.kind, m.team, m.resources.instance_type) == (
        "ranker-sft", "fine_tune", "search", "g6.xlarge")  # fmt: skip
    assert m.hours == Decimal(6)  # 3000 steps at 500 an hour
    assert effective_budget(m, config.experiments.cap_usd) == Decimal(750)
    assert effective_ttl_hours(m) == Decimal(24)  # dev: 24 h by default


def test_ttl_defaults_only_outside_production_and_null_means_none(tmp_path: Path) -> None:
    prod = manifest(tmp_path, "prod", GOOD, name="p", environment="production")
    text = prod.read_text().replace("ttl_hours: 24\n", "")
    prod.write_text(text)
    none = manifest(tmp_path, "none", GOOD, name="n", ttl_hours=None)
    [p, n] = read_manifests([prod, none], parse_config(""))
    assert effective_ttl_hours(p.manifest) is None and not p.manifest.ttl_stated
    assert effective_ttl_hours(n.manifest) is None and n.manifest.ttl_stated
    assert effective_budget(p.manifest, Decimal(1000)) == Decimal(8)


def test_manifests_from_costline_yaml_and_the_default_cap(tmp_path: Path) -> None:
    config_file = tmp_path / "costline.yaml"
    config_file.write_text(
        "experiments:\n  manifests:\n"
        "    - {name: a, team: search, resources: {gpu_type: H100, gpus: 8}, duration_hours: 10}\n"
        "    - {name: b, kind: sweep, trials: 20, resources: {gpu_type: L4, gpus: 1}, "
        "duration_hours: 2}\n"
    )
    config = load_config(config_file)
    found = read_manifests([], config)
    assert [d.manifest.name for d in found] == ["a", "b"]
    assert found[1].manifest.trials == 20 and found[0].source == str(config_file)
    assert effective_budget(found[0].manifest, config.experiments.cap_usd) == Decimal(1000)
    # the same file named on the command line reads the same manifests
    assert [d.manifest.name for d in read_manifests([config_file], config)] == ["a", "b"]


def test_the_schema_of_costline_yaml_holds_the_manifest() -> None:
    schema = config_json_schema()
    experiments = schema["$defs"]["Experiments"]["properties"]
    assert {"manifests", "environments", "required_tags", "approve_above_usd"} <= set(experiments)
    manifest_schema = schema["$defs"]["ExperimentManifest"]
    assert manifest_schema["additionalProperties"] is False
    assert manifest_schema["required"] == ["name"]
    assert {"owner", "team", "budget_usd", "ttl_hours", "resources", "checkpoint", "approvals",
            "steps_per_hour", "max_tokens"} <= set(manifest_schema["properties"])  # fmt: skip


def test_bad_manifests_name_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nresources:\n  gpu_typ: H100\nsteps: 100\nbudget_usd: lots\n")
    with pytest.raises(ConfigValidationError) as err:
        read_manifests([bad], parse_config(""))
    assert str(err.value).splitlines() == [
        f"{bad}:5: budget_usd: Input should be a valid decimal (got 'lots')",
        f"{bad}:3: resources.gpu_typ: unknown key",
    ]
    steps = tmp_path / "steps.yaml"
    steps.write_text("name: y\nsteps: 100\n")
    with pytest.raises(ConfigValidationError, match="steps needs steps_per_hour"):
        read_manifests([steps], parse_config(""))


def test_a_bad_manifest_exits_2_through_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nttl_hours: -3\n")
    for command in ("estimate", "gate"):
        result = cli("--ledger", f"duckdb:///{tmp_path / 'none.duckdb'}", command, str(bad))
        assert isinstance(result.exception, ConfigValidationError)
        assert result.exception.exit_code == EXIT_BAD_INPUT
        assert f"{bad}:2: ttl_hours: Input should be greater than 0" in str(result.exception)
    assert not (tmp_path / "none.duckdb").exists()  # nothing written
    missing = cli("estimate", str(tmp_path / "nope.yaml"))
    assert "no such manifest file" in str(missing.exception)


def test_manifest_names_repeat_across_files_is_an_error(tmp_path: Path) -> None:
    one, two = manifest(tmp_path, "one", GOOD), manifest(tmp_path, "two", GOOD)
    with pytest.raises(ConfigValidationError, match="'ranker-sft' repeats"):
        read_manifests([one, two], parse_config(""))


def test_the_documented_manifests_load() -> None:
    import re

    import yaml

    from costline.config import example_yaml
    from costline.manifest import ExperimentManifest, default_environments

    docs = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    block = re.search(r"```yaml\n(name: llama-8b-sft.*?)```", docs, re.DOTALL)
    assert block is not None, "docs/config.md lost its manifest example"
    for text in (block.group(1), example_yaml(ExperimentManifest)):
        m = ExperimentManifest.model_validate(yaml.safe_load(text))
        assert (m.name, m.hours, m.checkpoint.keep_last) == ("llama-8b-sft", Decimal(15), 3)
    assert set(default_environments()) == {"dev", "staging", "production"}


def test_costline_schema_manifest_prints_the_manifest_schema() -> None:
    import json

    result = cli("schema", "manifest")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    assert schema["$defs"]["Resources"]["properties"]["capacity_type"]["enum"] == [
        "on_demand", "spot", "commit_1y", "commit_3y"]  # fmt: skip
