"""Back up a running platform, delete it, restore it elsewhere: the same platform.

On each engine (SQLite, PostgreSQL), the restore goes into another home, another artifact
root and (PostgreSQL) another database after the original is deleted, so anything still
pointing at the old locations fails here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow.compute as pc
import pytest
from sqlalchemy import select

from slipway.backup.service import create_backup, restore_backup
from slipway.core.settings import Settings, load_settings
from slipway.features.tables import FeatureIngestRow
from slipway.services import Services
from tests.backup.conftest import drop_postgres
from tests.backup.platform import FEATURES, TICKS, Writer, build, entities, predict
from tests.waiting import eventually


def test_a_restored_platform_is_the_one_backed_up_while_it_ran(
    database_url: str,
    target: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source_home = tmp_path / "source" / "home"
    source = Services.open(load_settings(home=source_home, database={"url": database_url}))
    before = build(source, monkeypatch)
    archive = tmp_path / "platform.tar.zst"
    with Writer(source) as writer:
        eventually(lambda: writer.done >= 3 or writer.error, what="ingests before the backup")
        started_with = writer.done
        manifest = create_backup(source.settings, archive)
        eventually(lambda: writer.done > started_with + 2 or writer.error, what="ingests after it")
    assert writer.error is None, writer.error
    source.close()
    shutil.rmtree(tmp_path / "source")
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).unlink()
    else:
        drop_postgres(database_url)

    report = restore_backup(target, archive)

    assert report.rewritten  # MLflow's absolute locations moved with the home
    restored = Services.open(target)
    try:
        # Feature groups: definitions and every offline row.
        assert {g.spec.name: g.spec for g in restored.features.list_groups()} == before.groups
        for name, count in before.counts.items():
            assert restored.features.read_offline(name).num_rows == count
        # The training set, row for row, rebuilt at the Delta versions it read.
        again = restored.features.training_set(
            entities(), FEATURES, versions=before.training.definition.group_versions
        )
        assert again.data.equals(before.training.data)
        assert again.definition == before.training.definition
        # Model versions: the same digests, verified, loadable through Slipway and MLflow.
        assert [(v.version, v.digest) for v in restored.registry.versions("clf")] == (
            before.versions
        )
        restored.registry.verify("clf", 1)
        assert predict(restored) == before.predictions
        monkeypatch.setenv("MLFLOW_TRACKING_URI", restored.registry.mlflow.uri)
        mlflow.set_registry_uri(restored.registry.mlflow.uri)
        model = mlflow.pyfunc.load_model("models:/clf/1")
        frame = pd.DataFrame({"a": [0.5, -1.0, 2.0], "b": [0.1, 0.2, -3.0]})
        assert list(model.predict(frame)) == before.predictions
        source_uri = restored.registry.mlflow.client.get_model_version("clf", "1").source
        assert str(target.home) in source_uri and str(source_home) not in source_uri
        # Endpoints and monitors, described the same.
        assert restored.endpoints.describe("clf-ep") == before.endpoint
        assert restored.monitoring.get("clf-quality") == before.monitor
        # Online records, as they were.
        assert restored.features.get_record("weather", "JFK") == before.online
        # The group written during the backup is a state that existed: the rows of every
        # ingestion the restored database records as done, at least those done before the
        # backup began, none of an ingestion it never saw, and at most the rows of one
        # still running then (the writer's commit may precede the snapshot, its finish
        # follow it).
        with restored.db.session() as session:
            ingests = {
                i.id: i
                for i in session.scalars(
                    select(FeatureIngestRow).where(FeatureIngestRow.group_name == TICKS)
                )
            }
        done = {i for i, row in ingests.items() if row.state == "succeeded"}
        assert len(done) >= started_with
        table = restored.features.read_offline(TICKS)
        present = set(pc.unique(table.column("_ingest_id")).to_pylist())
        assert done <= present <= set(ingests)
        running = present - done
        assert len(running) <= 1 and all(ingests[i].state == "running" for i in running)
        assert table.num_rows == 5 * len(present)
        assert restored.features.offline.version(TICKS) == manifest.delta_versions[TICKS]
        assert manifest.delta_versions[TICKS] >= max(ingests[i].offline_version or 0 for i in done)
    finally:
        restored.close()
