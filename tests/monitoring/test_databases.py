"""Monitors on both metadata databases: concurrent schedulers start a tick's run once, a
run reads the window's capture files and ends with its report and events."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slipway.core.settings import load_settings
from slipway.services import Services


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    opened = Services.open(load_settings(home=tmp_path / "home", database={"url": database_url}))
    yield opened
    opened.close()


def _capture(services: Services, hour: datetime, x: np.ndarray) -> None:
    rows = x.size
    table = pa.table(
        {
            "inference_id": [f"id-{i}" for i in range(rows)],
            "row": pa.array(np.zeros(rows, dtype=np.int32)),
            "time": pa.array(
                [hour + timedelta(seconds=i % 3600) for i in range(rows)],
                pa.timestamp("us", tz="UTC"),
            ),
            "config_version": pa.array(np.ones(rows, dtype=np.int32)),
            "model_name": ["m"] * rows,
            "model_version": pa.array(np.ones(rows, dtype=np.int32)),
            "kind": ["production"] * rows,
            "features": pa.StructArray.from_arrays([pa.array(x)], names=["x"]),
            "prediction": pa.array(x * 2),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    key = f"capture/endpoint=scores/variant=main/hour={hour:%Y-%m-%dT%H}/g-00000001.parquet"
    services.artifacts.put_bytes(key, sink.getvalue())


def test_scheduled_run_once_across_schedulers_then_a_report(
    services: Services, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    reference = tmp_path / "reference.parquet"
    base = rng.normal(size=5000)
    pq.write_table(pa.table({"x": base, "prediction": base * 2}), reference)
    services.baselines.create(
        "scores-base", source={"file": str(reference)}, prediction_column="prediction", actor="t"
    )
    services.monitoring.create(
        {
            "name": "scores-hourly",
            "kind": "data_quality",
            "endpoint": "scores",
            "baseline": "scores-base",
            "schedule": "0 * * * *",
        },
        actor="t",
    )
    fire = services.monitoring.get("scores-hourly").next_run_at
    _capture(services, fire - timedelta(hours=1), rng.normal(1.0, size=3000))  # drifted

    started: list[int] = []
    threads = [
        threading.Thread(target=lambda: started.extend(services.monitoring.tick(fire)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(started) == 1
    run = services.monitoring.execute(started[0])
    assert run.state == "completed" and run.status == "violations"
    assert run.rows == 3000
    assert run.window_end == fire
    report = services.monitoring.report(run.id)
    assert report.drifted == ["prediction", "x"]
    events = services.events.read(types=["monitor.run_completed", "monitor.violations"])
    assert [e.type for e in events] == ["monitor.run_completed", "monitor.violations"]
    assert events[1].payload["drifted"] == ["prediction", "x"]
    assert services.monitoring.execute(started[0]) == services.monitoring.get_run(started[0])
