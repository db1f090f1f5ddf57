"""Talking to MLflow's registry and tracking store for the registry service.

The registry service uses MLflow's own store directly on the metadata database (the same
tables MLflow's server uses), so it works without a running server and sees exactly what
users' ``mlflow`` clients see. MLflow is imported lazily: it is heavy, and most Slipway
commands never need it.

MLflow runs in its workspace mode (:func:`~slipway.tracking.config.enable_mlflow_workspaces`),
Slipway's workspaces being MLflow's: a store is bound to one workspace
(:meth:`MlflowStore.in_workspace`) and every call it makes runs in that workspace's
context (:meth:`MlflowStore.scope`), so two teams' ``churn`` models or experiments are two
things in MLflow too, and a workspace's calls never see another's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from slipway.core.errors import BackendUnavailable, NotFound
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.tracking.config import (
    ARTIFACTS_FOLDER,
    backend_store_uri,
    enable_mlflow_workspaces,
    install_sqlite_pragmas,
)
from slipway.tracking.schema_lock import schema_lock

if TYPE_CHECKING:
    from mlflow import MlflowClient


class _Shared:
    """What a store's workspace views share: one client (one engine) per database."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.lock = threading.Lock()
        self.client: MlflowClient | None = None
        self.known: set[str] = {DEFAULT_WORKSPACE}


class MlflowStore:
    def __init__(
        self,
        database_url: str,
        workspace: str = DEFAULT_WORKSPACE,
        *,
        _shared: _Shared | None = None,
    ) -> None:
        self.uri = backend_store_uri(database_url) if _shared is None else _shared.uri
        self.workspace = workspace
        self._shared = _shared or _Shared(self.uri)
        self._views: dict[str, MlflowStore] = {}

    def in_workspace(self, workspace: str) -> MlflowStore:
        """This store, bound to ``workspace`` (a validated name); same client."""
        if workspace == self.workspace:
            return self
        view = self._views.get(workspace)
        if view is None:
            view = MlflowStore(self.uri, workspace, _shared=self._shared)
            self._views[workspace] = view
        return view

    @contextmanager
    def scope(self) -> Iterator[None]:
        """MLflow calls made inside run in this store's workspace (this thread only: a
        context variable, never the process's environment)."""
        from mlflow.utils.workspace_context import ServerWorkspaceContext

        self.ensure_workspace()
        with ServerWorkspaceContext(self.workspace):
            yield

    @property
    def client(self) -> MlflowClient:
        """MLflow's client on the metadata database. Call it inside :meth:`scope` for
        anything but the default workspace (outside, MLflow takes the default one)."""
        shared = self._shared
        if shared.client is None:
            with shared.lock:
                if shared.client is None:
                    shared.client = self._open()
        return shared.client

    def _open(self) -> MlflowClient:
        enable_mlflow_workspaces()
        from mlflow import MlflowClient  # heavy; only when the registry is used

        install_sqlite_pragmas()  # WAL and no fsync per commit, as MLflow's own server
        try:
            # Opening the store creates MLflow's tables on a fresh database: under the
            # lock every Slipway process takes for that (the tracking server's too).
            with schema_lock(self.uri):
                return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        except Exception as exc:
            raise BackendUnavailable(f"cannot open MLflow's store: {exc}") from None

    @property
    def opened(self) -> bool:
        """Whether MLflow's client (and its engine) is open in this process."""
        return self._shared.client is not None

    def has_workspace(self) -> bool:
        """Whether this process knows MLflow has this store's workspace."""
        return self.workspace in self._shared.known

    def ensure_workspace(self) -> None:
        """Make this store's workspace one of MLflow's too (idempotent, once a process):
        MLflow's server refuses requests naming a workspace it does not know."""
        shared = self._shared
        if self.workspace in shared.known:
            return
        enable_mlflow_workspaces()
        install_sqlite_pragmas()
        from mlflow.entities import Workspace
        from mlflow.exceptions import MlflowException
        from mlflow.tracking._workspace.registry import get_workspace_store

        # MLflow's own workspace store for this database: one a process (MLflow caches it
        # by URI, as its tracking store does), shared with the workspace-aware stores.
        store = get_workspace_store(workspace_uri=self.uri)
        with shared.lock:
            try:
                store.get_workspace(self.workspace)
            except MlflowException:
                try:
                    store.create_workspace(Workspace(name=self.workspace))
                except MlflowException as exc:
                    if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                        raise
            shared.known.add(self.workspace)

    def experiment_id(self, name: str, artifact_root: str) -> str:
        """The id of this workspace's experiment ``name``, created when missing with its
        artifacts under ``<artifact root>/mlflow/`` (``.../mlflow/workspaces/<ws>/`` in
        another workspace than the default, as MLflow's server lays them out)."""
        with self.scope():
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            base = f"{artifact_root.rstrip('/')}/{ARTIFACTS_FOLDER}"
            if self.workspace != DEFAULT_WORKSPACE:
                base = f"{base}/workspaces/{self.workspace}"
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            # In workspace mode MLflow's store refuses an explicit location (its server
            # derives one from its own root); Slipway's processes name the local folder its
            # server's proxy serves, so the store's plain method is called.
            store: Any = self.client._tracking_client.store
            create: Any = SqlAlchemyStore.create_experiment  # MLflow is untyped
            return str(create(store, name, f"{base}/{name}"))

    def ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        with self.scope():
            try:
                self.client.get_registered_model(name)
            except MlflowException:
                try:
                    self.client.create_registered_model(name)
                except MlflowException as exc:
                    if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                        raise

    def run_artifact_uri(self, run_id: str) -> str:
        from mlflow.exceptions import MlflowException

        try:
            with self.scope():
                return str(self.client.get_run(run_id).info.artifact_uri)
        except MlflowException:
            raise NotFound(f"MLflow run {run_id} does not exist") from None

    def logged_model_uri(self, run_id: str, name: str) -> str | None:
        """Where MLflow 3 keeps the model named ``name`` logged by a run (``None`` if the
        run logged none by that name; older models live among the run's artifacts)."""
        from mlflow.exceptions import MlflowException

        with self.scope():
            try:
                experiment_id = self.client.get_run(run_id).info.experiment_id
            except MlflowException:
                raise NotFound(f"MLflow run {run_id} does not exist") from None
            token: str | None = None
            while True:
                page = self.client.search_logged_models(
                    experiment_ids=[experiment_id],
                    filter_string=f"name = '{name}'",
                    page_token=token,
                )
                for model in page:
                    if model.source_run_id == run_id:
                        return str(model.artifact_location)
                if not page.token:
                    return None
                token = page.token

    def run_data(self, run_id: str | None) -> tuple[dict[str, float], dict[str, str], str | None]:
        """Metrics, params and experiment id of a run (empty when there is none, or when
        it is another workspace's)."""
        if not run_id:
            return {}, {}, None
        from mlflow.exceptions import MlflowException

        try:
            with self.scope():
                run = self.client.get_run(run_id)
        except MlflowException:
            return {}, {}, None
        return dict(run.data.metrics), dict(run.data.params), str(run.info.experiment_id)

    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        tags: dict[str, str],
        metrics: dict[str, float],
        params: dict[str, str],
    ) -> str:
        """A finished run holding ``metrics`` and ``params`` (a promoted version's, copied
        from its source platform), its id."""
        from mlflow.entities import Metric, Param, RunTag

        with self.scope():
            run = self.client.create_run(experiment_id, run_name=name)
            run_id = str(run.info.run_id)
            stamp = int(run.info.start_time or 0)
            metric_rows = [Metric(k, v, stamp, 0) for k, v in sorted(metrics.items())]
            param_rows = [Param(k, v) for k, v in sorted(params.items())]
            tag_rows = [RunTag(k, v) for k, v in sorted(tags.items())]
            # MLflow takes at most 1,000 metrics, 100 params and 100 tags per batch.
            for start in range(0, len(metric_rows), 1000):
                self.client.log_batch(run_id, metrics=metric_rows[start : start + 1000])
            for start in range(0, len(param_rows), 100):
                self.client.log_batch(run_id, params=param_rows[start : start + 100])
            for start in range(0, len(tag_rows), 100):
                self.client.log_batch(run_id, tags=tag_rows[start : start + 100])
            self.client.set_terminated(run_id)
        return run_id

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted (``slipway gc`` removes it with its artifacts later)."""
        with self.scope():
            self.client.delete_run(run_id)

    def aliases(self, name: str) -> dict[int, list[str]]:
        from mlflow.exceptions import MlflowException

        try:
            with self.scope():
                model = self.client.get_registered_model(name)
        except MlflowException:
            return {}
        out: dict[int, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            out.setdefault(int(version), []).append(alias)
        return out

    def create_version(
        self, name: str, *, source: str, run_id: str | None, description: str, tags: dict[str, str]
    ) -> int:
        """A new version of registered model ``name`` (which exists), its number."""
        with self.scope():
            created = self.client.create_model_version(
                name, source=source, run_id=run_id, description=description, tags=tags
            )
        return int(created.version)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self.scope():
            self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        with self.scope():
            self.client.delete_registered_model_alias(name, alias)

    def set_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self.scope():
            self.client.set_model_version_tag(name, str(version), key, value)

    def tag(self, name: str, version: int, key: str) -> str | None:
        """A model version's tag, ``None`` when it (or the version) is not there."""
        return self.tags(name, version).get(key)

    def tags(self, name: str, version: int) -> dict[str, str]:
        """A model version's tags (none when the version is not there)."""
        from mlflow.exceptions import MlflowException

        try:
            with self.scope():
                tags = self.client.get_model_version(name, str(version)).tags or {}
        except MlflowException:
            return {}
        return {str(k): str(v) for k, v in tags.items()}

    def tags_by_version(self, name: str) -> dict[int, dict[str, str]]:
        """Every version's tags of model ``name`` (a validated name: no quotes to escape),
        in one search per 1,000 versions."""
        from mlflow.exceptions import MlflowException

        out: dict[int, dict[str, str]] = {}
        token: str | None = None
        while True:
            try:
                with self.scope():
                    page = self.client.search_model_versions(
                        f"name = '{name}'", max_results=1000, page_token=token
                    )
            except MlflowException:
                return out
            for version in page:
                out[int(version.version)] = {
                    str(k): str(v) for k, v in (version.tags or {}).items()
                }
            if not page.token:
                return out
            token = page.token
