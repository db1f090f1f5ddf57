"""The registry service: register, approve, alias, compare, trace and load model versions.

MLflow stays the system of record for registered models, versions and aliases (so users'
``mlflow`` code sees everything); Slipway records beside it, in its own tables, what MLflow
lacks — the approval status and its history, the digest of the model's files and the
lineage — and emits an event and an audit entry for every change. What a version returns
(labels, probabilities or both: :mod:`slipway.registry.outputs`) is an MLflow tag. A
version moves to another Slipway by export and import (:mod:`slipway.registry.transfer`).

:class:`Registry` is assembled from one part per job, each a base class in its own
module: :mod:`.reads` (what is registered, and the state the parts share),
:mod:`.registration`, :mod:`.approvals` (and the deployment policy), :mod:`.aliases` and
:mod:`.loading` (the digest, confinement and format checks before a version's files are
loaded). This module adds the registries of other workspaces and promotion between
platforms.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from slipway.core.artifacts import ArtifactStore
from slipway.core.db.engine import Database
from slipway.core.events import EventLog
from slipway.core.settings import Settings
from slipway.registry import transfer
from slipway.registry.aliases import Aliases
from slipway.registry.approvals import Approvals
from slipway.registry.archive import ModelExport
from slipway.registry.loading import FILES_TAG, FILES_TAG_LIMIT
from slipway.registry.mlflow_store import MlflowStore
from slipway.registry.registration import Registration
from slipway.registry.resources import ImportedVersion
from slipway.registry.tables import ModelVersionRow
from slipway.security.audit import AuditLog

__all__ = ["FILES_TAG", "FILES_TAG_LIMIT", "Registry"]


class Registry(Registration, Approvals, Aliases):
    """One workspace's registry (:meth:`in_workspace` gives another's): its models'
    versions in Slipway's tables and in MLflow's registry, in that workspace of both."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        artifacts: ArtifactStore,
        events: EventLog,
        audit: AuditLog,
        *,
        mlflow: MlflowStore | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.artifacts = artifacts
        self.events = events
        self.audit = audit
        self.mlflow = mlflow or MlflowStore(settings.database_url)
        self.workspace = self.mlflow.workspace
        self._workspaces: dict[str, Registry] = {}
        self._cache_lock = threading.Lock()

    def in_workspace(self, workspace: str) -> Registry:
        """The registry of ``workspace`` (a validated name): the same object each time."""
        if workspace == self.workspace:
            return self
        with self._cache_lock:
            registry = self._workspaces.get(workspace)
            if registry is None:
                registry = Registry(
                    self.settings,
                    self.db,
                    self.artifacts,
                    self.events,
                    self.audit,
                    mlflow=self.mlflow.in_workspace(workspace),
                )
                self._workspaces[workspace] = registry
            return registry

    # -- promotion between platforms ---------------------------------------------------

    def export_version(
        self, name: str, ref: int | str, *, platform: str | None = None
    ) -> ModelExport:
        """The version as an archive another Slipway imports (:mod:`.archive`): its files,
        checked against its digest as they are packed, with its metrics, lineage, card
        fields and approval history. ``platform`` is how the importer will name this
        one (the control plane's URL as its caller reached it; in process, the URL it
        serves on)."""
        return transfer.export_version(self, name, ref, platform=platform)

    def import_version(
        self, name: str, data: bytes, *, sha256: str, actor: str, may_approve: bool = True
    ) -> ImportedVersion:
        """Register the version exported from another Slipway in ``data`` as a version of
        ``name`` here (:func:`.transfer.import_version`): refused whole, before anything
        is written, unless the bytes match ``sha256`` and the files the digest the
        source recorded; the same source version imported twice is one version here."""
        return transfer.import_version(
            self, name, data, sha256=sha256, actor=actor, may_approve=may_approve
        )

    def promoted(self, name: str, origin: dict[str, Any]) -> int | None:
        """The version of ``name`` promoted from ``origin`` (its platform, workspace,
        name, version and digest, as an import records them), if there is one."""
        keys = ("platform", "workspace", "name", "version", "digest")
        with self.db.session() as session:
            rows = session.execute(
                select(ModelVersionRow.version, ModelVersionRow.lineage).where(
                    ModelVersionRow.workspace == self.workspace,
                    ModelVersionRow.model_name == name,
                )
            ).all()
        for version, lineage in rows:
            found = (lineage or {}).get("promoted_from") or {}
            if all(found.get(k) == origin[k] for k in keys):
                return int(version)
        return None
