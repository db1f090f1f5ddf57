"""Plan and apply on an embedded platform: create, update field by field, unchanged,
drift, adoption of hand-made resources, ownership between spec sets, pruning, export's
round trip, and nothing applied when any check fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.apply.documents import SpecProblems
from slipway.apply.execute import apply
from slipway.apply.export import export_to
from slipway.apply.plan import plan
from slipway.apply.resources import AppliedRecord, Plan
from slipway.apply.specset import load_spec_set
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.apply.conftest import applied, write

PLATFORM = """
kind: FeatureGroup
name: weather
record_identifiers: [{name: origin}]
features:
  - {name: temp, type: float}
---
kind: Pipeline
name: fan
definition: tests.pipelines.sample:fan
---
kind: Schedule
name: nightly
pipeline: fan
cron: "0 3 * * *"
parameters: {n: 3}
---
kind: Trigger
name: on-ingest
pipeline: fan
event_type: feature_group.ingested
debounce_seconds: 60
---
kind: AlertChannel
name: ops-log
type: log
---
kind: AlertRule
name: drift
event_types: [monitor.violations]
channels: [ops-log]
cooldown_seconds: 600
"""


def without(kind: str) -> str:
    """PLATFORM less its documents of ``kind``."""
    documents = PLATFORM.split("---\n")
    return "---\n".join(d for d in documents if f"kind: {kind}\n" not in d)


def actions(planned: Plan) -> dict[tuple[str, str], str]:
    return {(c.kind, c.name): c.action for c in planned.changes}


@pytest.fixture
def platform_specs(specs: Path) -> Path:
    write(specs, "platform.yaml", PLATFORM)
    return specs


def test_plan_apply_plan(platform_specs: Path, services: Services) -> None:
    first = plan(load_spec_set(platform_specs), services)
    assert first.has_changes
    assert list(actions(first).items()) == [
        (("FeatureGroup", "weather"), "create"),
        (("Pipeline", "fan"), "create"),
        (("Schedule", "nightly"), "create"),
        (("Trigger", "on-ingest"), "create"),
        (("AlertChannel", "ops-log"), "create"),
        (("AlertRule", "drift"), "create"),
    ]
    assert first.changes[0].file == "platform.yaml" and first.changes[0].line == 1
    # Nothing was made by planning.
    assert services.alerts.rules() == [] and services.features.list_groups() == []

    result = apply(first, load_spec_set(platform_specs), services, actor="tests")
    assert result.ok and len(result.done) == 6
    assert services.features.describe("weather").spec.features[0].name == "temp"
    assert services.pipelines.get("fan").target == "tests.pipelines.sample:fan"
    assert services.schedules.get("nightly").parameters == {"n": 3}
    assert services.triggers.get("on-ingest").debounce_seconds == 60
    assert services.alerts.rule("drift").cooldown_seconds == 600
    owned = services.ownership.owned("ops")
    assert [(r.kind, r.name) for r in owned] == sorted(actions(first))
    assert {r.applied_by for r in owned} == {"tests"}

    second = plan(load_spec_set(platform_specs), services)
    assert not second.has_changes
    assert set(actions(second).values()) == {"unchanged"}
    # Applying again changes nothing and writes nothing.
    audit_before = len(services.audit.list(limit=1000))
    again = apply(second, load_spec_set(platform_specs), services, actor="tests")
    assert again.ok and again.done == []
    assert len(services.audit.list(limit=1000)) == audit_before


def test_a_changed_field_is_an_update_of_exactly_that_field(
    platform_specs: Path, services: Services
) -> None:
    applied(platform_specs, services)
    before = services.schedules.get("nightly")
    text = (platform_specs / "platform.yaml").read_text()
    (platform_specs / "platform.yaml").write_text(
        text.replace('cron: "0 3 * * *"', 'cron: "30 2 * * *"').replace(
            "cooldown_seconds: 600", "cooldown_seconds: 900"
        )
    )
    planned = plan(load_spec_set(platform_specs), services)
    updates = {(c.kind, c.name): c for c in planned.changes if c.action == "update"}
    assert set(updates) == {("Schedule", "nightly"), ("AlertRule", "drift")}
    schedule = updates[("Schedule", "nightly")]
    assert [(f.path, f.old, f.new) for f in schedule.fields] == [
        ("cron", "0 3 * * *", "30 2 * * *")
    ]
    assert not schedule.drift and not schedule.adopt
    rule = updates[("AlertRule", "drift")]
    assert [(f.path, f.old, f.new) for f in rule.fields] == [("cooldown_seconds", 600.0, 900.0)]

    applied(platform_specs, services)
    after = services.schedules.get("nightly")
    assert after.cron == "30 2 * * *"
    assert after.created_at == before.created_at  # updated in place, not replaced
    assert services.alerts.rule("drift").cooldown_seconds == 900
    assert not plan(load_spec_set(platform_specs), services).has_changes


def test_a_change_made_outside_apply_shows_as_drift(
    platform_specs: Path, services: Services
) -> None:
    applied(platform_specs, services)
    services.alerts.update_rule(
        "drift", {"event_types": ["monitor.violations"], "channels": ["ops-log"]}, actor="bob"
    )
    planned = plan(load_spec_set(platform_specs), services)
    [change] = [c for c in planned.changes if c.action == "update"]
    assert (change.kind, change.name, change.drift) == ("AlertRule", "drift", True)
    assert [(f.path, f.old, f.new) for f in change.fields] == [("cooldown_seconds", 300.0, 600.0)]
    applied(platform_specs, services)
    assert services.alerts.rule("drift").cooldown_seconds == 600


def test_prune_deletes_only_what_the_spec_set_applied(
    platform_specs: Path, services: Services
) -> None:
    applied(platform_specs, services)
    services.alerts.create_rule(
        {"name": "by-hand", "event_types": ["x.y"], "channels": ["ops-log"]}, actor="bob"
    )
    (platform_specs / "platform.yaml").write_text(PLATFORM.split("---\nkind: Trigger")[0])
    # Trigger, channel and rule are gone from the files.
    kept = plan(load_spec_set(platform_specs), services)
    assert {k: a for k, a in actions(kept).items() if a != "unchanged"} == {
        ("Trigger", "on-ingest"): "kept",
        ("AlertChannel", "ops-log"): "kept",
        ("AlertRule", "drift"): "kept",
    }
    assert not kept.has_changes  # without --prune, nothing to do

    pruned = plan(load_spec_set(platform_specs), services, prune=True)
    deletes = [(c.kind, c.name) for c in pruned.changes if c.action == "delete"]
    # Dependants first: the rule before the channel it sends to.
    assert deletes == [
        ("AlertRule", "drift"),
        ("AlertChannel", "ops-log"),
        ("Trigger", "on-ingest"),
    ]
    # The hand-made rule still sends to ops-log: the platform refuses to delete the
    # channel, apply stops there and says what it had done.
    result = apply(pruned, load_spec_set(platform_specs), services, actor="tests")
    assert not result.ok and result.failed is not None
    assert (result.failed.kind, result.failed.name) == ("AlertChannel", "ops-log")
    assert [(c.kind, c.name) for c in result.done] == [("AlertRule", "drift")]
    services.alerts.delete_rule("by-hand", actor="bob")
    applied(platform_specs, services, prune=True)
    assert [c.name for c in services.alerts.channels()] == []
    with pytest.raises(Exception, match="on-ingest"):
        services.triggers.get("on-ingest")
    assert {(r.kind, r.name) for r in services.ownership.owned()} == {
        ("FeatureGroup", "weather"),
        ("Pipeline", "fan"),
        ("Schedule", "nightly"),
    }


def test_a_hand_made_resource_is_never_pruned(platform_specs: Path, services: Services) -> None:
    applied(platform_specs, services)
    services.alerts.create_channel("by-hand", "log", {}, actor="bob")
    planned = plan(load_spec_set(platform_specs), services, prune=True)
    assert ("AlertChannel", "by-hand") not in actions(planned)
    applied(platform_specs, services, prune=True)
    assert services.alerts.channel("by-hand").created_by == "bob"


def test_a_declared_hand_made_resource_is_adopted(platform_specs: Path, services: Services) -> None:
    services.alerts.create_channel("ops-log", "log", {}, actor="bob")
    planned = plan(load_spec_set(platform_specs), services)
    change = next(c for c in planned.changes if c.name == "ops-log")
    assert (change.action, change.adopt) == ("unchanged", True)
    applied(platform_specs, services)
    assert services.alerts.channel("ops-log").created_by == "bob"  # not re-created
    assert ("AlertChannel", "ops-log") in {(r.kind, r.name) for r in services.ownership.owned()}
    assert not plan(load_spec_set(platform_specs), services).has_changes


def test_a_resource_of_another_spec_set_is_refused(
    platform_specs: Path, services: Services
) -> None:
    services.alerts.create_channel("ops-log", "log", {}, actor="bob")
    services.ownership.record(
        "AlertChannel", "ops-log", AppliedRecord(spec_set="billing", digest="0" * 64)
    )
    with pytest.raises(SpecProblems) as caught:
        plan(load_spec_set(platform_specs), services)
    [problem] = caught.value.problems
    assert str(problem).startswith(
        "platform.yaml:23: name: AlertChannel 'ops-log' is owned by spec set 'billing'"
    )


def test_a_resource_deleted_by_hand_is_recreated_or_forgotten(
    platform_specs: Path, services: Services
) -> None:
    applied(platform_specs, services)
    services.triggers.delete("on-ingest", actor="bob")
    assert actions(plan(load_spec_set(platform_specs), services))[("Trigger", "on-ingest")] == (
        "create"
    )
    (platform_specs / "platform.yaml").write_text(without("Trigger"))
    planned = plan(load_spec_set(platform_specs), services)
    assert actions(planned)[("Trigger", "on-ingest")] == "forget"
    applied(platform_specs, services)
    assert ("Trigger", "on-ingest") not in {(r.kind, r.name) for r in services.ownership.owned()}


def test_a_webhook_path_the_platform_hides_still_plans_as_a_change(
    specs: Path, tmp_path: Path
) -> None:
    settings = load_settings(home=tmp_path / "hooks", alerts={"allowed_hosts": ["127.0.0.1"]})
    services = Services.open(settings)
    try:
        hook = "kind: AlertChannel\nname: hook\ntype: webhook\nconfig: {url: 'http://127.0.0.1:9/%s'}\n"
        write(specs, "hook.yaml", hook % "secret-1")
        applied(specs, services)
        assert services.alerts.channel("hook").config["url"] == "http://127.0.0.1:9/***"
        assert not plan(load_spec_set(specs), services).has_changes
        write(specs, "hook.yaml", hook % "secret-2")
        [change] = plan(load_spec_set(specs), services).changes
        assert change.action == "update"
        assert [(f.path, f.old, f.new) for f in change.fields] == [
            ("config", "(hidden)", "(hidden)")
        ]
        applied(specs, services)
        assert not plan(load_spec_set(specs), services).has_changes
    finally:
        services.close()


def test_nothing_is_applied_when_any_check_fails(platform_specs: Path, services: Services) -> None:
    write(
        platform_specs,
        "broken.yaml",
        """
        kind: Schedule
        name: orphan
        pipeline: no-such-pipeline
        cron: "0 * * * *"
        ---
        kind: AlertRule
        name: loud
        event_types: [x.y]
        channels: [ops-log, nowhere]
        """,
    )
    with pytest.raises(SpecProblems) as caught:
        plan(load_spec_set(platform_specs), services)
    assert [str(p) for p in caught.value.problems] == [
        "broken.yaml:3: pipeline: Pipeline 'no-such-pipeline' is neither declared in the spec"
        " files nor on the platform",
        "broken.yaml:9: channels.1: AlertChannel 'nowhere' is neither declared in the spec files"
        " nor on the platform",
    ]
    assert services.alerts.channels() == [] and services.ownership.owned() == []


def test_an_incompatible_feature_group_change_is_refused_at_plan_time(
    platform_specs: Path, services: Services
) -> None:
    applied(platform_specs, services)
    text = (platform_specs / "platform.yaml").read_text()
    (platform_specs / "platform.yaml").write_text(
        text.replace("{name: temp, type: float}", "{name: temp, type: string}").replace(
            "cooldown_seconds: 600", "cooldown_seconds: 60"
        )
    )
    with pytest.raises(SpecProblems) as caught:
        plan(load_spec_set(platform_specs), services)
    assert "feature 'temp' is float" in str(caught.value.problems[0])
    assert services.alerts.rule("drift").cooldown_seconds == 600  # nothing applied


def test_export_round_trips(platform_specs: Path, services: Services, tmp_path: Path) -> None:
    applied(platform_specs, services)
    written = export_to(services, tmp_path / "exported", spec_set="ops")
    assert sorted(p.name for p in written) == [
        "alert-channels.yaml",
        "alert-rules.yaml",
        "feature-groups.yaml",
        "pipelines.yaml",
        "schedules.yaml",
        "spec-set.yaml",
        "triggers.yaml",
    ]
    assert (
        "definition: tests.pipelines.sample:fan"
        in (tmp_path / "exported/pipelines.yaml").read_text()
    )
    exported = load_spec_set(tmp_path / "exported")
    assert exported.name == "ops"
    planned = plan(exported, services)
    assert not planned.has_changes, [c for c in planned.changes if c.action != "unchanged"]
