from __future__ import annotations

import json
import re
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from costline.config import (
    CONFIG_ENV,
    ROUTE_TYPES,
    SOURCE_TYPES,
    ApiToken,
    Budget,
    Config,
    ConfigValidationError,
    EmailRoute,
    FocusSource,
    Notify,
    Owner,
    RouteConfig,
    Server,
    SlackRoute,
    SourceConfig,
    TagRules,
    Threshold,
    Tier,
    config_json_schema,
    example_yaml,
    load_config,
    parse_config,
    resolve_config_path,
)
from costline.errors import ConfigError
from costline.model import Selector, Severity

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigValidationError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert lines == [str(issue) for issue in err.value.issues]
    return lines


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    return tmp_path


def _docs_example() -> str:
    match = re.search(r"## A complete example\n\n```yaml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert match, "docs/config.md lost its complete example"
    return match.group(1)


# -- loading a good configuration -----------------------------------------------------------------


def test_the_documented_example_loads(in_tmp: Path) -> None:
    config = load_config(_write(in_tmp / "costline.yaml", _docs_example()))
    assert config.version == 1
    assert config.ledger == "duckdb://.costline/ledger.duckdb"
    assert [s.label for s in config.sources] == ["aws", "azure"]
    assert all(isinstance(s, FocusSource) for s in config.sources)
    assert config.tags.required == ["team", "project", "environment"]
    assert config.tags.aliases["environment"] == ["env", "Environment"]
    assert config.tags.case_fold_values is True
    platform = config.owners[1]
    assert platform.match.matches({"team": "ml-infra"})
    assert platform.routes == ["platform-oncall", "finops-mail"]
    assert [type(r) for r in config.routes] == list(ROUTE_TYPES.values())
    slack = config.routes[0]
    assert isinstance(slack, SlackRoute)
    assert (slack.webhook_url_env, slack.min_severity) == (
        "SLACK_FRAUD_WEBHOOK_URL",
        Severity.WARNING,
    )
    fraud, tokens = config.budgets
    assert fraud.amount_usd == Decimal(25000)
    assert fraud.thresholds == [Decimal(50), Decimal(80), Decimal(100)]
    assert tokens.amount_usd == Decimal("120000.00") and tokens.period == "quarter"
    assert tokens.thresholds == [Decimal(50), Decimal(75), Decimal(90), Decimal(100)]
    assert config.files == (in_tmp / "costline.yaml",)
    assert config.base_dir == in_tmp.resolve()


def test_decimals_in_yaml_stay_exact(in_tmp: Path) -> None:
    config = parse_config(
        """
        budgets:
          - {name: a, amount_usd: 0.1}
          - {name: b, amount_usd: 12345678901234567.891, thresholds: [12.5, 100]}
        """.replace("\n        ", "\n")
    )
    assert config.budgets[0].amount_usd == Decimal("0.1")
    assert config.budgets[1].amount_usd == Decimal("12345678901234567.891")
    assert config.budgets[1].thresholds == [Decimal("12.5"), Decimal(100)]


def test_selector_values_may_be_numbers_in_yaml() -> None:
    config = parse_config("owners:\n  - name: x\n    match: {account: 123456789012}\n")
    assert config.owners[0].match == Selector.of(account="123456789012")


def test_thresholds_are_sorted() -> None:
    config = parse_config("budgets:\n  - {name: a, amount_usd: 10, thresholds: [100, 50]}\n")
    assert config.budgets[0].thresholds == [Decimal(50), Decimal(100)]


def test_empty_file_is_the_defaults(in_tmp: Path) -> None:
    config = load_config(_write(in_tmp / "costline.yaml", "# nothing yet\n"))
    assert config.model_dump() == Config().model_dump()


# -- errors: file, line, key ----------------------------------------------------------------------

BAD_AMOUNT = """
version: 1
ledger: duckdb://.costline/ledger.duckdb
sources:
  - type: focus
    paths: [exports/*.csv]
owners:
  - name: fraud
    match: {team: fraud}
budgets:
  - name: fraud
    amount_usd: fifty
"""


def test_an_error_names_file_line_and_key(in_tmp: Path) -> None:
    _write(in_tmp / "costline.yaml", BAD_AMOUNT)
    assert _errors(Path("costline.yaml")) == [
        "costline.yaml:11: budgets[0].amount_usd: Input should be a valid decimal (got 'fifty')"
    ]


def test_the_error_is_a_config_error_with_exit_code_2(in_tmp: Path) -> None:
    _write(in_tmp / "costline.yaml", BAD_AMOUNT)
    with pytest.raises(ConfigError) as err:
        load_config(Path("costline.yaml"))
    assert err.value.exit_code == 2
    assert isinstance(err.value, ConfigValidationError)
    [issue] = err.value.issues
    assert (issue.file, issue.line, issue.key) == ("costline.yaml", 11, "budgets[0].amount_usd")


MANY_ERRORS = """
version: 1
sources:
  - type: focus
    paths: [a/*.csv]
  - type: focuss
    paths: [b]
  - type: focus
    pathz: [c]
  - paths: [d]
routes:
  - type: slack
    name: s
    webhook_url_env: https://hooks.slack.com/services/T0/B0/XX
budgets:
  - name: fraud
    amout_usd: 5
  - name: b2
    amount_usd: -3
    thresholds: [50, 50]
"""


def test_every_error_is_reported_with_its_line(in_tmp: Path) -> None:
    _write(in_tmp / "costline.yaml", MANY_ERRORS)
    env_message = (
        "'https://hooks.slack.com/services/T0/B0/XX' is not an environment variable name: keep "
        "the secret in an environment variable and name it here (e.g. SLACK_WEBHOOK_URL)"
    )
    assert _errors(Path("costline.yaml")) == [
        "costline.yaml:5: sources[1].type: unknown type 'focuss'; expected one of: files, focus, prometheus",
        "costline.yaml:7: sources[2].paths: required key missing",
        "costline.yaml:8: sources[2].pathz: unknown key (did you mean 'paths'?); "
        "allowed here: name, paths, replace_period, type",
        "costline.yaml:9: sources[3].type: required key missing; one of: files, focus, prometheus",
        f"costline.yaml:13: routes[0].webhook_url_env: {env_message}",
        "costline.yaml:15: budgets[0].amount_usd: required key missing",
        "costline.yaml:16: budgets[0].amout_usd: unknown key (did you mean 'amount_usd'?); "
        "allowed here: amount_usd, burn_rate, end, forecast_alert, name, period, scope, start, "
        "thresholds",
        "costline.yaml:18: budgets[1].amount_usd: Input should be greater than 0 (got -3)",
        "costline.yaml:19: budgets[1].thresholds: thresholds repeat 50",
    ]


def test_unknown_route_type_lists_the_registry() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("routes:\n  - name: t\n    type: teams\n", filename="r.yaml")
    assert str(err.value) == (
        "r.yaml:3: routes[0].type: unknown type 'teams'; "
        "expected one of: email, pagerduty, slack, webhook"
    )


def test_unknown_section_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("version: 1\nbudget:\n  - name: x\n")
    assert str(err.value).startswith(
        "costline.yaml:2: budget: unknown key (did you mean 'budgets'?); allowed here: budgets,"
    )


def test_wrong_type_of_nested_value_points_at_it() -> None:
    text = "owners:\n  - name: a\n    match:\n      team: {x: 1}\n  - name: b\n    match: {}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert str(err.value).splitlines() == [
        "costline.yaml:4: owners[0].match.team: Input should be a valid list",
        "costline.yaml:6: owners[1].match: an owner must match something, e.g. match: {team: fraud}",
    ]


def test_references_are_checked_after_the_schema() -> None:
    text = """
    routes:
      - {type: webhook, name: hook, url: "https://example.com/x"}
      - {type: webhook, name: hook, url: "https://example.com/y"}
    owners:
      - name: fraud
        match: {team: fraud}
        routes:
          - hook
          - nowhere
    sources:
      - {type: focus, paths: [a]}
      - {type: focus, paths: [b]}
    """
    with pytest.raises(ConfigError) as err:
        parse_config(textwrap.dedent(text).lstrip("\n"))
    assert str(err.value).splitlines() == [
        "costline.yaml:12: sources[1].name: sources[0] already has the name 'focus'; "
        "names must be unique",
        "costline.yaml:3: routes[1].name: routes[0] already has the name 'hook'; names must be unique",
        "costline.yaml:9: owners[0].routes[1]: no route named 'nowhere' (routes: hook)",
    ]


def test_config_built_in_python_checks_references_too() -> None:
    owner = Owner(name="a", match=Selector.of(team="a"), routes=["missing"])
    with pytest.raises(ValidationError, match=r"owners\[0\].routes\[0\]: no route named 'missing'"):
        Config(owners=[owner])


# -- errors: the structure pass -------------------------------------------------------------------


def test_yaml_syntax_error_names_file_and_line(in_tmp: Path) -> None:
    _write(in_tmp / "costline.yaml", "version: 1\nbudgets:\n  - name: a\n   amount_usd: 3\n")
    [message] = _errors(Path("costline.yaml"))
    assert message.startswith("costline.yaml:4: invalid YAML: ")


def test_duplicate_keys_are_refused(in_tmp: Path) -> None:
    _write(in_tmp / "costline.yaml", "budgets: []\nledger: a\nbudgets: []\n")
    assert _errors(Path("costline.yaml")) == [
        "costline.yaml:3: budgets: duplicate key (first at line 1); keep one of them"
    ]


def test_top_level_must_be_a_mapping(in_tmp: Path) -> None:
    _write(in_tmp / "costline.yaml", "- sources\n- budgets\n")
    assert _errors(Path("costline.yaml")) == [
        "costline.yaml:1: the top level must be a mapping of sections (version, sources, ...), "
        "not a list"
    ]


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = """
    routes:
      - &mail {type: email, name: a, to: [a@example.com], from_address: c@example.com}
      - {<<: *mail, name: b}
    """
    config = parse_config(textwrap.dedent(text))
    assert [r.name for r in config.routes] == ["a", "b"]
    assert isinstance(config.routes[1], EmailRoute) and config.routes[1].to == ["a@example.com"]


# -- a folder of files ----------------------------------------------------------------------------


def test_folder_merge_concatenates_lists_and_merges_mappings(in_tmp: Path) -> None:
    conf = in_tmp / "conf"
    conf.mkdir()
    _write(
        conf / "a.yaml",
        """
        version: 1
        sources: [{type: focus, name: aws, paths: [aws/*.parquet]}]
        tags: {required: [team]}
        budgets: [{name: one, amount_usd: 10}]
        """,
    )
    _write(
        conf / "b.yml",
        """
        version: 1
        tags: {aliases: {team: [Team]}}
        budgets: [{name: two, amount_usd: 20}]
        """,
    )
    _write(conf / "notes.txt", "not: [config")
    config = load_config(conf)
    assert [b.name for b in config.budgets] == ["one", "two"]
    assert config.tags == TagRules(required=["team"], aliases={"team": ["Team"]})
    assert config.files == (conf / "a.yaml", conf / "b.yml")
    assert config.base_dir == conf.resolve()


def test_folder_errors_point_into_the_right_file(in_tmp: Path) -> None:
    conf = in_tmp / "conf"
    conf.mkdir()
    _write(conf / "a.yaml", "budgets:\n  - {name: one, amount_usd: 10}\n")
    _write(conf / "b.yaml", "# budgets\n\nbudgets:\n  - {name: two, amount_usd: x}\n")
    assert _errors(Path("conf")) == [
        "conf/b.yaml:4: budgets[1].amount_usd: Input should be a valid decimal (got 'x')"
    ]


def test_folder_conflicting_scalars_name_both_files(in_tmp: Path) -> None:
    conf = in_tmp / "conf"
    conf.mkdir()
    _write(conf / "a.yaml", "ledger: duckdb://a.duckdb\ntags: {case_fold_values: true}\n")
    _write(conf / "b.yaml", "# b\nledger: duckdb://b.duckdb\ntags: {case_fold_values: false}\n")
    assert _errors(Path("conf")) == [
        "conf/b.yaml:2: ledger: conflicts with conf/a.yaml:1 ('duckdb://a.duckdb' there, "
        "'duckdb://b.duckdb' here); set it in one file only",
        "conf/b.yaml:3: tags.case_fold_values: conflicts with conf/a.yaml:2 (true there, "
        "false here); set it in one file only",
    ]


def test_empty_folder_is_an_error(in_tmp: Path) -> None:
    (in_tmp / "conf").mkdir()
    with pytest.raises(ConfigError, match=r"no \*\.yaml files"):
        load_config(Path("conf"))


# -- which configuration --------------------------------------------------------------------------


def test_resolution_order(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config_path() is None
    assert load_config() == Config()
    _write(in_tmp / "costline.yaml", "ledger: duckdb://cwd.duckdb\n")
    assert resolve_config_path() == Path("costline.yaml")
    assert load_config().ledger == "duckdb://cwd.duckdb"
    env_file = _write(in_tmp / "from-env.yaml", "ledger: duckdb://env.duckdb\n")
    monkeypatch.setenv(CONFIG_ENV, str(env_file))
    assert load_config().ledger == "duckdb://env.duckdb"
    explicit = _write(in_tmp / "explicit.yaml", "ledger: duckdb://explicit.duckdb\n")
    assert load_config(explicit).ledger == "duckdb://explicit.duckdb"
    monkeypatch.setenv(CONFIG_ENV, "")
    assert load_config().ledger == "duckdb://cwd.duckdb"


def test_missing_configuration_names_its_origin(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV, "nowhere.yaml")
    with pytest.raises(
        ConfigError, match=r"nowhere.yaml: no such .* \(named by \$COSTLINE_CONFIG\)"
    ):
        load_config()
    with pytest.raises(ConfigError, match=r"^gone.yaml: no such configuration file or folder$"):
        load_config(Path("gone.yaml"))


# -- schema and registries ------------------------------------------------------------------------


def test_schema_has_every_section() -> None:
    schema = config_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == set(Config.model_fields)
    assert set(schema["properties"]) >= {"version", "ledger", "sources", "tags", "owners"}
    assert schema["additionalProperties"] is False
    routes = schema["properties"]["routes"]["items"]
    assert routes["discriminator"]["propertyName"] == "type"
    assert set(routes["discriminator"]["mapping"]) == set(ROUTE_TYPES)
    assert set(schema["properties"]["sources"]["items"]["discriminator"]["mapping"]) == set(
        SOURCE_TYPES
    )
    for name in ("Budget", "Owner", "TagRules", *(c.__name__ for c in ROUTE_TYPES.values())):
        assert schema["$defs"][name]["additionalProperties"] is False
    json.dumps(schema)


REGISTERED: list[tuple[str, type[BaseModel], Any]] = [
    *((name, cls, SourceConfig) for name, cls in SOURCE_TYPES.items()),
    *((name, cls, RouteConfig) for name, cls in ROUTE_TYPES.items()),
]


@pytest.mark.parametrize(("name", "cls", "union"), REGISTERED, ids=[r[0] for r in REGISTERED])
def test_every_registered_type_documents_a_working_example(
    name: str, cls: type[BaseModel], union: Any
) -> None:
    data = parse_example(cls)
    assert data["type"] == name
    value = TypeAdapter(union).validate_python(data)
    assert type(value) is cls
    schema = cls.model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["type"]["const"] == name
    assert "type" in schema["required"]


@pytest.mark.parametrize(
    "cls",
    [TagRules, Owner, Budget, Tier, Threshold, Notify, ApiToken, Server],
    ids=lambda c: c.__name__,
)
def test_every_section_documents_a_working_example(cls: type[BaseModel]) -> None:
    cls.model_validate(parse_example(cls))


def parse_example(cls: type[BaseModel]) -> dict[str, Any]:
    data = yaml.safe_load(example_yaml(cls))
    assert isinstance(data, dict), f"{cls.__name__}'s example is not a mapping"
    return data


def test_registered_examples_load_through_the_file_loader() -> None:
    """Each example, placed in a costline.yaml, passes the full loader (lines and all)."""
    sources = "".join(_as_item(example_yaml(c)) for c in SOURCE_TYPES.values())
    routes = "".join(_as_item(example_yaml(c)) for c in ROUTE_TYPES.values())
    config = parse_config(f"sources:\n{sources}routes:\n{routes}")
    assert [type(s) for s in config.sources] == list(SOURCE_TYPES.values())
    assert [type(r) for r in config.routes] == list(ROUTE_TYPES.values())


def _as_item(example: str) -> str:
    lines = example.strip("\n").splitlines()
    return "".join(("  - " if i == 0 else "    ") + line + "\n" for i, line in enumerate(lines))


def test_an_example_is_required() -> None:
    class Bare(BaseModel):
        """No example here."""

    with pytest.raises(ValueError, match="no ```yaml example"):
        example_yaml(Bare)
