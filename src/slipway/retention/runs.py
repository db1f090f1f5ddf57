"""Retention of MLflow runs already deleted: their artifacts and their rows go, with
MLflow's own garbage collection, once they have been deleted longer than the age.

This is what ``mlflow gc --older-than`` does — the tracking store's list of runs in the
``deleted`` lifecycle stage by deletion time, then each run's artifacts and its hard
delete — with two differences: artifacts are deleted through Slipway's artifact store
(a run's ``mlflow-artifacts:/`` location maps to ``mlflow/`` under the root, so no
tracking server is needed, and nothing outside the root is touched), and a run is kept
when a registered model version comes from it: its run id is the version's, in
Slipway's registry or MLflow's, or the version's files lie under the run's artifacts.
Artifacts are deleted before the run's rows, so a gc that dies between the two finds
the run again next time and finishes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput
from slipway.registry.mlflow_store import MlflowStore
from slipway.registry.sources import check_source, key_for_path, key_for_uri
from slipway.registry.tables import ModelVersionRow
from slipway.retention.report import KindReport
from slipway.retention.sizes import RootSizes
from slipway.security.workspaces import workspace_names


def artifact_key(uri: str, root: str) -> str | None:
    """The artifact-store key of an MLflow artifact location, ``None`` outside the root."""
    try:
        kind, value = check_source(uri)
        if kind == "key":
            return value
        if kind == "path":
            return key_for_path(uri, value, root)
    except InvalidInput:
        pass
    try:
        return key_for_uri(uri, uri, root)
    except InvalidInput:
        return None


def _registered(db: Database, mlflow: MlflowStore, root: str) -> tuple[set[str], set[str]]:
    """Run ids and artifact keys of every registered model version (Slipway's, in every
    workspace, and those of MLflow's registry in ``mlflow``'s workspace)."""
    runs: set[str] = set()
    keys: set[str] = set()
    with db.session() as session:
        for run_id, key in session.execute(
            select(ModelVersionRow.run_id, ModelVersionRow.artifact_key)
        ):
            if run_id:
                runs.add(run_id)
            keys.add(key)
    token: str | None = None
    while True:
        with mlflow.scope():
            page = mlflow.client.search_model_versions(page_token=token)
        for version in page:
            if version.run_id:
                runs.add(str(version.run_id))
            found = artifact_key(str(version.source), root) if version.source else None
            if found is not None:
                keys.add(found)
        token = page.token
        if not token:
            break
    return runs, keys


def purge_deleted_runs(
    db: Database,
    mlflow: MlflowStore,
    artifacts: ArtifactStore,
    root: str,
    cutoff: datetime,
    *,
    dry_run: bool,
) -> KindReport:
    """Hard-delete runs deleted at or before ``cutoff`` that no model version needs;
    ``root`` is the artifact root as configured (a path or a URI)."""
    report = KindReport("runs", bytes_freed=0)
    sizes = RootSizes(root)
    for workspace in workspace_names(db):  # MLflow's store sees one workspace at a time
        _purge_workspace(
            report, sizes, db, mlflow.in_workspace(workspace), artifacts, root, cutoff, dry_run
        )
    return report


def _purge_workspace(
    report: KindReport,
    sizes: RootSizes,
    db: Database,
    mlflow: MlflowStore,
    artifacts: ArtifactStore,
    root: str,
    cutoff: datetime,
    dry_run: bool,
) -> None:
    store: Any = mlflow.client._tracking_client.store  # the backend store `mlflow gc` uses
    older_ms = max(0, int((utcnow() - cutoff).total_seconds() * 1000))
    with mlflow.scope():
        candidates = store._get_deleted_runs(older_than=older_ms)
    if not candidates:
        return
    runs, keys = _registered(db, mlflow, root)
    for run_id in candidates:
        with mlflow.scope():
            key = artifact_key(str(store.get_run(run_id).info.artifact_uri), root)
        needed = run_id in runs or (
            key is not None and any(k == key or k.startswith(f"{key}/") for k in keys)
        )
        if needed:
            report.protected += 1
            report.notes.append(f"run {run_id} kept: a registered model version comes from it")
            continue
        size = sizes.total(key) if key is not None else 0
        if not dry_run:
            if key is not None and artifacts.list(key):
                artifacts.delete(key)
            with mlflow.scope():
                store._hard_delete_run(run_id)
        report.deleted += 1
        report.add_bytes(size)
