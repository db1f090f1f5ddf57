"""Reading spec files: documents, overlays per environment, and every bad input reported
with its file, line and field before anything reaches a platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.apply.documents import SpecProblems
from slipway.apply.specset import load_spec_set
from slipway.events.rules import RuleSpec
from slipway.serving.spec import EndpointSpec
from tests.apply.conftest import write

DEMO = Path(__file__).parents[2] / "src" / "slipway" / "demo" / "specs"

RULE = """kind: AlertRule
name: drift
event_types: [monitor.violations]
channels: [ops-log]
"""


def problems(path: Path, env: str | None = None) -> list[str]:
    with pytest.raises(SpecProblems) as caught:
        load_spec_set(path, environment=env)
    return [str(p) for p in caught.value.problems]


def test_documents_of_every_file_in_the_directory_are_read_and_validated(specs: Path) -> None:
    write(specs, "alerts.yaml", "kind: AlertChannel\nname: ops-log\ntype: log\n---\n" + RULE)
    write(specs, "nested/more.yaml", RULE.replace("drift", "errors"))
    write(specs, "README.md", "not a spec")
    loaded = load_spec_set(specs)
    assert loaded.name == "ops"  # the directory's name, without a SpecSet document
    assert [(d.kind.name, d.name) for d in loaded.documents] == [
        ("AlertChannel", "ops-log"),
        ("AlertRule", "drift"),
        ("AlertRule", "errors"),
    ]
    rule = loaded.find("AlertRule", "drift")
    assert rule is not None and isinstance(rule.spec, RuleSpec)
    assert rule.spec.cooldown_seconds == 300.0  # the schema's default
    assert str(rule.where(("channels",))) == "alerts.yaml:8"


def test_the_demo_platform_in_stage_and_prod_from_one_base() -> None:
    base, stage, prod = (load_spec_set(DEMO, environment=e) for e in (None, "stage", "prod"))
    assert base.name == stage.name == prod.name == "flight-delay"
    assert len(base.documents) == len(stage.documents) == len(prod.documents) == 13

    def endpoint(spec_set: object) -> EndpointSpec:
        found = spec_set.find("Endpoint", "flight-delay")  # type: ignore[attr-defined]
        assert found is not None and isinstance(found.spec, EndpointSpec)
        return found.spec

    staged, produced = endpoint(stage), endpoint(prod)
    # Stage: champion and challenger (another alias) share the traffic in a sandbox.
    assert staged.environment == "staging"
    assert [(v.name, v.model, v.weight) for v in staged.variants] == [
        ("champion", "flight-delay@champion", 0.5),
        ("challenger", "flight-delay@challenger", 0.5),
    ]
    # Prod: the champion alone, two workers, a slower canary with tighter alarms.
    assert produced.environment == "production"
    assert [(v.name, v.weight, v.workers) for v in produced.variants] == [("champion", 1.0, 2)]
    assert produced.deployment.canary_percent == 5.0
    assert produced.deployment.interval_seconds == 300.0
    assert [(a.name, a.metric.value, a.threshold) for a in produced.deployment.alarms] == [
        ("errors", "error_rate", 0.01),
        ("slow", "latency_p99_ms", 250.0),
    ]
    # The base keeps its own values where no overlay speaks.
    assert endpoint(base).deployment.alarms[0].threshold == 0.05
    schedules = [s.find("Schedule", "flight-delay-nightly").spec.cron for s in (stage, prod)]  # type: ignore[union-attr]
    assert schedules == ["0 3 * * *", "30 2 * * *"]
    monitors = [s.find("Monitor", "flight-delay-drift").spec.schedule for s in (stage, prod)]  # type: ignore[union-attr]
    assert monitors == ["*/15 * * * *", "0 * * * *"]
    rules = [s.find("AlertRule", "drift").spec.severity for s in (stage, prod)]  # type: ignore[union-attr]
    assert rules == ["warning", "critical"]


def test_an_overlay_null_removes_a_key_and_named_items_merge_by_name(specs: Path) -> None:
    write(
        specs,
        "baseline.yaml",
        """
        kind: Baseline
        name: reference
        source: {model_version: true}
        model: churn@champion
        """,
    )
    write(
        specs,
        "environments/test.yaml",
        """
        kind: Baseline
        name: reference
        source: {model_version: null, file: /data/reference.parquet}
        """,
    )
    found = load_spec_set(specs, environment="test").find("Baseline", "reference")
    assert found is not None
    assert found.spec.source == {"file": "/data/reference.parquet"}  # type: ignore[attr-defined]
    assert str(found.where(("source", "file"))) == "environments/test.yaml:3"


def test_a_yaml_tag_is_refused_never_constructed(specs: Path, tmp_path: Path) -> None:
    marker = tmp_path / "constructed"
    write(
        specs,
        "evil.yaml",
        f"""
        kind: AlertChannel
        name: ops-log
        type: log
        config: !!python/object/apply:os.system ["touch {marker}"]
        """,
    )
    found = problems(specs)
    assert len(found) == 1
    assert found[0].startswith("evil.yaml:4: config: the YAML tag")
    assert "python/object/apply:os.system" in found[0]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: Endpoint2\nname: x\n", "a.yaml:1: kind: unknown kind 'Endpoint2'"),
        (RULE + "colour: red\n", "a.yaml:5: colour: Extra inputs are not permitted"),
        (RULE.replace("[ops-log]", "[]"), "a.yaml:4: channels: List should have at least 1"),
        ("kind: AlertRule\nevent_types: [x]\n", "a.yaml:1: name: every document needs a name"),
        ("name: x\n", "a.yaml:1: kind: every document needs a kind"),
        ("- a list\n", "a.yaml:1: a spec document must be a mapping"),
        ("kind: [unclosed\n", "a.yaml:2: not YAML"),
        (RULE + "name: again\n", "a.yaml:5: name: the key is given twice"),
        (
            "kind: Monitor\nname: m\nendpoint: e\n",
            "a.yaml:1: type: Field required",  # a monitor's own kind is written 'type'
        ),
    ],
)
def test_bad_documents_name_file_line_and_field(specs: Path, text: str, expected: str) -> None:
    write(specs, "a.yaml", text)
    found = problems(specs)
    assert found[0].startswith(expected), found


def test_every_problem_of_every_file_is_reported_at_once(specs: Path) -> None:
    write(specs, "a.yaml", RULE + "colour: red\n")
    write(specs, "b.yaml", "kind: Nope\nname: x\n")
    write(specs, "c.yaml", RULE)  # the same rule again
    found = problems(specs)
    assert len(found) == 3
    assert found[0].startswith("a.yaml:5: colour")
    assert found[1].startswith("b.yaml:1: kind: unknown kind 'Nope'")
    assert found[2] == "c.yaml:1: name: AlertRule 'drift' is declared twice (first at a.yaml:1)"


def test_an_overlay_may_not_add_a_resource(specs: Path) -> None:
    write(specs, "a.yaml", RULE)
    write(specs, "environments/prod.yaml", RULE.replace("drift", "typo"))
    found = problems(specs, "prod")
    assert found == [
        "environments/prod.yaml:1: name: the overlay changes AlertRule 'typo', which the base"
        " does not declare"
    ]


def test_an_overlay_error_points_into_the_overlay(specs: Path) -> None:
    write(specs, "a.yaml", RULE)
    write(specs, "environments/prod.yaml", "kind: AlertRule\nname: drift\nseverity: loud\n")
    found = problems(specs, "prod")
    assert len(found) == 1 and found[0].startswith("environments/prod.yaml:3: severity:")


def test_unknown_and_invalid_environments(specs: Path) -> None:
    write(specs, "a.yaml", RULE)
    assert problems(specs, "qa") == [f"env: no overlay environments/qa.yaml under {specs}"]
    assert problems(specs, "../etc")[0].startswith("env: env '../etc' is not a valid name")


def test_a_spec_set_name_must_be_a_valid_name(tmp_path: Path) -> None:
    folder = tmp_path / "My Specs"
    write(folder, "a.yaml", RULE)
    assert "declare one with a 'kind: SpecSet' document" in problems(folder)[0]
    write(folder, "set.yaml", "kind: SpecSet\nname: ops\n")
    assert load_spec_set(folder).name == "ops"


def test_a_single_file_and_a_missing_path(specs: Path) -> None:
    path = write(specs, "one.yaml", "kind: SpecSet\nname: solo\n---\n" + RULE)
    assert load_spec_set(path).name == "solo"
    assert problems(specs / "missing.yaml") == [f"path: {specs / 'missing.yaml'} does not exist"]
    empty = specs / "empty"
    empty.mkdir()
    assert problems(empty) == [f"path: no spec documents (*.yaml) under {empty}"]
