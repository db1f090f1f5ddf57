"""Pipelines, executions, schedules and triggers of two workspaces under the same names:
each workspace registers, runs, lists and reads its own, its steps run as that workspace
(the platform they open, their MLflow workspace, their outputs' share of the artifact
root) and reuse only its own cached outputs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slipway.core.clock import utcnow
from slipway.core.errors import NotFound
from slipway.services import Services
from tests.pipelines import sample

TEAM = "team-b"


@pytest.fixture
def team(services: Services) -> Services:
    services.workspaces.create(TEAM, actor="test")
    return services.in_workspace(TEAM)


def test_the_same_pipeline_name_runs_apart_in_each_workspace(
    services: Services, team: Services, workers: None
) -> None:
    services.pipelines.register(sample.fan)
    team.pipelines.register(sample.fan)
    assert [p.name for p in team.pipelines.pipelines()] == ["fan"]
    ours = services.pipelines.wait(services.pipelines.start("fan", {"n": 3}), timeout=120)
    theirs = team.pipelines.wait(team.pipelines.start("fan", {"n": 3}), timeout=120)
    assert ours.state == theirs.state == "Succeeded"
    # The same inputs, but another workspace's outputs are not this one's cache.
    assert "Cached" not in {s.state for s in theirs.steps}
    again = team.pipelines.wait(team.pipelines.start("fan", {"n": 3}), timeout=120)
    assert {s.cached_from for s in again.steps if s.state == "Cached"} == {theirs.id}
    keys = [s.outputs["key"] for s in theirs.steps if s.outputs and "key" in s.outputs]
    assert keys and all(k.startswith(f"workspaces/{TEAM}/pipelines/objects/") for k in keys)
    ours_keys = [s.outputs["key"] for s in ours.steps if s.outputs and "key" in s.outputs]
    assert ours_keys and all(k.startswith("pipelines/objects/") for k in ours_keys)
    assert [e.id for e in team.pipelines.executions()] == [again.id, theirs.id]
    assert theirs.id not in [e.id for e in services.pipelines.executions()]
    for read in (
        services.pipelines.describe,
        services.pipelines.cancel,
        services.pipelines.retry,
        services.pipelines.logs,
    ):
        with pytest.raises(NotFound):
            read(theirs.id)
    resources = {e.resource for e in services.audit.list(action="pipeline.start", limit=50)}
    assert {"pipeline/fan", f"workspaces/{TEAM}/pipeline/fan"} <= resources


def test_a_step_runs_as_its_executions_workspace(
    services: Services, team: Services, workers: None
) -> None:
    features = [{"name": "v", "type": "float"}]
    team.features.create_group(
        {"name": "theirs", "record_identifiers": [{"name": "k"}], "features": features}
    )
    for platform in (services, team):
        platform.pipelines.register(sample.whereami_pipeline)
    seen = {}
    for name, platform in (("default", services), (TEAM, team)):
        done = platform.pipelines.wait(platform.pipelines.start("whereami"), timeout=120)
        assert done.state == "Succeeded", done
        seen[name] = done.steps[0].outputs["value"]
    assert seen[TEAM] == {"env": TEAM, "mlflow": TEAM, "platform": TEAM, "groups": ["theirs"]}
    assert seen["default"]["platform"] == "default" and seen["default"]["groups"] == []


def test_schedules_and_triggers_start_their_own_workspaces_pipelines(
    services: Services, team: Services
) -> None:
    for platform in (services, team):
        platform.pipelines.register(sample.fan)
    start = utcnow() - timedelta(hours=1)
    for platform in (services, team):
        platform.schedules.create("hourly", "fan", "0 * * * *", start_at=start, actor="t")
    fired = services.schedules.tick()  # the scheduler fires every workspace's
    assert len(fired) == 2
    assert len(team.schedules.fires("hourly")) == len(services.schedules.fires("hourly")) == 1
    assert [s.name for s in team.schedules.all()] == ["hourly"]
    assert len(team.pipelines.executions()) == len(services.pipelines.executions()) == 1
    with pytest.raises(NotFound):
        team.schedules.get("nope")

    # A trigger names resources as its workspace does, and hears its workspace only.
    for platform in (services, team):
        platform.triggers.create(
            "on-ingest",
            "fan",
            "feature_group.ingested",
            filters={"resource": "feature-group/weather"},
            parameter_mapping={"n": "payload.rows"},
        )
    services.events.append(
        "feature_group.ingested", f"workspaces/{TEAM}/feature-group/weather", {"rows": 2}
    )
    started = services.triggers.process()
    assert len(started) == 1
    described = team.pipelines.describe(started[0])
    assert described.parameters["n"] == 2 and described.trigger["trigger"] == "on-ingest"
    with pytest.raises(NotFound):
        services.pipelines.describe(started[0])
    assert [t.name for t in team.triggers.all()] == ["on-ingest"]
