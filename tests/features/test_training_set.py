"""Point-in-time training sets: exact semantics, and a property test against an oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import load_settings
from slipway.features.offline.training import entity_digest
from slipway.features.store import FeatureStore
from slipway.services import Services
from tests.features.conftest import t

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _group(fs: FeatureStore, name: str, ttl: int | None = None) -> None:
    fs.create_group(
        {
            "name": name,
            "record_identifiers": [{"name": "k"}],
            "features": [{"name": f"{name}_v", "type": "int"}],
            "ttl": ttl,
            "online": False,
        }
    )


@pytest.fixture
def offline_fs(tmp_path: Path) -> FeatureStore:
    services = Services.open(load_settings(home=tmp_path / "home"))
    return services.features


def test_latest_value_at_or_before_each_row(offline_fs: FeatureStore) -> None:
    fs = offline_fs
    _group(fs, "a")
    fs.ingest(
        "a",
        [
            {"k": "x", "event_time": t(1), "a_v": 1},
            {"k": "x", "event_time": t(3), "a_v": 3},
            {"k": "y", "event_time": t(2), "a_v": 20},
        ],
    )
    # A later ingestion at an equal event time replaces the earlier value.
    fs.ingest("a", [{"k": "x", "event_time": t(3), "a_v": 33}])
    entities = pd.DataFrame(
        {
            "k": ["x", "x", "x", "y", "z", "x"],
            "event_timestamp": [t(2), t(1), t(5), t(1), t(9), t(3)],
            "label": [1, 0, 1, 0, 1, 0],
        }
    )
    result = fs.training_set(entities, ["a:a_v"])
    frame = result.to_pandas()
    assert frame["a_v"].tolist()[:3] == [1, 1, 33]
    assert pd.isna(frame["a_v"][3]) and pd.isna(frame["a_v"][4])  # before any value / unknown
    assert frame["a_v"][5] == 33
    assert frame["label"].tolist() == [1, 0, 1, 0, 1, 0]  # order and extra columns kept
    definition = result.definition
    assert definition.group_versions == {"a": 1}
    assert definition.feature_refs == ["a:a_v"]
    assert definition.entity_rows == 6 and len(definition.entity_digest) == 64
    again = fs.training_set(entities, ["a:a_v"], versions={"a": 0})
    assert again.to_pandas()["a_v"][2] == 3  # as of version 0, before the correction
    assert again.definition.entity_digest == definition.entity_digest


def test_ttl_and_several_groups(offline_fs: FeatureStore) -> None:
    fs = offline_fs
    _group(fs, "a", ttl=86400)
    _group(fs, "b")
    fs.ingest("a", [{"k": "x", "event_time": t(1), "a_v": 1}])
    fs.ingest("b", [{"k": "x", "event_time": t(1), "b_v": 2}])
    entities = pd.DataFrame({"k": ["x", "x"], "event_timestamp": [t(1, 23), t(3)]})
    frame = fs.training_set(entities, ["a:a_v", "b:*"]).to_pandas()
    assert frame["a_v"].tolist()[0] == 1 and pd.isna(frame["a_v"][1])  # past a's TTL
    assert frame["b_v"].tolist() == [2, 2]
    short = fs.training_set(entities, ["b:b_v"], ttl=timedelta(hours=1)).to_pandas()
    assert short["b_v"].isna().all()
    named = fs.training_set(entities, ["a:a_v"], full_feature_names=True).to_pandas()
    assert "a__a_v" in named.columns


def test_entity_sources_and_bad_input(offline_fs: FeatureStore, tmp_path: Path) -> None:
    fs = offline_fs
    _group(fs, "a")
    fs.ingest("a", [{"k": "x", "event_time": t(1), "a_v": 1}])
    entities = pd.DataFrame({"k": ["x"], "event_timestamp": [t(2)]})
    path = tmp_path / "entities.parquet"
    entities.to_parquet(path)
    assert fs.training_set(str(path), ["a:a_v"]).to_pandas()["a_v"].tolist() == [1]
    from_sql = fs.training_set(
        "SELECT k, event_time + INTERVAL 1 HOUR AS event_timestamp FROM a", ["a:a_v"]
    )
    assert from_sql.to_pandas()["a_v"].tolist() == [1]
    with pytest.raises(InvalidInput, match="time zone"):
        fs.training_set(entities.assign(event_timestamp=[datetime(2024, 1, 2)]), ["a:a_v"])
    with pytest.raises(InvalidInput, match="timestamp column"):
        fs.training_set(entities.rename(columns={"event_timestamp": "ts"}), ["a:a_v"])
    with pytest.raises(InvalidInput, match="record identifier"):
        fs.training_set(entities.drop(columns="k"), ["a:a_v"])
    with pytest.raises(InvalidInput, match="group:feature"):
        fs.training_set(entities, ["a_v"])
    with pytest.raises(NotFound):
        fs.training_set(entities, ["missing:x"])
    with pytest.raises(InvalidInput):
        fs.training_set(entities, ["a:nope"])


# -- property: the ASOF join agrees with a brute-force oracle ---------------------------

_history = st.lists(
    st.tuples(st.sampled_from(["p", "q", "r"]), st.integers(0, 20), st.integers(-50, 50)),
    min_size=0,
    max_size=25,
)
_entities = st.lists(
    st.tuples(st.sampled_from(["p", "q", "r", "s"]), st.integers(0, 24)), min_size=1, max_size=20
)


def _oracle(
    history: list[list[tuple[str, int, int]]], entities: list[tuple[str, int]], ttl: int | None
) -> list[int | None]:
    """For each entity: among rows of its key at or before its time (within TTL), the one
    with the latest time; ties go to the latest ingestion, then the last row within it."""
    out: list[int | None] = []
    for key, at in entities:
        best: tuple[int, int, int] | None = None
        value: int | None = None
        for batch_no, batch in enumerate(history):
            for row_no, (k, when, v) in enumerate(batch):
                if k != key or when > at or (ttl is not None and at - when > ttl):
                    continue
                rank = (when, batch_no, row_no)
                if best is None or rank > best:
                    best, value = rank, v
        out.append(value)
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(_history, min_size=1, max_size=3),
    entities=_entities,
    ttl=st.one_of(st.none(), st.integers(0, 10)),
)
def test_point_in_time_matches_the_oracle(
    tmp_path_factory: pytest.TempPathFactory,
    history: list[list[tuple[str, int, int]]],
    entities: list[tuple[str, int]],
    ttl: int | None,
) -> None:
    """Two groups in one call: ``h`` holds the whole history (keys recur: the as-of join),
    ``d`` one record per key, its first in the history (a dimension: the hash join)."""
    home = tmp_path_factory.mktemp("pit")
    services = Services.open(load_settings(home=home))
    fs = services.features
    for name, feature in (("h", "v"), ("d", "w")):
        fs.create_group(
            {
                "name": name,
                "record_identifiers": [{"name": "k"}],
                "online": False,
                "features": [{"name": feature, "type": "int"}],
            }
        )
    # Within one batch, keep one row per (key, time): a batch is one fact per key and time.
    batches = [list({(k, w): (k, w, v) for k, w, v in batch}.values()) for batch in history]
    if all(not b for b in batches):
        services.close()
        return
    firsts: dict[str, tuple[str, int, int]] = {}
    for batch in batches:
        for row in batch:
            firsts.setdefault(row[0], row)
    dimension = list(firsts.values())
    for name, feature, rows_of in (("h", "v", batches), ("d", "w", [dimension])):
        for batch in rows_of:
            if batch:
                fs.ingest(
                    name,
                    [
                        {"k": k, "event_time": BASE + timedelta(hours=w), feature: v}
                        for k, w, v in batch
                    ],
                )
    frame = pd.DataFrame(
        {
            "k": [k for k, _ in entities],
            "event_timestamp": [BASE + timedelta(hours=at) for _, at in entities],
            "label": list(range(len(entities))),
        }
    )
    result = fs.training_set(
        frame, ["h:v", "d:w"], ttl=timedelta(hours=ttl) if ttl is not None else None
    ).data
    assert result.column_names == ["k", "event_timestamp", "label", "v", "w"]
    assert result.column("v").to_pylist() == _oracle(batches, entities, ttl)
    assert result.column("w").to_pylist() == _oracle([dimension], entities, ttl)
    assert result.column("k").to_pylist() == frame["k"].tolist()
    assert result.column("label").to_pylist() == frame["label"].tolist()
    services.close()


def test_one_record_per_key_with_a_composite_key(offline_fs: FeatureStore) -> None:
    """A dimension keyed by two columns (the hash-join path): the pair decides, not either
    column alone; a record later than the row's time is not used; entity order is kept."""
    fs = offline_fs
    fs.create_group(
        {
            "name": "pairs",
            "record_identifiers": [{"name": "a"}, {"name": "b", "type": "int"}],
            "features": [{"name": "f", "type": "float"}],
            "online": False,
        }
    )
    fs.ingest(
        "pairs",
        [
            {"a": "x", "b": 1, "event_time": t(2), "f": 1.0},
            {"a": "x", "b": 2, "event_time": t(2), "f": 2.0},
            {"a": "y", "b": 1, "event_time": t(6), "f": 3.0},
        ],
    )
    entities = pd.DataFrame(
        {
            "a": ["y", "x", "x", "y", "z"],
            "b": [1, 2, 1, 1, 1],
            "event_timestamp": [t(7), t(3), t(1), t(5), t(10)],
        }
    )
    data = fs.training_set(entities, ["pairs:f"]).data
    assert data.column("f").to_pylist() == [3.0, 2.0, None, None, None]
    assert data.column("a").to_pylist() == ["y", "x", "x", "y", "z"]
    # A second record for one pair: the group is no longer one record per key, and the
    # as-of join picks the latest at or before each row's time.
    fs.ingest("pairs", [{"a": "x", "b": 1, "event_time": t(4), "f": 4.0}])
    entities["event_timestamp"] = [t(7), t(3), t(5), t(5), t(10)]
    assert fs.training_set(entities, ["pairs:f"]).data.column("f").to_pylist() == [
        3.0,
        2.0,
        4.0,
        None,
        None,
    ]


def test_arrow_entities_with_int_keys(offline_fs: FeatureStore) -> None:
    fs = offline_fs
    fs.create_group(
        {
            "name": "ints",
            "record_identifiers": [{"name": "id", "type": "int"}],
            "features": [{"name": "f", "type": "float"}],
            "online": False,
        }
    )
    fs.ingest("ints", [{"id": 7, "event_time": t(1), "f": 0.5}])
    table = pa.table(
        {
            "id": pa.array([7, 8], pa.int32()),
            "event_timestamp": pa.array([t(2), t(2)], pa.timestamp("ms", tz="UTC")),
        }
    )
    assert fs.training_set(table, ["ints:f"]).data.column("f").to_pylist() == [0.5, None]


def test_a_training_set_reads_only_the_groups_it_references(
    offline_fs: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = offline_fs
    for name in ("used", "other", "third"):
        _group(fs, name)
        fs.ingest(name, [{"k": "x", "event_time": t(1), f"{name}_v": 1}])
    read: list[str] = []
    real_get = fs.repo.get

    def get(name: str) -> object:
        read.append(name)
        return real_get(name)

    def every_group() -> None:
        raise AssertionError("a training set of one group read every group's definition")

    monkeypatch.setattr(fs.repo, "get", get)
    monkeypatch.setattr(fs.repo, "all", every_group)
    entities = pd.DataFrame({"k": ["x"], "event_timestamp": [t(2)]})
    built = fs.training_set(entities, ["used:used_v", "used:*"])
    assert built.data.column("used_v").to_pylist() == [1]
    assert read == ["used"]
    with pytest.raises(NotFound, match="nope"):
        fs.training_set(entities, ["nope:x"])
    for bad in ("used", "used:", ":x", "Not A Name:x"):
        with pytest.raises(InvalidInput) as caught:
            fs.training_set(entities, [bad])
        assert caught.value.field == "feature_refs"


def test_the_entity_digest_is_the_rows_not_their_chunking() -> None:
    """The lineage's entity digest is the same for the same rows however they are
    chunked (one file, or the batches the remote client streams up), and differs for
    other rows."""
    rows = pa.table(
        {
            "k": [f"k{i}" for i in range(5_000)],
            "x": [None if i % 7 == 0 else float(i) for i in range(5_000)],
        }
    )
    rechunked = pa.Table.from_batches(rows.to_batches(max_chunksize=333))
    sliced = pa.concat_tables([rows.slice(0, 1_234), rows.slice(1_234)])
    assert rechunked.column("k").num_chunks > 1
    assert entity_digest(rows) == entity_digest(rechunked) == entity_digest(sliced)
    assert entity_digest(rows) != entity_digest(rows.slice(1))
