"""Schedules fire once per tick even with two schedulers; triggers debounce bursts; an
update replaces a schedule's or trigger's definition and keeps its history."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from slipway.core.clock import utcnow
from slipway.core.cron import next_after
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.events.resources import TriggerSpec
from slipway.pipelines.resources import ScheduleSpec
from slipway.pipelines.tables import ExecutionRow
from slipway.services import Services
from tests.pipelines import sample

TICKER = """
import sys, time
from datetime import datetime
from slipway.core.settings import load_settings
from slipway.services import Services
services = Services.open(load_settings(home=sys.argv[1], database={"url": sys.argv[2]}))
now = datetime.fromisoformat(sys.argv[3])
count = 0
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    count += len(services.schedules.tick(now))
print(count)
"""


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    opened = Services.open(load_settings(home=tmp_path / "home", database={"url": database_url}))
    opened.pipelines.register(sample.fan)
    yield opened
    opened.close()


def _executions(services: Services) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(ExecutionRow)) or 0)


def test_cron_next_fire_time_respects_the_time_zone() -> None:
    after = datetime(2024, 3, 9, 12, tzinfo=UTC)
    fire = next_after("0 2 * * *", "America/New_York", after)
    assert fire == datetime(2024, 3, 10, 7, tzinfo=UTC)  # 03:00 EDT (02:00 is skipped)


@pytest.mark.slow
def test_two_schedulers_fire_each_tick_exactly_once(
    services: Services, tmp_path: Path, database_url: str
) -> None:
    start = datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)
    services.schedules.create(
        "every-minute", "fan", "* * * * *", catchup="all", parameters={"n": 2}, start_at=start
    )
    now = start + timedelta(minutes=5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TICKER, str(tmp_path / "home"), database_url, now.isoformat()],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    counts = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sum(counts) == 5, counts
    fires = services.schedules.fires("every-minute")
    assert [f.fire_time for f in fires] == [
        start + timedelta(minutes=m, seconds=30) for m in range(5)
    ]
    assert _executions(services) == 5
    assert services.schedules.tick(now) == []
    row = services.schedules.all()[0]
    assert row.next_fire_at == start + timedelta(minutes=5, seconds=30)


def test_catchup_latest_fires_once_and_bad_input(services: Services) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    services.schedules.create("hourly", "fan", "0 * * * *", catchup="latest", start_at=start)
    fired = services.schedules.tick(start + timedelta(hours=10, minutes=5))
    assert [f.fire_time.hour for f in fired] == [10]
    with pytest.raises(InvalidInput) as info:
        services.schedules.create("bad", "fan", "every tuesday")
    assert info.value.field == "cron"
    with pytest.raises(InvalidInput):
        services.schedules.create("bad", "fan", "* * * * *", timezone="Mars/Olympus")
    with pytest.raises(InvalidInput) as pipeline:
        services.schedules.create("bad", "missing", "* * * * *")
    assert pipeline.value.field == "pipeline"


def test_trigger_debounces_and_maps_parameters(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.triggers.create(
        "on-ingest",
        "fan",
        "feature_group.ingested",
        filters={"resource": "feature-group/weather"},
        parameter_mapping={"n": "payload.rows"},
        debounce_seconds=1.0,
    )
    for rows in (3, 4, 5):
        services.events.append("feature_group.ingested", "feature-group/weather", {"rows": rows})
    services.events.append("feature_group.ingested", "feature-group/planes", {"rows": 9})

    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: results.append(services.triggers.process()))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = [e for batch in results for e in batch]
    assert len(started) == 1  # one per debounce window, however many processors
    described = services.pipelines.describe(started[0])
    assert described.parameters["n"] == 3
    assert described.trigger["trigger"] == "on-ingest"
    # An event past the debounce window: stamped 2 s on by the event log's clock, so the
    # test never waits on time.
    later_clock = datetime.now(UTC) + timedelta(seconds=2)
    monkeypatch.setattr("slipway.core.events.utcnow", lambda: later_clock)
    services.events.append("feature_group.ingested", "feature-group/weather", {"rows": 6})
    later = services.triggers.process()
    assert len(later) == 1
    assert services.pipelines.describe(later[0]).parameters["n"] == 6
    assert services.triggers.process() == []
    assert json.dumps(services.triggers.all()[0].fired) == "2"


def test_a_trigger_never_fires_on_another_workspaces_events(services: Services) -> None:
    """Triggers belong to the default workspace: a feature group of the same name in
    another workspace ingesting is not their event, filter or no filter."""
    services.triggers.create("any-ingest", "fan", "feature_group.ingested")
    services.triggers.create(
        "weather", "fan", "feature_group.ingested", filters={"resource": "feature-group/weather"}
    )
    resource = "workspaces/fraud/feature-group/weather"
    services.events.append("feature_group.ingested", resource, {"rows": 3})
    assert services.triggers.process() == []
    services.events.append("feature_group.ingested", "feature-group/weather", {"rows": 3})
    assert len(services.triggers.process()) == 2


def _audited(services: Services, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.actor, e.resource, e.details) for e in services.audit.list(action=action, limit=10)]


def test_an_updated_schedule_keeps_its_firings_and_enabled_state(services: Services) -> None:
    services.pipelines.register(sample.retrying)
    start = utcnow() - timedelta(hours=3)
    services.schedules.create("hourly", "fan", "0 * * * *", parameters={"n": 2}, start_at=start)
    fired = services.schedules.tick()
    assert len(fired) == 1  # catchup latest: the newest missed tick
    paused = services.schedules.set_enabled("hourly", False)

    spec = ScheduleSpec(
        name="hourly",
        pipeline="retrying",
        cron="30 6 * * *",
        timezone="Europe/Paris",
        parameters={"failures": 0},
        catchup="none",
    )
    before = utcnow()
    updated = services.schedules.update(spec, actor="ops")
    assert (updated.pipeline, updated.cron, updated.timezone, updated.catchup) == (
        "retrying",
        "30 6 * * *",
        "Europe/Paris",
        "none",
    )
    assert updated.parameters == {"failures": 0}
    assert updated.enabled is False  # paused stays paused
    assert updated.last_fired_at == paused.last_fired_at is not None
    assert updated.created_at == paused.created_at
    # The new cron, in the new time zone, from now.
    after = utcnow()
    assert (
        next_after("30 6 * * *", "Europe/Paris", before)
        <= updated.next_fire_at
        <= next_after("30 6 * * *", "Europe/Paris", after)
    )
    assert services.schedules.get("hourly") == updated
    assert [f.execution_id for f in services.schedules.fires("hourly")] == [fired[0].execution_id]
    [(actor, resource, details)] = _audited(services, "schedule.update")
    assert (actor, resource) == ("ops", "schedule/hourly")
    assert details == {
        "pipeline": "retrying",
        "cron": "30 6 * * *",
        "timezone": "Europe/Paris",
        "catchup": "none",
    }

    # The same cron and time zone: the next fire time stays; a future start moves it.
    same = services.schedules.update(
        spec.model_copy(update={"parameters": {"failures": 1}}).model_dump()
    )
    assert same.next_fire_at == updated.next_fire_at and same.parameters == {"failures": 1}
    later = datetime(2100, 1, 1, tzinfo=UTC)
    moved = services.schedules.update(spec.model_copy(update={"start_at": later}))
    assert moved.next_fire_at == next_after("30 6 * * *", "Europe/Paris", later)
    # A start in the past counts from now: it never reaches back to fire missed ticks.
    before = utcnow()
    back = services.schedules.update(spec.model_copy(update={"start_at": start}))
    assert before < back.next_fire_at <= next_after("30 6 * * *", "Europe/Paris", utcnow())
    assert services.schedules.set_enabled("hourly", True).enabled is True
    assert services.schedules.tick() == []


def test_a_bad_schedule_update_names_the_field_and_changes_nothing(services: Services) -> None:
    kept = services.schedules.create("nightly", "fan", "0 2 * * *", parameters={"n": 1})
    good = {"name": "nightly", "pipeline": "fan", "cron": "0 3 * * *"}
    cases: list[tuple[dict[str, Any], str]] = [
        (good | {"cron": "every tuesday"}, "cron"),
        (good | {"pipeline": "missing"}, "pipeline"),
        (good | {"timezone": "Mars/Olympus"}, "timezone"),
        (good | {"catchup": "sometimes"}, "catchup"),
        (good | {"colour": "red"}, "colour"),
        ({k: v for k, v in good.items() if k != "cron"}, "cron"),
        (good | {"name": "Bad Name"}, "name"),
    ]
    for spec, field in cases:
        with pytest.raises(InvalidInput) as bad:
            services.schedules.update(spec)
        assert bad.value.field == field, (spec, bad.value)
    with pytest.raises(NotFound):
        services.schedules.update(good | {"name": "nobody"})
    assert services.schedules.all() == [kept]
    assert _audited(services, "schedule.update") == []


def test_an_updated_trigger_keeps_its_firings_and_enabled_state(services: Services) -> None:
    services.pipelines.register(sample.retrying)
    services.triggers.create(
        "on-ingest",
        "fan",
        "feature_group.ingested",
        parameter_mapping={"n": "payload.rows"},
        debounce_seconds=3600,
    )
    services.events.append("feature_group.ingested", "feature-group/weather", {"rows": 3})
    assert len(services.triggers.process()) == 1
    fired = services.triggers.set_enabled("on-ingest", False)
    assert fired.fired == 1 and fired.last_fired_at is not None

    updated = services.triggers.update(
        TriggerSpec(
            name="on-ingest",
            pipeline="retrying",
            event_type="monitor.violations",
            filters={"resource": "monitor/drift"},
            parameter_mapping={"marker": "resource"},
            debounce_seconds=60.0,
        ),
        actor="ops",
    )
    assert (updated.pipeline, updated.event_type, updated.debounce_seconds) == (
        "retrying",
        "monitor.violations",
        60.0,
    )
    assert updated.filters == {"resource": "monitor/drift"}
    assert updated.parameter_mapping == {"marker": "resource"}
    assert (updated.enabled, updated.fired, updated.last_fired_at) == (
        False,
        1,
        fired.last_fired_at,
    )
    assert services.triggers.get("on-ingest") == updated
    [(actor, resource, details)] = _audited(services, "trigger.update")
    assert (actor, resource) == ("ops", "trigger/on-ingest")
    assert details == {"pipeline": "retrying", "event_type": "monitor.violations"}

    # Enabled again, it fires its new pipeline on its new event, counting on.
    services.triggers.set_enabled("on-ingest", True)
    later_clock = utcnow() + timedelta(hours=2)  # past the old debounce window as well
    services.events.append("feature_group.ingested", "feature-group/weather", {"rows": 4})
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr("slipway.core.events.utcnow", lambda: later_clock)
        services.events.append("monitor.violations", "monitor/drift", {})
    [started] = services.triggers.process()
    described = services.pipelines.describe(started)
    assert described.pipeline == "retrying"
    assert described.parameters["marker"] == "monitor/drift"
    assert services.triggers.get("on-ingest").fired == 2


def test_a_bad_trigger_update_names_the_field_and_changes_nothing(services: Services) -> None:
    kept = services.triggers.create("on-done", "fan", "x.done", debounce_seconds=5)
    good = {"name": "on-done", "pipeline": "fan", "event_type": "y.done"}
    cases: list[tuple[dict[str, Any], str]] = [
        (good | {"pipeline": "missing"}, "pipeline"),
        (good | {"event_type": ""}, "event_type"),
        (good | {"debounce_seconds": -1}, "debounce_seconds"),
        (good | {"filters": "resource=x"}, "filters"),
        (good | {"colour": "red"}, "colour"),
        (good | {"name": "Bad Name"}, "name"),
    ]
    for spec, field in cases:
        with pytest.raises(InvalidInput) as bad:
            services.triggers.update(spec)
        assert bad.value.field == field, (spec, bad.value)
    with pytest.raises(NotFound):
        services.triggers.update(good | {"name": "nobody"})
    assert services.triggers.all() == [kept]
    assert _audited(services, "trigger.update") == []
