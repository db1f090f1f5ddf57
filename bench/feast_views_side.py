"""Feast's side of bench/feature_views.py (runs in bench/.venv-feast, local provider,
DuckDB offline store, SQLite or Redis online store).

Usage: feast_views_side.py COMMAND DATA_DIR [ARGS...]; results as tagged JSON lines.

What Feast 0.67 can express, read in its source (feast/aggregation/__init__.py,
on_demand_feature_view.py, infra/compute_engines/): ``Aggregation(column, function,
time_window)`` is accepted by stream, batch and on-demand feature views, but

- an on-demand feature view applies its ``aggregations`` only when read online, as a
  group-by over the rows of that response, and refuses a ``time_window`` ("Time window
  aggregation is not supported in online serving"); at historical retrieval an on-demand
  view runs its transformation (a UDF), so aggregations alone fail there;
- batch and stream feature views' aggregations are computed by a compute engine when
  materializing; the local engine refuses time windows ("not supported in the local
  compute engine"); Spark and Ray tile them (sawtooth windows, hop 5 min by default),
  which is approximate, and ``get_historical_features`` on the DuckDB offline store reads
  the view's source as it is.

So a Feast user precomputes windows in a batch job and registers the result as a feature
view, whose ``get_historical_features`` is a point-in-time join (the latest row at or
before each entity row's time, within the view's TTL). For the values to be the windows
at any time, the job writes a row wherever a window's value changes (an event enters; it
leaves a window 1 µs after the window's length): the ``txn_windows`` view. The common
shortcut, one row per event (``txn_per_event``), misses the events that left a window
after the key's last event. Online, the precomputed windows are written to the online
store as of the read time, and an on-demand feature view (python mode, the fastest for
one row) computes the two row-level transformations over them and a request field.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast import (
    Entity,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    ValueType,
)
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, measure_calls, peak_rss_mb, timed
from feast_side import config_yaml, guard_duckdb

# As in bench/feature_views.py (which this process cannot import: another virtualenv).
LABELS = ["1h", "24h", "7d"]
COLUMNS = [c for d in LABELS for c in (f"txn_count_{d}", f"amount_mean_{d}")]
COUNTS = [f"txn_count_{d}" for d in LABELS]
ONLINE_WINDOWS = ["txn_count_1h", "txn_count_24h", "amount_mean_7d"]
DERIVED = ["share_1h", "amount_vs_mean"]
SEED = 23
RUNS = 3
SLOW_SECONDS = 60.0
ONLINE_CALLS, ONLINE_WARMUP = 10_000, 1_000
# Longer than the longest window: a key whose last change is older has empty windows
# (counts 0, means null), which the TTL's null gives for the means; counts are filled.
TTL = timedelta(days=8)


def repo(data: Path, store: str) -> Path:
    return data.resolve() / f"feast-{store}"


def definitions(data: Path) -> list[Any]:
    data = data.resolve()
    entity = Entity(name="entity_id", join_keys=["entity_id"], value_type=ValueType.INT64)
    schema = [Field(name=c, dtype=Int64 if c.startswith("txn_count") else Float64) for c in COLUMNS]
    windows = FeatureView(
        name="txn_windows",
        entities=[entity],
        ttl=TTL,
        schema=schema,
        source=FileSource(
            name="txn_points",
            path=str(data / "feast_points.parquet"),
            timestamp_field="point_time",
        ),
        online=True,
    )
    per_event = FeatureView(
        name="txn_per_event",
        entities=[entity],
        ttl=TTL,
        schema=schema,
        source=FileSource(
            name="txn_per_event_source",
            path=str(data / "feast_per_event.parquet"),
            timestamp_field="point_time",
        ),
        online=False,
    )
    request = RequestSource(name="txn_request", schema=[Field(name="amount", dtype=Float64)])

    @on_demand_feature_view(
        sources=[windows[ONLINE_WINDOWS], request],
        schema=[Field(name=name, dtype=Float64) for name in DERIVED],
        mode="python",
    )
    def txn_derived(inputs: dict[str, Any]) -> dict[str, Any]:
        share, versus = [], []
        for c1, c24, mean, amount in zip(
            inputs["txn_count_1h"],
            inputs["txn_count_24h"],
            inputs["amount_mean_7d"],
            inputs["amount"],
            strict=True,
        ):
            share.append(None if c1 is None or c24 is None else c1 / max(c24, 1))
            if mean is None or amount is None or mean == 0:
                versus.append(None)
            else:
                versus.append(min(max(amount / mean, 0.0), 100.0))
        return {"share_1h": share, "amount_vs_mean": versus}

    return [entity, windows, per_event, request, txn_derived]


def setup(data: str, store: str, online: str) -> None:
    path = repo(Path(data), store)
    path.mkdir(parents=True, exist_ok=True)
    for stale in ("registry.db", "online.db"):
        (path / stale).unlink(missing_ok=True)
    (path / "feature_store.yaml").write_text(config_yaml(path, "duckdb", online))
    FeatureStore(repo_path=str(path)).apply(definitions(Path(data)))


def training(data: str, which: str) -> None:
    """get_historical_features over the precomputed rows (``points`` or ``per_event``)."""
    guard_duckdb()
    store = FeatureStore(repo_path=str(repo(Path(data), "sqlite")))
    view = "txn_windows" if which == "points" else "txn_per_event"
    entities = pq.read_table(Path(data) / "entities.parquet").to_pandas()
    entities["row_id"] = range(len(entities))  # to put Feast's answer in entity row order
    features = [f"{view}:{c}" for c in COLUMNS]

    def run() -> pa.Table:
        table = store.get_historical_features(entity_df=entities, features=features).to_arrow()
        for name in COUNTS:  # a row past the TTL has empty windows: a count of 0
            index = table.column_names.index(name)
            table = table.set_column(index, name, pc.fill_null(table.column(name), 0))
        return table

    before = peak_rss_mb()
    # As bench/feature_views.py's median_runs: the first call warms up, unless it took
    # longer than SLOW_SECONDS: then it is the only measurement.
    first, result = timed(run)
    runs = [first]
    if first <= SLOW_SECONDS:
        runs = []
        for _ in range(RUNS):
            seconds, result = timed(run)
            runs.append(seconds)
    emit(
        {
            "bench": "training",
            "side": f"feast-{which}",
            "seconds": statistics.median(runs),
            "runs": runs,
            "rows": result.num_rows,
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": before,
        }
    )
    ordered = result.take(pc.sort_indices(result.column("row_id")))
    pq.write_table(ordered.select(COLUMNS), Path(data) / f"out-feast-{which}.parquet")


def online(data: str, kind: str) -> None:
    """The windows as of END into the online store, then one-entity reads of them and of
    the on-demand view."""
    guard_duckdb()
    store = FeatureStore(repo_path=str(repo(Path(data), kind)))
    points = pq.read_table(
        Path(data) / "feast_points.parquet", columns=["entity_id", "point_time", *COLUMNS]
    )
    # Per key, its latest change at or before END (the file is sorted by time).
    frame = points.to_pandas().drop_duplicates("entity_id", keep="last")
    seconds, _ = timed(lambda: store.write_to_online_store("txn_windows", frame))
    emit({"bench": "write_online", "store": kind, "rows": len(frame), "seconds": seconds})
    recent = pq.read_table(Path(data) / "recent_events.parquet", columns=["entity_id"])
    keys = sorted(set(recent.column("entity_id").to_pylist()))
    rng = random.Random(SEED)  # the same rows as Slipway's reads
    rows = [
        [{"entity_id": rng.choice(keys), "amount": round(rng.uniform(1, 200), 2)}]
        for _ in range(ONLINE_CALLS + ONLINE_WARMUP)
    ]
    features = [f"txn_windows:{c}" for c in ONLINE_WINDOWS] + [f"txn_derived:{c}" for c in DERIVED]
    for label, wanted in (
        ("get_online_features: 3 precomputed windows + on-demand view (python)", features),
        (
            "get_online_features: the 3 precomputed windows only",
            features[: len(ONLINE_WINDOWS)],
        ),
    ):
        stats = measure_calls(
            lambda i, wanted=wanted: store.get_online_features(
                features=wanted, entity_rows=rows[i]
            ).to_dict(),
            ONLINE_CALLS,
            ONLINE_WARMUP,
        )
        emit({"bench": "online", "side": "feast", "store": kind, "path": label, **stats})
    values = []
    for row in rows[:200]:
        answer = store.get_online_features(features=features, entity_rows=row).to_dict()
        values.append({name: answer[name][0] for name in ONLINE_WINDOWS + DERIVED})
    (Path(data) / f"online-feast-{kind}.json").write_text(json.dumps({"online": values}))


COMMANDS: dict[str, Any] = {"setup": setup, "training": training, "online": online}


def main() -> None:
    COMMANDS[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
