"""Talking to MLflow's registry and tracking store for the registry service.

The registry service uses MLflow's own store directly on the metadata database (the same
tables MLflow's server uses), so it works without a running server and sees exactly what
users' ``mlflow`` clients see. MLflow is imported lazily: it is heavy, and most Slipway
commands never need it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from slipway.core.errors import BackendUnavailable, NotFound
from slipway.tracking.config import backend_store_uri, install_sqlite_pragmas

if TYPE_CHECKING:
    from mlflow import MlflowClient


class MlflowStore:
    def __init__(self, database_url: str) -> None:
        self.uri = backend_store_uri(database_url)

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient  # heavy; only when the registry is used

        install_sqlite_pragmas()  # WAL and no fsync per commit, as MLflow's own server
        try:
            return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        except Exception as exc:
            raise BackendUnavailable(f"cannot open MLflow's store: {exc}") from None

    def ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

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
            return str(self.client.get_run(run_id).info.artifact_uri)
        except MlflowException:
            raise NotFound(f"MLflow run {run_id} does not exist") from None

    def logged_model_uri(self, run_id: str, name: str) -> str | None:
        """Where MLflow 3 keeps the model named ``name`` logged by a run (``None`` if the
        run logged none by that name; older models live among the run's artifacts)."""
        from mlflow.exceptions import MlflowException

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
        """Metrics, params and experiment id of a run (empty when there is none)."""
        if not run_id:
            return {}, {}, None
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return {}, {}, None
        return dict(run.data.metrics), dict(run.data.params), str(run.info.experiment_id)

    def aliases(self, name: str) -> dict[int, list[str]]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            return {}
        out: dict[int, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            out.setdefault(int(version), []).append(alias)
        return out

    def set_tag(self, name: str, version: int, key: str, value: str) -> None:
        self.client.set_model_version_tag(name, str(version), key, value)

    def tag(self, name: str, version: int, key: str) -> str | None:
        """A model version's tag, ``None`` when it (or the version) is not there."""
        return self.tags(name, version).get(key)

    def tags(self, name: str, version: int) -> dict[str, str]:
        """A model version's tags (none when the version is not there)."""
        from mlflow.exceptions import MlflowException

        try:
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
