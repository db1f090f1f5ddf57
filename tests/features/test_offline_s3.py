"""The offline feature store with its Delta tables on S3 (the local S3 test server).

The same code paths as on a local folder — delta-rs writes and reads through its object
store, DuckDB scans the Arrow datasets delta-rs hands it — so what is checked here is that
they hold on an object store: one commit per ingest, time travel, point-in-time joins,
SQL, and deletes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import s3fs

from slipway.core.settings import load_settings
from slipway.features.store import FeatureStore
from slipway.services import Services

pytestmark = pytest.mark.s3


def t(hour: int) -> datetime:
    return datetime(2024, 3, 1, hour, tzinfo=UTC)


@pytest.fixture
def fs(tmp_path: Path, s3_root: str) -> Iterator[FeatureStore]:
    services = Services.open(load_settings(home=tmp_path / "home", artifacts={"root": s3_root}))
    yield services.features
    services.close()


def test_offline_group_on_s3(fs: FeatureStore, s3_root: str) -> None:
    fs.create_group(
        {
            "name": "weather",
            "record_identifiers": [{"name": "origin"}],
            "event_time": "time_hour",
            "features": [{"name": "temp", "type": "float"}, {"name": "wind", "type": "int"}],
            "online": False,
        }
    )
    fs.ingest(
        "weather",
        [
            {"origin": "JFK", "time_hour": t(1), "temp": 1.0, "wind": 10},
            {"origin": "LGA", "time_hour": t(1), "temp": 2.0, "wind": 20},
        ],
    )
    fs.ingest("weather", [{"origin": "JFK", "time_hour": t(3), "temp": 3.0, "wind": 30}])

    # The Delta log is on S3, one commit per ingest.
    objects = s3fs.S3FileSystem(skip_instance_cache=True).find(s3_root.removeprefix("s3://"))
    commits = sorted(o.rsplit("/", 1)[1] for o in objects if "/weather/_delta_log/" in o)
    assert [c for c in commits if c.endswith(".json")][-1] == f"{1:020d}.json"

    assert fs.read_offline("weather").num_rows == 3
    assert fs.read_offline("weather", version=0).num_rows == 2

    entities = pd.DataFrame(
        {
            "origin": ["JFK", "JFK", "LGA", "EWR"],
            "event_timestamp": [t(2), t(4), t(5), t(5)],
            "label": [0, 1, 0, 1],
        }
    )
    result = fs.training_set(entities, ["weather:temp", "weather:wind"])
    assert result.data.column("temp").to_pylist() == [1.0, 3.0, 2.0, None]
    assert result.data.column("label").to_pylist() == [0, 1, 0, 1]
    assert result.definition.group_versions == {"weather": 1}
    pinned = fs.training_set(entities, ["weather:temp"], versions={"weather": 0})
    assert pinned.data.column("temp").to_pylist() == [1.0, 1.0, 2.0, None]

    total = fs.query("SELECT origin, count(*) AS n FROM weather GROUP BY origin ORDER BY origin")
    assert total.to_pylist() == [{"origin": "JFK", "n": 2}, {"origin": "LGA", "n": 1}]

    assert fs.delete_records("weather", ["JFK"], actor="test").offline_rows_deleted == 2
    assert fs.read_offline("weather").column("origin").to_pylist() == ["LGA"]
    # Time travel still reaches the data from before the delete.
    assert fs.read_offline("weather", version=1).num_rows == 3


def test_concurrent_ingests_on_s3_lose_no_commit(fs: FeatureStore) -> None:
    """Two writers committing to one Delta table on S3 at once: every commit lands (a
    commit that finds its version taken retries on the next), none overwrites another."""
    fs.create_group(
        {
            "name": "busy",
            "record_identifiers": [{"name": "k", "type": "int"}],
            "features": [{"name": "v", "type": "int"}],
            "online": False,
        }
    )

    def writer(base: int) -> None:
        for i in range(6):
            fs.ingest("busy", [{"k": base + i, "event_time": t(1), "v": i}])

    threads = [threading.Thread(target=writer, args=(base,)) for base in (0, 100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = sorted(fs.read_offline("busy").column("k").to_pylist())
    assert keys == [*range(6), *range(100, 106)]
    assert fs.offline.current_version("busy") == 11  # twelve ingests, twelve commits
