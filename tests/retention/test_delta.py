"""Delta versions: a vacuum deletes the files of versions nobody needs, and keeps every
version a registered model's lineage read — it still time-travels and rebuilds the same
training set afterwards."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import mlflow.sklearn
import pandas as pd
import pytest
from deltalake import DeltaTable
from sklearn.linear_model import LinearRegression

from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.registry.lineage import Lineage
from slipway.retention import GarbageCollector
from slipway.retention.delta import LOG_CLEANUP
from slipway.services import Services
from slipway.training.tables import TrainingJobRow


def t(day: int) -> datetime:
    return datetime(2024, 1, day, tzinfo=UTC)


def _group(services: Services, name: str) -> None:
    services.features.create_group(
        {
            "name": name,
            "record_identifiers": [{"name": "k"}],
            "features": [{"name": "v", "type": "int"}],
            "online": False,
        }
    )


def _history(services: Services, name: str) -> None:
    """Versions 0-1 appended, 2 deletes x, 3 appends, 4 deletes y: two rewrites, so the
    files of versions 0-3 are removed by later commits."""
    fs = services.features
    fs.ingest(
        name, [{"k": "x", "event_time": t(1), "v": 1}, {"k": "y", "event_time": t(1), "v": 2}]
    )
    fs.ingest(
        name, [{"k": "x", "event_time": t(2), "v": 10}, {"k": "y", "event_time": t(2), "v": 20}]
    )
    fs.delete_records(name, [["x"]], actor="alice")
    fs.ingest(name, [{"k": "z", "event_time": t(3), "v": 300}])
    fs.delete_records(name, [["y"]], actor="alice")


ENTITIES = pd.DataFrame(
    {"k": ["x", "y", "x", "y"], "event_timestamp": [t(1), t(1), t(5), t(5)], "label": [0, 1, 0, 1]}
)


def _register(services: Services, definition: dict[str, object]) -> None:
    path = f"{services.settings.artifact_root}/models/delays"
    model = LinearRegression().fit(pd.DataFrame({"v": [1.0, 2.0]}), [0.0, 1.0])
    mlflow.sklearn.save_model(
        model, path, signature=mlflow.models.infer_signature(pd.DataFrame({"v": [1.0]}), [0.0])
    )
    services.registry.register(
        "delays", path, actor="alice", lineage=Lineage(training_set=definition)
    )


def _readable(services: Services, name: str, version: int) -> bool:
    try:
        services.features.read_offline(name, version=version)
    except FileNotFoundError:
        return False
    return True


def test_vacuum_keeps_the_versions_in_lineage(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    _group(services, "trained")
    _group(services, "unused")
    _history(services, "unused")
    fs = services.features
    fs.ingest(
        "trained", [{"k": "x", "event_time": t(1), "v": 1}, {"k": "y", "event_time": t(1), "v": 2}]
    )
    fs.ingest(
        "trained",
        [{"k": "x", "event_time": t(2), "v": 10}, {"k": "y", "event_time": t(2), "v": 20}],
    )
    built = fs.training_set(ENTITIES, ["trained:v"])
    assert built.definition.group_versions == {"trained": 1}
    _register(services, built.definition.to_dict())
    fs.delete_records("trained", [["x"]], actor="alice")
    fs.ingest("trained", [{"k": "z", "event_time": t(3), "v": 300}])
    fs.delete_records("trained", [["y"]], actor="alice")
    before = {name: fs.read_offline(name).to_pandas() for name in ("trained", "unused")}
    gc = collector(delta_versions_hours=0)
    dry = gc.run(dry_run=True).kind("delta")
    assert dry.deleted > 0 and _readable(services, "unused", 2)

    report = gc.run().kind("delta")

    assert report.deleted > 0 and report.bytes_freed is not None and report.bytes_freed > 0
    assert report.protected == 1 and any("[1]" in note for note in report.notes)
    # The version in lineage still time-travels and rebuilds the same training set.
    again = fs.training_set(ENTITIES, ["trained:v"], versions=built.definition.group_versions)
    assert again.data.equals(built.data)
    assert again.definition.entity_digest == built.definition.entity_digest
    assert _readable(services, "trained", 0)  # its files are a subset of version 1's
    # Versions nobody references are gone; the current ones are untouched.
    assert not _readable(services, "trained", 2) and not _readable(services, "trained", 3)
    assert not any(_readable(services, "unused", v) for v in (0, 1, 2, 3))
    for name, frame in before.items():
        assert fs.read_offline(name).to_pandas().equals(frame)
    # Time travel needs the log: a table with lineage stops dropping expired logs.
    config = DeltaTable(fs.offline.uri("trained")).metadata().configuration
    assert config.get(LOG_CLEANUP) == "false"
    assert LOG_CLEANUP not in DeltaTable(fs.offline.uri("unused")).metadata().configuration
    # Nothing left to delete: a second pass deletes nothing and commits nothing.
    version = fs.offline.version("trained")
    assert gc.run().kind("delta").deleted == 0 and fs.offline.version("trained") == version


def test_an_unfinished_job_keeps_the_versions_current_while_it_runs(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    _group(services, "g")
    with services.db.write() as session:
        session.add(TrainingJobRow(name="job", spec={}, state="Running", created_at=utcnow()))
    _history(services, "g")
    gc = collector(delta_versions_hours=0)
    report = gc.run().kind("delta")
    assert report.deleted == 0
    assert all(_readable(services, "g", v) for v in range(5))
    with services.db.write() as session:
        job = session.get(TrainingJobRow, ("default", "job"))
        assert job is not None
        job.state = "Succeeded"
    assert gc.run().kind("delta").deleted > 0
    assert not _readable(services, "g", 0)


def test_unset_age_vacuums_nothing(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    _group(services, "g")
    _history(services, "g")
    report = collector().run(only=["delta"]).kind("delta")
    assert not report.enabled and all(_readable(services, "g", v) for v in range(5))


@pytest.mark.parametrize("kind", ["nope", "Delta"])
def test_an_unknown_kind_is_refused(
    services: Services, collector: Callable[..., GarbageCollector], kind: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        collector().run(only=[kind])
    assert raised.value.details["field"] == "only"


def test_every_workspaces_tables_are_vacuumed(
    services: Services, collector: Callable[..., GarbageCollector]
) -> None:
    """A workspace's offline tables live beside the default ones: a vacuum reaches them
    too, and the default workspace's table of the same name stays its own."""
    services.workspaces.create("fraud", actor="test")
    fraud = services.features.in_workspace("fraud")
    _group(services, "g")
    fraud.create_group(
        {
            "name": "g",
            "record_identifiers": [{"name": "k"}],
            "features": [{"name": "v", "type": "int"}],
            "online": False,
        }
    )
    _history(services, "g")
    fraud.ingest(
        "g", [{"k": "x", "event_time": t(1), "v": 1}, {"k": "y", "event_time": t(1), "v": 2}]
    )
    fraud.delete_records("g", [["x"]], actor="alice")
    fraud.ingest("g", [{"k": "z", "event_time": t(3), "v": 3}])
    fraud.delete_records("g", [["z"]], actor="alice")
    before = {
        ws: fs.read_offline("g").to_pandas() for ws, fs in (("d", services.features), ("f", fraud))
    }

    report = collector(delta_versions_hours=0).run().kind("delta")

    assert report.deleted > 0
    assert not any(_readable(services, "g", v) for v in (0, 1, 2, 3))
    with pytest.raises(FileNotFoundError):
        fraud.read_offline("g", version=0)
    after = {
        ws: fs.read_offline("g").to_pandas() for ws, fs in (("d", services.features), ("f", fraud))
    }
    assert all(after[ws].equals(before[ws]) for ws in before)
    assert after["f"]["v"].tolist() == [2]
