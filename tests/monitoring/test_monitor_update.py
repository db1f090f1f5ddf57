"""Replacing a monitor's spec in place (what a declarative apply does), on both engines:
the new spec is stored and used, its runs, enabled state and last status stay, its next
scheduled run follows a changed schedule; a bad spec, a changed kind or an unknown
monitor is refused naming the field and changes nothing. Traffic is written straight into
the capture layout, so runs take milliseconds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slipway.core.clock import utcnow
from slipway.core.cron import next_after
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.monitoring.spec import MonitorSpec
from slipway.services import Services
from tests.monitoring.synthetic import HOUR, capture, execute_queued, write_baseline

END = HOUR + timedelta(hours=1)
MONITOR: dict[str, Any] = {
    "name": "dq",
    "kind": "data_quality",
    "endpoint": "shop",
    "baseline": "base",
    "schedule": "0 * * * *",
}


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home",
        database={"url": database_url},
        data={"allowed_roots": [str(tmp_path)]},
    )
    opened = Services.open(settings)
    data = write_baseline(tmp_path / "baseline.parquet")
    for name in ("base", "base2"):
        opened.baselines.create(name, source={"file": data}, prediction_column="score", actor="t")
    opened.monitoring.create(MONITOR, actor="t")
    yield opened
    opened.close()


def _updates(services: Services) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e.resource, e.payload)
        for e in services.events.read(types=["monitor.updated"], resource="monitor/dq")
    ]


def _audited(services: Services) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.actor, e.resource, e.details)
        for e in services.audit.list(action="monitor.update", limit=10)
    ]


def test_an_updated_monitor_keeps_its_runs_and_enabled_state(services: Services) -> None:
    capture(services, "shop", shift=3.0)
    services.monitoring.run("dq", actor="t", start=HOUR, end=END)
    assert execute_queued(services) == 1
    before = services.monitoring.set_enabled("dq", False, actor="t")
    assert (before.runs, before.last_status) == (1, "violations")
    [run] = services.monitoring.runs("dq")

    spec = MonitorSpec.model_validate(
        MONITOR
        | {
            "baseline": "base2",
            "schedule": "30 6 * * *",
            "timezone": "Europe/Paris",
            "window_hours": 2,
            "drift": {"a": {"method": "ks_statistic", "threshold": 5}},
            "description": "watched by ops",
        }
    )
    moment = utcnow()
    updated = services.monitoring.update(spec, actor="ops")
    assert updated.spec == spec and updated.spec.baseline == "base2"
    assert (updated.schedule, updated.timezone) == ("30 6 * * *", "Europe/Paris")
    assert updated.next_run_at is not None
    assert (
        next_after("30 6 * * *", "Europe/Paris", moment)
        <= updated.next_run_at
        <= next_after("30 6 * * *", "Europe/Paris", utcnow())
    )
    # What the monitor did and how it stands stay.
    assert (updated.enabled, updated.runs, updated.last_status) == (False, 1, "violations")
    assert (updated.created_by, updated.created_at) == (before.created_by, before.created_at)
    assert updated.updated_at > before.updated_at
    assert services.monitoring.get("dq") == updated
    assert list(services.monitoring.runs("dq")) == [run]
    assert services.monitoring.report(run.id).drifted == ["a"]
    assert _updates(services) == [
        (
            "monitor/dq",
            {"monitor": "dq", "kind": "data_quality", "endpoint": "shop", "by": "ops"},
        )
    ]
    [(actor, resource, details)] = _audited(services)
    assert (actor, resource, details) == (
        "ops",
        "monitor/dq",
        {"kind": "data_quality", "endpoint": "shop"},
    )

    # The new spec is the one used: base2 is in use, base is free, and a run reads the
    # new drift rule (a KS statistic never passes 5: a is no longer drifted, though its
    # values are still out of the baseline's range).
    with pytest.raises(Conflict):
        services.baselines.delete("base2")
    services.baselines.delete("base")
    services.monitoring.run("dq", actor="t", start=HOUR, end=END)
    assert execute_queued(services) == 1
    newest = services.monitoring.runs("dq")[0]
    report = services.monitoring.report(newest.id)
    assert report.drifted == [], report.violations

    # The same schedule: the next run stays; none left: run on demand only.
    again = services.monitoring.update(spec.model_dump() | {"description": "again"}, actor="t")
    assert again.next_run_at == updated.next_run_at and again.spec.description == "again"
    on_demand = services.monitoring.update(spec.model_dump() | {"schedule": None}, actor="t")
    assert (on_demand.schedule, on_demand.next_run_at) == (None, None)
    assert services.monitoring.tick(utcnow() + timedelta(days=2)) == []


BAD_UPDATES: list[tuple[dict[str, Any], str]] = [
    ({"kind": "model_quality", "model_quality": {"problem_type": "regression"}}, "kind"),
    ({"baseline": "nowhere"}, "baseline"),
    ({"drift": {"nope": {"method": "psi"}}}, "drift.nope"),
    ({"drift": {"b": {"method": "ks_statistic"}}}, "drift.b.method"),
    ({"window_hours": -1}, "window_hours"),
    ({"schedule": "every hour"}, "schedule"),
    ({"endpoint": "Not An Endpoint"}, "endpoint"),
    ({"colour": "red"}, "colour"),
]


def test_a_bad_update_names_the_field_and_changes_nothing(services: Services) -> None:
    before = services.monitoring.get("dq")
    for change, field in BAD_UPDATES:
        with pytest.raises(InvalidInput) as bad:
            services.monitoring.update(MONITOR | change, actor="t")
        assert bad.value.field == field, (change, bad.value)
    with pytest.raises(NotFound):
        services.monitoring.update(MONITOR | {"name": "nobody"}, actor="t")
    assert list(services.monitoring.list()) == [before]
    assert _updates(services) == [] and _audited(services) == []
