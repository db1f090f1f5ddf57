"""Two workspaces with a feature group of the same name stay apart: definitions, offline
tables, online records, SQL, training sets, ingestion keys, deletes, events and audit —
on both metadata engines and both online stores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from slipway.core.errors import Conflict, NotFound
from slipway.features.store import FeatureStore
from slipway.services import Services
from tests.features.conftest import t


@pytest.fixture
def metadata_url(database_url: str) -> str:
    return database_url


def _group(value_type: str) -> dict[str, object]:
    return {
        "name": "churn",
        "record_identifiers": [{"name": "customer"}],
        "event_time": "at",
        "features": [{"name": "score", "type": value_type}],
    }


def _rows(scores: list[object]) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer": ["a", "b"][: len(scores)], "at": [t(1)] * len(scores), "score": scores}
    )


@pytest.fixture
def both(services: Services, fs: FeatureStore) -> tuple[FeatureStore, FeatureStore]:
    services.workspaces.create("fraud", actor="test")
    fraud = fs.in_workspace("fraud")
    assert fraud is fs.in_workspace("fraud") and fs.in_workspace("default") is fs
    fs.create_group(_group("float"), actor="alice")
    fraud.create_group(_group("int"), actor="bob")
    return fs, fraud


def test_the_same_name_is_two_groups(both: tuple[FeatureStore, FeatureStore]) -> None:
    default, fraud = both
    with pytest.raises(Conflict):
        fraud.create_group(_group("int"))
    assert default.describe("churn").spec.features[0].type == "float"
    assert fraud.describe("churn").spec.features[0].type == "int"
    assert [g.name for g in default.list_groups()] == ["churn"]
    assert [g.name for g in fraud.list_groups()] == ["churn"]

    default.ingest("churn", _rows([0.25, 0.5]))
    fraud.ingest("churn", _rows([7]))
    assert [r.values["score"] for r in default.get_records("churn", [["a"], ["b"]]) if r] == [
        0.25,
        0.5,
    ]
    records = fraud.get_records("churn", [["a"], ["b"]])
    assert records[0] is not None and records[0].values["score"] == 7 and records[1] is None
    [vector] = fraud.get_online_features(["churn:score"], [{"customer": "a"}])
    assert vector.values["score"] == 7
    assert default.read_offline("churn").num_rows == 2
    assert fraud.read_offline("churn").num_rows == 1
    assert fraud.query("SELECT sum(score) AS s FROM churn").to_pylist() == [{"s": 7}]
    assert default.query("SELECT count(*) AS n FROM churn").to_pylist() == [{"n": 2}]
    entities = pd.DataFrame({"customer": ["a"], "event_timestamp": [t(2)]})
    built = fraud.training_set(entities, ["churn:score"]).to_pandas()
    assert built["score"].tolist() == [7]


def test_ingestion_keys_and_deletes_stay_in_their_workspace(
    both: tuple[FeatureStore, FeatureStore], services: Services
) -> None:
    default, fraud = both
    first = default.ingest("churn", _rows([0.25]), idempotency_key="batch-1")
    # The same client key in another workspace is another batch, not a replay.
    other = fraud.ingest("churn", _rows([3]), idempotency_key="batch-1")
    assert other.id != first.id and fraud.read_offline("churn").num_rows == 1
    assert [i.id for i in fraud.ingests("churn")] == [other.id]
    fraud.delete_records("churn", [["a"]], actor="bob")
    assert fraud.get_records("churn", [["a"]]) == [None]
    record = default.get_records("churn", [["a"]])[0]
    assert record is not None and record.values["score"] == 0.25
    fraud.delete_group("churn", actor="bob")
    with pytest.raises(NotFound):
        fraud.describe("churn")
    assert default.describe("churn").name == "churn"
    assert default.read_offline("churn").num_rows == 1
    record = default.get_records("churn", [["a"]])[0]
    assert record is not None and record.values["score"] == 0.25

    audit = {(e.actor, e.action, e.resource) for e in services.audit.list(limit=50)}
    assert ("alice", "feature_group.create", "feature-group/churn") in audit
    assert ("bob", "feature_group.create", "workspaces/fraud/feature-group/churn") in audit
    assert ("bob", "feature_group.delete", "workspaces/fraud/feature-group/churn") in audit
    events = {(e.type, e.resource) for e in services.events.read(limit=100)}
    assert ("feature_group.deleted", "workspaces/fraud/feature-group/churn") in events
    assert ("feature_group.deleted", "feature-group/churn") not in events


def test_offline_tables_live_beside_the_default_ones(
    both: tuple[FeatureStore, FeatureStore], services: Services
) -> None:
    default, fraud = both
    default.ingest("churn", _rows([0.25]))
    fraud.ingest("churn", _rows([3]))
    root = Path(services.settings.artifact_root)
    assert (root / "features" / "churn" / "_delta_log").is_dir()
    assert (root / "workspaces" / "fraud" / "features" / "churn" / "_delta_log").is_dir()
