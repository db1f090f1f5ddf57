"""Small synthetic monitoring data for the REST and CLI tests: a baseline Parquet file and
captured traffic written straight into the gateway's capture layout (no model, no
gateway), so a monitor run takes milliseconds."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from slipway.core.queue import WorkState
from slipway.monitoring.spec import QUEUE
from slipway.services import Services
from slipway.serving.gateway.capture import partition_key
from slipway.workers.worker import Worker

# Every captured row lies in this hour; runs name it as their window.
HOUR = datetime(2024, 5, 1, 10, tzinfo=UTC)
WINDOW = {"start": HOUR.isoformat(), "end": (HOUR + timedelta(hours=1)).isoformat()}
PER_REQUEST = 10


def write_baseline(path: Path, rows: int = 2000) -> str:
    """Features ``a`` (normal 0-1) and ``b`` (x, y, z) and a ``score`` prediction column."""
    rng = np.random.default_rng(7)
    table = pa.table(
        {
            "a": rng.normal(0.0, 1.0, rows),
            "b": rng.choice(["x", "y", "z"], rows),
            "score": rng.uniform(0.0, 1.0, rows),
        }
    )
    pq.write_table(table, path)
    return str(path)


def capture(
    services: Services,
    endpoint: str,
    rows: int = 500,
    *,
    shift: float = 0.0,
    seed: int = 3,
    hour: datetime = HOUR,
) -> list[tuple[str, int, float]]:
    """Write ``rows`` captured predictions (requests of :data:`PER_REQUEST` rows) with
    ``a`` shifted by ``shift``, in ``hour`` (default :data:`HOUR`); returns (inference id,
    row, prediction) of each."""
    rng = np.random.default_rng(seed)
    ids = [f"{endpoint}-{seed}-{i // PER_REQUEST}" for i in range(rows)]
    positions = [i % PER_REQUEST for i in range(rows)]
    predictions = rng.uniform(0.0, 1.0, rows)
    features = pa.StructArray.from_arrays(
        [
            pa.array(rng.normal(shift, 1.0, rows)),
            pa.array(rng.choice(["x", "y", "z"], rows)),
        ],
        names=["a", "b"],
    )
    table = pa.table(
        {
            "inference_id": pa.array(ids, pa.string()),
            "row": pa.array(positions, pa.int32()),
            "time": pa.array(
                [hour + timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "config_version": pa.array([1] * rows, pa.int32()),
            "model_name": pa.array(["m"] * rows, pa.string()),
            "model_version": pa.array([1] * rows, pa.int32()),
            "kind": pa.array(["production"] * rows, pa.string()),
            "features": features,
            "prediction": pa.array(predictions, pa.float64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    key = f"{partition_key(endpoint, 'main', hour)}/x-{seed:08d}.parquet"
    services.artifacts.put_bytes(key, sink.getvalue())
    return [(i, r, float(p)) for i, r, p in zip(ids, positions, predictions, strict=True)]


def execute_queued(services: Services) -> int:
    """Run the monitor runs queued so far, as a worker would; returns how many."""
    queued = services.queue.list(queue=QUEUE, state=WorkState.QUEUED)
    if not queued:
        return 0  # a worker's run() would wait for work forever
    return Worker(services, queues=[QUEUE], worker_id="monitor-test").run(max_items=len(queued))
