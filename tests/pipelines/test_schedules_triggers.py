"""Schedules fire once per tick even with two schedulers; triggers debounce bursts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from slipway.core.cron import next_after
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
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
    with pytest.raises(NotFound):
        services.schedules.create("bad", "missing", "* * * * *")


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
