"""Pipelines and schedules through slipway.Client over HTTP and in process: the same
tests on both (the ``platform`` fixture). A pipeline defined with the DSL is registered
(traced on this side, stored by the control plane without importing it), started, waited
on to Succeeded by ``slipway up``'s workers, and its logs read back; an execution is
cancelled and retried; schedules and event triggers are created, paused, resumed,
updated in place and deleted, and a trigger starts its pipeline from a real event through
``slipway up``'s scheduler; bad input is the same typed error naming the field on both
sides, and writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.logsink import LogLine
from slipway.core.resource import Listing
from slipway.events.resources import Trigger
from slipway.pipelines.definition import define
from slipway.pipelines.dsl import pipeline
from slipway.pipelines.resources import Execution, Pipeline, Schedule, ScheduleSpec, StepRun
from tests.client import flows
from tests.client.conftest import SharedPlatform
from tests.waiting import eventually


def test_register_start_wait_and_read_logs(platform: Any, side: str) -> None:
    name = f"greeting-{side}"
    registered = platform.pipelines.register(pipeline(name=name)(flows.greeting))
    assert isinstance(registered, Pipeline) and registered.name == name
    assert set(registered.graph.steps) == {"greet", "shout"}
    assert registered.graph.parameters["n"].default == 2
    assert platform.pipelines.get(name) == registered
    listed = platform.pipelines.pipelines()
    assert isinstance(listed, Listing) and name in [p.name for p in listed]
    again = platform.pipelines.register(pipeline(name=name)(flows.greeting))
    assert again.digest == registered.digest and again.created_at == registered.created_at

    seen: list[Execution] = []
    execution = platform.pipelines.start(name, {"who": side, "n": 3})
    done = platform.pipelines.wait(execution, timeout=180, progress=seen.append)
    assert isinstance(done, Execution) and done.state == "Succeeded", done
    assert seen and seen[-1] == done  # progress saw each poll, the last one final
    assert [s.name for s in done.steps] == ["greet", "shout", "condition-1"]
    assert all(isinstance(s, StepRun) for s in done.steps)
    assert done.step("shout").outputs is not None
    assert done.parameters == {"who": side, "n": 3}
    assert platform.pipelines.describe(execution) == done
    # Through the API a caller's parameters are confined in the job steps; in process not.
    assert done.confined is (side == "remote")

    logs = platform.pipelines.logs(execution, "greet")
    assert isinstance(logs, Listing) and all(isinstance(line, LogLine) for line in logs)
    assert f"hello {side} x3" in "".join(line.text for line in logs)
    assert platform.pipelines.logs(execution, "greet", after=logs[-1].id) == []

    executions = platform.pipelines.executions(name)
    assert [e.id for e in executions] == [execution]
    assert executions[0].state == "Succeeded" and executions[0].steps == []


def test_cancel_and_retry(platform: Any, side: str) -> None:
    name = f"napping-{side}"
    platform.pipelines.register(pipeline(name=name)(flows.napping))
    execution = platform.pipelines.start(name, {"seconds": 120.0})
    platform.pipelines.cancel(execution)
    cancelled = platform.pipelines.wait(execution, timeout=60)
    assert cancelled.state == "Cancelled" and cancelled.step("nap").state == "Cancelled"
    with pytest.raises(Conflict):
        platform.pipelines.cancel(execution)
    platform.pipelines.retry(execution)
    assert platform.pipelines.describe(execution).state == "Running"
    platform.pipelines.cancel(execution)
    assert platform.pipelines.wait(execution, timeout=60).state == "Cancelled"
    with pytest.raises(NotFound):
        platform.pipelines.retry("no-such-execution")


def test_bad_input_names_the_field_and_writes_nothing(platform: Any, side: str) -> None:
    name = f"strict-{side}"
    platform.pipelines.register(pipeline(name=name)(flows.greeting))
    with pytest.raises(InvalidInput) as wrong_type:
        platform.pipelines.start(name, {"n": "many"})
    assert wrong_type.value.field == "n"
    with pytest.raises(InvalidInput) as unknown:
        platform.pipelines.start(name, {"colour": "red"})
    assert unknown.value.field == "colour"
    assert platform.pipelines.executions(name) == []
    with pytest.raises(NotFound) as missing:
        platform.pipelines.start(f"nowhere-{side}", {})
    assert "not registered" in missing.value.message
    with pytest.raises(NotFound):
        platform.pipelines.describe("no-such-execution")


def test_schedules_create_pause_resume_delete(platform: Any, side: str) -> None:
    flow = f"nightly-flow-{side}"
    platform.pipelines.register(pipeline(name=flow)(flows.greeting))
    name = f"nightly-{side}"
    created = platform.schedules.create(
        name, flow, "0 2 * * *", timezone="Europe/Paris", parameters={"n": 5}
    )
    assert isinstance(created, Schedule)
    assert (created.pipeline, created.enabled, created.parameters) == (flow, True, {"n": 5})
    assert platform.schedules.get(name) == created
    assert name in [s.name for s in platform.schedules.all()]
    paused = platform.schedules.set_enabled(name, False)
    assert paused.enabled is False and platform.schedules.get(name).enabled is False
    assert platform.schedules.set_enabled(name, True).enabled is True
    assert platform.schedules.fires(name) == []
    with pytest.raises(Conflict):
        platform.schedules.create(name, flow, "0 2 * * *")
    platform.schedules.delete(name)
    with pytest.raises(NotFound):
        platform.schedules.get(name)
    with pytest.raises(NotFound):
        platform.schedules.delete(name)


def test_bad_schedules_name_the_field(platform: Any, side: str) -> None:
    flow = f"sched-bad-{side}"
    platform.pipelines.register(pipeline(name=flow)(flows.greeting))
    name = f"bad-{side}"
    with pytest.raises(InvalidInput) as cron:
        platform.schedules.create(name, flow, "every tuesday")
    assert cron.value.field == "cron"
    with pytest.raises(InvalidInput) as catchup:
        platform.schedules.create(name, flow, "* * * * *", catchup="sometimes")
    assert catchup.value.field == "catchup"
    with pytest.raises(InvalidInput) as bad_name:
        platform.schedules.create("Bad Name", flow, "* * * * *")
    assert bad_name.value.field == "name"
    with pytest.raises(InvalidInput) as pipeline_field:
        platform.schedules.create(name, f"nowhere-{side}", "* * * * *")
    assert pipeline_field.value.field == "pipeline"
    assert name not in [s.name for s in platform.schedules.all()]


def test_triggers_create_pause_resume_delete(platform: Any, side: str) -> None:
    flow = f"on-event-flow-{side}"
    platform.pipelines.register(pipeline(name=flow)(flows.greeting))
    name = f"on-ingest-{side}"
    created = platform.triggers.create(
        name,
        flow,
        "feature_group.ingested",
        filters={"resource": f"feature-group/never-{side}"},
        parameter_mapping={"n": "payload.rows"},
        debounce_seconds=30,
    )
    assert isinstance(created, Trigger)
    assert (created.pipeline, created.enabled, created.fired) == (flow, True, 0)
    assert created.parameter_mapping == {"n": "payload.rows"}
    assert created.debounce_seconds == 30.0
    assert platform.triggers.get(name) == created
    listed = platform.triggers.all()
    assert isinstance(listed, Listing) and name in [t.name for t in listed]
    assert platform.triggers.set_enabled(name, False).enabled is False
    assert platform.triggers.get(name).enabled is False
    assert platform.triggers.set_enabled(name, True).enabled is True
    with pytest.raises(Conflict):
        platform.triggers.create(name, flow, "feature_group.ingested")
    platform.triggers.delete(name)
    with pytest.raises(NotFound):
        platform.triggers.get(name)
    with pytest.raises(NotFound):
        platform.triggers.delete(name)


def test_bad_triggers_name_the_field(platform: Any, side: str) -> None:
    flow = f"trig-bad-{side}"
    platform.pipelines.register(pipeline(name=flow)(flows.greeting))
    name = f"trig-bad-{side}"
    with pytest.raises(InvalidInput) as debounce:
        platform.triggers.create(name, flow, "feature_group.ingested", debounce_seconds=-1)
    assert debounce.value.field == "debounce_seconds"
    with pytest.raises(InvalidInput) as bad_name:
        platform.triggers.create("Bad Name", flow, "feature_group.ingested")
    assert bad_name.value.field == "name"
    with pytest.raises(InvalidInput) as event_type:
        platform.triggers.create(name, flow, "")
    assert event_type.value.field == "event_type"
    with pytest.raises(InvalidInput) as pipeline_field:
        platform.triggers.create(name, f"nowhere-{side}", "feature_group.ingested")
    assert pipeline_field.value.field == "pipeline"
    assert name not in [t.name for t in platform.triggers.all()]


def test_schedules_and_triggers_are_updated_in_place(platform: Any, side: str) -> None:
    flow, other = f"upd-flow-{side}", f"upd-other-{side}"
    platform.pipelines.register(pipeline(name=flow)(flows.greeting))
    platform.pipelines.register(pipeline(name=other)(flows.greeting))
    schedule, trigger = f"upd-sched-{side}", f"upd-trig-{side}"
    made = platform.schedules.create(schedule, flow, "0 2 * * *", parameters={"n": 1})
    platform.schedules.set_enabled(schedule, False)
    spec = ScheduleSpec(
        name=schedule,
        pipeline=other,
        cron="15 4 * * 1",
        timezone="Asia/Tokyo",
        parameters={"n": 2},
        catchup="none",
    )
    updated = platform.schedules.update(spec)
    assert isinstance(updated, Schedule)
    assert (updated.pipeline, updated.cron, updated.timezone, updated.catchup) == (
        other,
        "15 4 * * 1",
        "Asia/Tokyo",
        "none",
    )
    assert (updated.parameters, updated.enabled, updated.created_at) == (
        {"n": 2},
        False,
        made.created_at,
    )
    assert updated.next_fire_at != made.next_fire_at
    assert platform.schedules.get(schedule) == updated
    assert platform.schedules.fires(schedule) == []
    assert platform.schedules.update(spec.model_dump()) == updated  # a dict too; idempotent

    platform.triggers.create(trigger, flow, "x.done", debounce_seconds=5)
    platform.triggers.set_enabled(trigger, False)
    changed = platform.triggers.update(
        {
            "name": trigger,
            "pipeline": other,
            "event_type": "y.done",
            "filters": {"resource": "model/fraud"},
            "debounce_seconds": 30,
        }
    )
    assert isinstance(changed, Trigger)
    assert (changed.pipeline, changed.event_type, changed.filters) == (
        other,
        "y.done",
        {"resource": "model/fraud"},
    )
    assert (changed.debounce_seconds, changed.enabled, changed.fired) == (30.0, False, 0)
    assert platform.triggers.get(trigger) == changed


def test_bad_updates_name_the_field_and_change_nothing(platform: Any, side: str) -> None:
    flow = f"upd-bad-{side}"
    platform.pipelines.register(pipeline(name=flow)(flows.greeting))
    schedule, trigger = f"upd-bad-s-{side}", f"upd-bad-t-{side}"
    kept_schedule = platform.schedules.create(schedule, flow, "0 2 * * *")
    kept_trigger = platform.triggers.create(trigger, flow, "x.done")
    good_schedule = {"name": schedule, "pipeline": flow, "cron": "0 3 * * *"}
    good_trigger = {"name": trigger, "pipeline": flow, "event_type": "y.done"}
    schedules: list[tuple[dict[str, Any], str]] = [
        (good_schedule | {"cron": "every tuesday"}, "cron"),
        (good_schedule | {"pipeline": f"nowhere-{side}"}, "pipeline"),
        (good_schedule | {"timezone": "Mars/Olympus"}, "timezone"),
        (good_schedule | {"catchup": "sometimes"}, "catchup"),
        (good_schedule | {"colour": "red"}, "colour"),
    ]
    for spec, field in schedules:
        with pytest.raises(InvalidInput) as bad:
            platform.schedules.update(spec)
        assert bad.value.field == field, (spec, bad.value)
    triggers: list[tuple[dict[str, Any], str]] = [
        (good_trigger | {"pipeline": f"nowhere-{side}"}, "pipeline"),
        (good_trigger | {"event_type": ""}, "event_type"),
        (good_trigger | {"debounce_seconds": -1}, "debounce_seconds"),
        (good_trigger | {"name": "Bad Name"}, "name"),
    ]
    for spec, field in triggers:
        with pytest.raises(InvalidInput) as bad:
            platform.triggers.update(spec)
        assert bad.value.field == field, (spec, bad.value)
    with pytest.raises(NotFound):
        platform.schedules.update(good_schedule | {"name": f"nobody-{side}"})
    with pytest.raises(NotFound):
        platform.triggers.update(good_trigger | {"name": f"nobody-{side}"})
    assert platform.schedules.get(schedule) == kept_schedule
    assert platform.triggers.get(trigger) == kept_trigger


def test_a_put_naming_another_schedule_or_trigger_is_refused(
    shared_platform: SharedPlatform,
) -> None:
    """The REST body may leave the name out or repeat the path's; naming another is a
    400 naming ``name`` (a rename), and nothing changes."""
    services = shared_platform.services
    services.pipelines.register(pipeline(name="put-flow")(flows.greeting))
    kept = services.schedules.create("put-sched", "put-flow", "0 2 * * *")
    services.triggers.create("put-trig", "put-flow", "x.done")
    with shared_platform.client() as client:
        body = {"name": "other", "pipeline": "put-flow", "cron": "0 5 * * *"}
        with pytest.raises(InvalidInput) as renamed:
            client.transport.request("PUT", "/schedules/put-sched", json=body)
        assert renamed.value.field == "name"
        body = {"name": "other", "pipeline": "put-flow", "event_type": "y.done"}
        with pytest.raises(InvalidInput) as renamed:
            client.transport.request("PUT", "/triggers/put-trig", json=body)
        assert renamed.value.field == "name"
        nameless = client.transport.request(
            "PUT", "/schedules/put-sched", json={"pipeline": "put-flow", "cron": "0 5 * * *"}
        )
        assert Schedule.model_validate(nameless.json()).cron == "0 5 * * *"
    assert services.schedules.get("put-sched").created_at == kept.created_at
    assert services.triggers.get("put-trig").event_type == "x.done"
    with pytest.raises(NotFound):
        services.schedules.get("other")


def test_a_trigger_starts_its_pipeline_from_a_real_event(platform: Any, side: str) -> None:
    """A feature group created through this side appends ``feature_group.created``;
    ``slipway up``'s scheduler reads it and starts the pipeline with the event's resource
    as a parameter."""
    flow = f"on-create-flow-{side}"
    platform.pipelines.register(pipeline(name=flow)(flows.greeting))
    group = f"triggered_{side}"
    name = f"on-create-{side}"
    platform.triggers.create(
        name,
        flow,
        "feature_group.created",
        filters={"resource": f"feature-group/{group}"},
        parameter_mapping={"who": "resource"},
    )
    platform.features.create_group(
        {
            "name": group,
            "record_identifiers": [{"name": "k", "type": "string"}],
            "event_time": "t",
            "features": [{"name": "x", "type": "float"}],
        }
    )
    eventually(
        lambda: platform.triggers.get(name).fired == 1,
        what="slipway up's scheduler fires the trigger",
        timeout=60,
        interval=0.2,
    )
    (execution,) = platform.pipelines.executions(flow)
    assert execution.parameters["who"] == f"feature-group/{group}"
    assert execution.trigger["trigger"] == name
    done = platform.pipelines.wait(execution.id, timeout=180)
    assert done.state == "Succeeded", done


def test_a_definition_the_server_cannot_trust_is_refused(shared_platform: SharedPlatform) -> None:
    """The control plane checks a definition sent as data: a step depending on a node
    that does not exist, or a cycle, is a 400 naming the field, and nothing is stored."""
    definition = define(pipeline(name="untrusted")(flows.greeting)).model_dump(mode="json")
    dangling = definition | {
        "graph": definition["graph"] | {"steps": dict(definition["graph"]["steps"])}
    }
    dangling["graph"]["steps"]["shout"] = dangling["graph"]["steps"]["shout"] | {
        "depends_on": ["condition-1", "greet", "ghost"]
    }
    cyclic = definition | {
        "graph": definition["graph"] | {"steps": dict(definition["graph"]["steps"])}
    }
    cyclic["graph"]["steps"]["greet"] = cyclic["graph"]["steps"]["greet"] | {
        "depends_on": ["shout"]
    }
    with shared_platform.client() as client:
        with pytest.raises(InvalidInput) as ghost:
            client.transport.request("PUT", "/pipelines/untrusted", json=dangling)
        assert ghost.value.field == "graph.steps.shout.depends_on"
        with pytest.raises(InvalidInput) as cycle:
            client.transport.request("PUT", "/pipelines/untrusted", json=cyclic)
        assert cycle.value.field == "graph"
        with pytest.raises(InvalidInput) as renamed:
            client.transport.request("PUT", "/pipelines/other-name", json=definition)
        assert renamed.value.field == "name"
        with pytest.raises(NotFound):
            client.pipelines.get("untrusted")
