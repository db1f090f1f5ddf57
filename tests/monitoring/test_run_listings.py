"""Reads of monitor runs that lists (the console's) need, on both engines: a page of a
monitor's runs, their count, and each monitor's newest run (and newest completed run)
in one query. Traffic is written straight into the capture layout, so runs take
milliseconds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from slipway.core.errors import NotFound
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.monitoring.synthetic import HOUR, capture, execute_queued, write_baseline


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home",
        database={"url": database_url},
        data={"allowed_roots": [str(tmp_path)]},
    )
    opened = Services.open(settings)
    opened.baselines.create(
        "base",
        source={"file": write_baseline(tmp_path / "baseline.parquet")},
        prediction_column="score",
        actor="t",
    )
    for name in ("dq", "other", "idle"):
        opened.monitoring.create(
            {"name": name, "kind": "data_quality", "endpoint": "shop", "baseline": "base"},
            actor="t",
        )
    yield opened
    opened.close()


def _queue(services: Services, monitor: str, count: int) -> list[int]:
    end = HOUR + timedelta(hours=1)
    return [
        services.monitoring.run(monitor, actor="t", start=HOUR, end=end).id for _ in range(count)
    ]


def test_runs_are_paged_newest_first_and_counted(services: Services) -> None:
    ids = _queue(services, "dq", 7)
    _queue(services, "other", 2)
    newest_first = ids[::-1]
    assert [r.id for r in services.monitoring.runs("dq", limit=3)] == newest_first[:3]
    assert [r.id for r in services.monitoring.runs("dq", limit=3, offset=3)] == newest_first[3:6]
    assert [r.id for r in services.monitoring.runs("dq", limit=3, offset=6)] == newest_first[6:]
    assert list(services.monitoring.runs("dq", offset=7)) == []
    assert services.monitoring.count_runs("dq") == 7
    assert services.monitoring.count_runs("idle") == 0
    with pytest.raises(NotFound):
        services.monitoring.count_runs("nope")


def test_latest_runs_give_each_monitors_newest_and_newest_completed(services: Services) -> None:
    capture(services, "shop")
    [done] = _queue(services, "dq", 1)
    assert execute_queued(services) == 1
    [queued] = _queue(services, "dq", 1)  # newer, not run yet
    [other] = _queue(services, "other", 1)

    latest = services.monitoring.latest_runs()
    assert {name: run.id for name, run in latest.items()} == {"dq": queued, "other": other}
    assert latest["dq"].state == "queued"
    completed = services.monitoring.latest_runs(completed=True)
    assert {name: run.id for name, run in completed.items()} == {"dq": done}
    assert completed["dq"].status == "no_violations" and completed["dq"].rows == 500
    # Another workspace's monitors are not this one's.
    services.workspaces.create("team", actor="t")
    assert services.monitoring.in_workspace("team").latest_runs() == {}
