"""The registry service: register, approve, alias, compare, trace and load model versions.

MLflow stays the system of record for registered models, versions and aliases (so users'
``mlflow`` code sees everything); Slipway records beside it, in its own tables, what MLflow
lacks — the approval status and its history, the digest of the model's files and the
lineage — and emits an event and an audit entry for every change. What a version returns
(labels, probabilities or both: :mod:`slipway.registry.outputs`) is an MLflow tag. A
version moves to another Slipway by export and import (:mod:`slipway.registry.transfer`).
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from slipway.core.artifacts import ArtifactStore, tree_hash
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.locks import named_lock
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.settings import Settings
from slipway.core.workspace import check_key_workspace, scoped_resource
from slipway.registry import probe, transfer
from slipway.registry.archive import ExportedTransition, ModelExport
from slipway.registry.card import INTENDED_USE_TAG, OWNER_TAG, card_fields
from slipway.registry.confinement import check_before_load, check_folder
from slipway.registry.formats import check_format
from slipway.registry.lineage import Lineage
from slipway.registry.mlflow_store import MlflowStore
from slipway.registry.models import ApprovalStatus, ModelTampered, Output
from slipway.registry.outputs import (
    CLASSES_TAG,
    OUTPUT_TAG,
    checked_classes,
    classes_tag,
    declared_classes,
    described_signature,
    native_flavor,
    read_tags,
)
from slipway.registry.resources import (
    Comparison,
    ImportedVersion,
    ModelInput,
    ModelVersion,
    RegisteredModel,
    Transition,
)
from slipway.registry.signatures import ensure_signature, read_mlmodel
from slipway.registry.sources import RUN_ID, check_source, key_for_path, key_for_uri
from slipway.registry.tables import ApprovalTransitionRow, ModelInputRow, ModelVersionRow
from slipway.security.audit import AuditLog
from slipway.security.workspaces import workspace_model_formats

# A model version's per-file SHA-256 digests, as an MLflow tag (JSON, path -> digest),
# so that a digest mismatch can name the files; left out for trees too big for a tag.
FILES_TAG = "slipway.files"
FILES_TAG_LIMIT = 100_000


def _on_object_store(root: str) -> bool:
    """Whether the artifact root is a URI other than a local ``file://`` one."""
    return "://" in root and not root.startswith("file://")


class Registry:
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

    def _resource(self, resource: str) -> str:
        """An event's or audit entry's resource, in this registry's workspace."""
        return scoped_resource(self.workspace, resource)

    # -- registration ----------------------------------------------------------------

    def resolve_source(self, source: str) -> tuple[str | None, str]:
        """(run id, artifact key) of a safe source (:mod:`slipway.registry.sources`) in this
        registry's workspace's share of the artifact root: another workspace's files are
        not its to register (``InvalidInput`` naming ``source``)."""
        run_id, key = self._resolve_source(source)
        check_key_workspace(key, self.workspace, field="source", shown=source)
        return run_id, key

    def _resolve_source(self, source: str) -> tuple[str | None, str]:
        kind, value = check_source(source)
        root = self.settings.artifact_root
        if kind == "key":
            return None, value
        if kind == "path":
            return None, key_for_path(source, value, root)
        run_id, _, path = value.partition("/")
        name, _, rest = path.partition("/")
        logged = self.mlflow.logged_model_uri(run_id, name)
        if logged is not None:
            base_uri, path = logged.rstrip("/"), rest
        else:
            base_uri = self.mlflow.run_artifact_uri(run_id).rstrip("/")
        if _on_object_store(root) and not base_uri.startswith("mlflow-artifacts:"):
            base = key_for_uri(source, base_uri, root)
        else:
            base_kind, base_value = check_source(base_uri)
            base = base_value if base_kind == "key" else key_for_path(base_uri, base_value, root)
        return run_id, f"{base}/{path}" if path else base

    def register(
        self,
        name: str,
        source: str,
        *,
        actor: str,
        description: str = "",
        lineage: Lineage | None = None,
        output: Output | str = Output.LABEL,
        owner: str = "",
        intended_use: str = "",
        run_id: str | None = None,
    ) -> ModelVersion:
        """Register the model at ``source`` as a new version, PendingManualApproval.

        ``output`` is what the version returns: ``label`` (the default), ``probabilities``
        or ``both``; declaring probabilities of a model that cannot produce them raises
        :class:`InvalidInput` naming ``output`` before anything is registered. ``run_id``
        names the run that produced a source which does not say (a logged model's
        folder, as MLflow's ``register_model`` sends it); a ``runs:/`` source's own run
        wins."""
        validate_name(name, field="name")
        card_tags = card_fields(owner, intended_use)
        declared = output if isinstance(output, Output) else Output.parse(output)
        if run_id is not None and not RUN_ID.fullmatch(run_id):
            raise InvalidInput("run_id must be a 32-character MLflow run id", field="run_id")
        source_run, key = self.resolve_source(source)
        run_id = source_run or run_id
        if not self.artifacts.exists(f"{key}/MLmodel"):
            raise InvalidInput(f"no MLflow model (MLmodel file) at {source!r}", field="source")
        record = lineage or Lineage()
        if record.promoted_from is not None:
            raise InvalidInput(
                "lineage.promoted_from is written by a promotion (POST …/imports) only",
                field="lineage.promoted_from",
            )
        # Before anything is recorded or any of the model's code runs (inferring a
        # signature or the classes loads it): what it references must be its own files,
        # in a format the platform agrees to load.
        self._check_confined(key)
        self.check_format(read_mlmodel(self.artifacts, key), field="source")
        signature = ensure_signature(self.artifacts, key)
        classes = None
        if declared is not Output.LABEL:  # loads the model: only when it must
            classes = self._declared_classes(key, declared)
        tags = {OUTPUT_TAG: declared.value, **card_tags}
        classes_text = classes_tag(classes)
        if classes_text is not None:
            tags[CLASSES_TAG] = classes_text
        files = self.artifacts.file_digests(key)
        digest = tree_hash(files)
        metrics, params, experiment_id = self.mlflow.run_data(run_id)
        record = record.model_copy(
            update={"run_id": run_id or record.run_id, "experiment_id": experiment_id}
        )
        version, now = self.record_version(
            name,
            key=key,
            source=source,
            run_id=run_id,
            description=description,
            tags=tags,
            signature=signature,
            files=files,
            lineage=record,
            actor=actor,
        )
        self.audit.record(
            actor=actor,
            action="model.register",
            resource=self._resource(f"model/{name}/{version}"),
            outcome="success",
            details={"source": source, "digest": digest, "output": declared.value},
        )
        return ModelVersion(
            name=name,
            version=version,
            run_id=run_id,
            source=source,
            artifact_key=key,
            approval_status=ApprovalStatus.PENDING,
            digest=digest,
            signature=described_signature(signature, declared, classes),
            lineage=record.to_dict(),
            description=description,
            registered_by=actor,
            registered_at=now,
            metrics=metrics,
            params=params,
            output=declared,
            classes=classes,
            owner=owner,
            intended_use=intended_use,
        )

    def record_version(
        self,
        name: str,
        *,
        key: str,
        source: str,
        run_id: str | None,
        description: str,
        tags: dict[str, str],
        signature: dict[str, Any],
        files: dict[str, str],
        lineage: Lineage,
        actor: str,
        status: ApprovalStatus = ApprovalStatus.PENDING,
        comment: str = "registered",
        history: Sequence[ExportedTransition] = (),
    ) -> tuple[int, datetime]:
        """Write a new version of ``name`` whose files (checked by the caller: confined,
        in an allowed format, with a signature) are under ``key``: MLflow's version, then
        Slipway's row, its approval history (``history`` first, as it happened elsewhere,
        then this change to ``status``), its feature-group inputs and the registration
        event in one transaction. The one place a version is written — registration and
        promotion both come here. Returns (version, time registered)."""
        digest = tree_hash(files)
        with named_lock(self.db, self._resource(f"registry/{name}")):
            self.mlflow.ensure_registered_model(name)
            version = self.mlflow.create_version(
                name,
                source=self.artifacts.uri(key),
                run_id=run_id,
                description=description,
                tags=tags,
            )
            now = utcnow()
            with self.db.write() as session:
                session.add(
                    ModelVersionRow(
                        workspace=self.workspace,
                        model_name=name,
                        version=version,
                        run_id=run_id,
                        source=source,
                        artifact_key=key,
                        approval_status=status.value,
                        digest=digest,
                        signature=signature,
                        lineage=lineage.to_dict(),
                        description=description,
                        registered_by=actor,
                        registered_at=now,
                        updated_at=now,
                    )
                )
                for past in history:
                    session.add(
                        ApprovalTransitionRow(
                            workspace=self.workspace,
                            model_name=name,
                            version=version,
                            from_status=past.from_status.value if past.from_status else None,
                            to_status=past.to_status.value,
                            actor=past.actor,
                            comment=past.comment,
                            time=past.time,
                        )
                    )
                session.add(
                    ApprovalTransitionRow(
                        workspace=self.workspace,
                        model_name=name,
                        version=version,
                        from_status=history[-1].to_status.value if history else None,
                        to_status=status.value,
                        actor=actor,
                        comment=comment,
                        time=now,
                    )
                )
                for group, delta_version in lineage.feature_groups.items():
                    session.add(
                        ModelInputRow(
                            workspace=self.workspace,
                            model_name=name,
                            version=version,
                            feature_group=group,
                            delta_version=delta_version,
                        )
                    )
                payload: dict[str, Any] = {"digest": digest, "run_id": run_id}
                if lineage.promoted_from is not None:
                    payload["promoted_from"] = lineage.promoted_from
                self.events.append(
                    "model.registered",
                    self._resource(f"model/{name}/{version}"),
                    payload,
                    session=session,
                )
        self.mlflow.set_tag(name, version, "slipway.approval_status", status.value)
        manifest = json.dumps(files, sort_keys=True)
        if len(manifest) <= FILES_TAG_LIMIT:
            self.mlflow.set_tag(name, version, FILES_TAG, manifest)
        return version, now

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

    # -- reads -----------------------------------------------------------------------

    def _row(self, name: str, version: int) -> ModelVersionRow:
        with self.db.session() as session:
            row = session.get(ModelVersionRow, (self.workspace, name, version))
            if row is None:
                raise NotFound(f"model {name!r} has no version {version}")
            return row

    def _to_version(
        self, row: ModelVersionRow, aliases: dict[int, list[str]], tags: dict[str, str]
    ) -> ModelVersion:
        metrics, params, _ = self.mlflow.run_data(row.run_id)
        try:
            output, classes = read_tags(tags)
        except InvalidInput:  # a tag edited by hand into nonsense: what it was before tags
            output, classes = Output.LABEL, None
        return ModelVersion(
            name=row.model_name,
            version=row.version,
            run_id=row.run_id,
            source=row.source,
            artifact_key=row.artifact_key,
            approval_status=ApprovalStatus(row.approval_status),
            digest=row.digest,
            signature=described_signature(row.signature, output, classes),
            lineage=row.lineage,
            description=row.description,
            registered_by=row.registered_by,
            registered_at=row.registered_at,
            aliases=sorted(aliases.get(row.version, [])),
            metrics=metrics,
            params=params,
            output=output,
            classes=classes,
            owner=tags.get(OWNER_TAG, ""),
            intended_use=tags.get(INTENDED_USE_TAG, ""),
        )

    def get(self, name: str, ref: int | str) -> ModelVersion:
        """A version by number, or by alias (``champion``)."""
        version = self.resolve(name, ref)
        row = self._row(name, version)
        return self._to_version(row, self.mlflow.aliases(name), self.mlflow.tags(name, version))

    def resolve(self, name: str, ref: int | str) -> int:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return int(ref)
        aliases = self.mlflow.aliases(name)
        for version, names in aliases.items():
            if ref in names:
                return version
        raise NotFound(f"model {name!r} has no alias {ref!r}")

    def versions(self, name: str) -> Listing[ModelVersion]:
        with self.db.session() as session:
            rows = list(
                session.scalars(
                    select(ModelVersionRow)
                    .where(
                        ModelVersionRow.workspace == self.workspace,
                        ModelVersionRow.model_name == name,
                    )
                    .order_by(ModelVersionRow.version)
                )
            )
        if not rows:
            raise NotFound(f"model {name!r} does not exist")
        aliases = self.mlflow.aliases(name)
        tags = self.mlflow.tags_by_version(name)
        return Listing(self._to_version(row, aliases, tags.get(row.version, {})) for row in rows)

    def models(self) -> Listing[RegisteredModel]:
        """Every model with its version count, latest version (and its approval status),
        approved versions and last change: three queries whatever the number of models,
        none to MLflow (the console's model dashboard lists them all on every load)."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    ModelVersionRow.model_name,
                    func.count(),
                    func.max(ModelVersionRow.version),
                    func.max(ModelVersionRow.updated_at),
                )
                .where(ModelVersionRow.workspace == self.workspace)
                .group_by(ModelVersionRow.model_name)
                .order_by(ModelVersionRow.model_name)
            ).all()
            approved = session.execute(
                select(ModelVersionRow.model_name, ModelVersionRow.version).where(
                    ModelVersionRow.workspace == self.workspace,
                    ModelVersionRow.approval_status == ApprovalStatus.APPROVED.value,
                )
            ).all()
            newest = (
                select(
                    ModelVersionRow.model_name.label("name"),
                    func.max(ModelVersionRow.version).label("version"),
                )
                .where(ModelVersionRow.workspace == self.workspace)
                .group_by(ModelVersionRow.model_name)
                .subquery()
            )
            statuses = dict(
                session.execute(
                    select(ModelVersionRow.model_name, ModelVersionRow.approval_status)
                    .join(
                        newest,
                        (ModelVersionRow.model_name == newest.c.name)
                        & (ModelVersionRow.version == newest.c.version),
                    )
                    .where(ModelVersionRow.workspace == self.workspace)
                ).all()
            )
        by_model: dict[str, list[int]] = {}
        for model, version in approved:
            by_model.setdefault(model, []).append(version)
        return Listing(
            RegisteredModel(
                name=model,
                versions=count,
                latest=latest,
                approved=sorted(by_model.get(model, [])),
                latest_status=ApprovalStatus(statuses[model]) if model in statuses else None,
                updated_at=updated,
            )
            for model, count, latest, updated in rows
        )

    def transitions(self, name: str, version: int) -> Listing[Transition]:
        """The version's approval history, oldest first (its registration is the first);
        :class:`NotFound` when there is no such version."""
        self._row(name, version)
        with self.db.session() as session:
            rows = session.scalars(
                select(ApprovalTransitionRow)
                .where(
                    ApprovalTransitionRow.workspace == self.workspace,
                    ApprovalTransitionRow.model_name == name,
                    ApprovalTransitionRow.version == version,
                )
                .order_by(ApprovalTransitionRow.id)
            )
            return Listing(
                Transition(
                    name=r.model_name,
                    version=r.version,
                    from_status=r.from_status,
                    to_status=r.to_status,
                    actor=r.actor,
                    comment=r.comment,
                    time=r.time,
                )
                for r in rows
            )

    def compare(self, name: str, refs: list[int | str]) -> Comparison:
        """Metrics and params of two or more versions side by side."""
        if len(refs) < 2:
            raise InvalidInput("compare at least two versions", field="versions")
        versions = [self.get(name, ref) for ref in refs]
        metric_names = sorted({m for v in versions for m in v.metrics})
        param_names = sorted({p for v in versions for p in v.params})
        return Comparison(
            versions=[v.version for v in versions],
            approval_status=[v.approval_status for v in versions],
            metrics={m: [v.metrics.get(m) for v in versions] for m in metric_names},
            params={p: [v.params.get(p) for v in versions] for p in param_names},
        )

    def trained_on(
        self, feature_group: str, delta_version: int | None = None
    ) -> Listing[ModelInput]:
        """Reverse lineage: the model versions trained on a feature group (at a version)."""
        query = select(ModelInputRow).where(
            ModelInputRow.workspace == self.workspace,
            ModelInputRow.feature_group == feature_group,
        )
        if delta_version is not None:
            query = query.where(ModelInputRow.delta_version == delta_version)
        with self.db.session() as session:
            rows = session.scalars(query.order_by(ModelInputRow.model_name, ModelInputRow.version))
            return Listing(
                ModelInput(
                    model=r.model_name,
                    version=r.version,
                    feature_group=r.feature_group,
                    delta_version=r.delta_version,
                )
                for r in rows
            )

    # -- changes ---------------------------------------------------------------------

    def set_approval(
        self,
        name: str,
        version: int,
        status: ApprovalStatus | str,
        *,
        actor: str,
        comment: str = "",
        author_may_approve: bool = True,
    ) -> ModelVersion:
        """Move a version to a new approval status, recording who, when and why.

        ``author_may_approve`` False: segregation of duties — ``actor`` may not approve a
        version it registered (:class:`Forbidden`). The faces that know who is calling
        (the control plane, for a token) pass ``registry.allow_self_approval``; code in
        process (the SDK, a pipeline's own gate approving what it measured) names its
        actor itself, so for it the rule would prove nothing."""
        target = status if isinstance(status, ApprovalStatus) else ApprovalStatus.parse(status)
        now = utcnow()
        with self.db.write() as session:
            row = session.get(
                ModelVersionRow, (self.workspace, name, version), with_for_update=True
            )
            if row is None:
                raise NotFound(f"model {name!r} has no version {version}")
            if (
                target is ApprovalStatus.APPROVED
                and not author_may_approve
                and row.registered_by == actor
            ):
                raise Forbidden(
                    f"{actor} registered {name} version {version} and may not approve it too:"
                    " another approver must (segregation of duties;"
                    " registry.allow_self_approval turns this off)"
                )
            previous = row.approval_status
            if previous == target.value:
                raise Conflict(f"{name} version {version} is already {target.value}")
            row.approval_status = target.value
            row.updated_at = now
            session.add(
                ApprovalTransitionRow(
                    workspace=self.workspace,
                    model_name=name,
                    version=version,
                    from_status=previous,
                    to_status=target.value,
                    actor=actor,
                    comment=comment,
                    time=now,
                )
            )
            self.events.append(
                "model.approval_changed",
                self._resource(f"model/{name}/{version}"),
                {"from": previous, "to": target.value, "actor": actor, "comment": comment},
                session=session,
            )
        self.mlflow.set_tag(name, version, "slipway.approval_status", target.value)
        self.audit.record(
            actor=actor,
            action=f"model.{target.name.lower()}",
            resource=self._resource(f"model/{name}/{version}"),
            outcome="success",
            details={"from": previous, "to": target.value, "comment": comment},
        )
        return self.get(name, version)

    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> ModelVersion:
        """Point ``alias`` at ``version``. MLflow's own alias write is a check-then-insert
        that fails under concurrency, so moves of a model's aliases are serialized."""
        validate_name(alias, field="alias")
        if alias.isdigit():
            raise InvalidInput("an alias cannot be a number", field="alias")
        self._row(name, version)
        with named_lock(self.db, self._resource(f"registry/{name}")):
            previous = self.mlflow.aliases(name)
            old = next((v for v, names in previous.items() if alias in names), None)
            self.mlflow.set_alias(name, alias, version)
        self.events.append(
            "model.alias_set",
            self._resource(f"model/{name}"),
            {"alias": alias, "version": version, "previous": old},
        )
        self.audit.record(
            actor=actor,
            action="model.alias",
            resource=self._resource(f"model/{name}@{alias}"),
            outcome="success",
            details={"version": version, "previous": old},
        )
        return self.get(name, version)

    def delete_alias(self, name: str, alias: str, *, actor: str) -> None:
        self.resolve(name, alias)
        with named_lock(self.db, self._resource(f"registry/{name}")):
            self.mlflow.delete_alias(name, alias)
        self.events.append("model.alias_deleted", self._resource(f"model/{name}"), {"alias": alias})
        self.audit.record(
            actor=actor,
            action="model.alias_delete",
            resource=self._resource(f"model/{name}@{alias}"),
            outcome="success",
        )

    # -- deployment policy and loading ------------------------------------------------

    def check_deployable(self, name: str, ref: int | str, environment: str) -> ModelVersion:
        """Refuse versions the environment's policy forbids: Rejected ones everywhere, and
        any not Approved outside the declared sandboxes (``registry.sandbox_environments``)."""
        version = self.get(name, ref)
        if version.approval_status is ApprovalStatus.REJECTED:
            raise Forbidden(f"{name} version {version.version} is Rejected and cannot be deployed")
        sandbox = environment in self.settings.registry.sandbox_environments
        if not sandbox and version.approval_status is not ApprovalStatus.APPROVED:
            raise Forbidden(
                f"{environment} is not a sandbox environment (registry.sandbox_environments):"
                f" it deploys only Approved versions; {name} version {version.version} is"
                f" {version.approval_status.value}"
            )
        return version

    def verify(self, name: str, ref: int | str) -> ModelVersion:
        """Check the model's files against the digest recorded at registration; on a
        mismatch the error names the files that changed, went missing or appeared."""
        version = self.get(name, ref)
        files = self.artifacts.file_digests(version.artifact_key)
        actual = tree_hash(files)
        if actual != version.digest:
            changes = self._changed_files(version, files)
            details: dict[str, Any] = {"expected": version.digest, "actual": actual}
            what = ""
            if changes is not None:
                details["files"] = changes
                what = ": " + "; ".join(
                    f"{kind} {', '.join(paths[:5])}" + (" …" if len(paths) > 5 else "")
                    for kind, paths in changes.items()
                    if paths
                )
            self.events.append(
                "model.digest_mismatch",
                self._resource(f"model/{name}/{version.version}"),
                details,
            )
            raise ModelTampered(
                f"{name} version {version.version}: the model's files changed since"
                f" registration (digest mismatch){what}; refusing to load it",
                details=details,
            )
        return version

    def _changed_files(
        self, version: ModelVersion, files: dict[str, str]
    ) -> dict[str, list[str]] | None:
        """Which files differ from the per-file digests recorded at registration (the
        ``slipway.files`` tag), or ``None`` when there is no trustworthy record: versions
        registered before it existed, or a tag edited since — the list must hash to the
        digest in Slipway's own table to be believed."""
        raw = self.mlflow.tag(version.name, version.version, FILES_TAG)
        try:
            recorded = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not isinstance(recorded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in recorded.items()
        ):
            return None
        try:
            if tree_hash(recorded) != version.digest:
                return None
        except ValueError:  # a name that is not ASCII: not what registration wrote
            return None
        return {
            "changed": sorted(p for p in recorded if p in files and files[p] != recorded[p]),
            "missing": sorted(p for p in recorded if p not in files),
            "added": sorted(p for p in files if p not in recorded),
        }

    def load(self, name: str, ref: int | str, *, loader: Callable[[str], Any] | None = None) -> Any:
        """The version's model (MLflow pyfunc unless ``loader`` says otherwise), loaded only
        after its files match the digest recorded at registration."""
        version = self.verify(name, ref)
        import mlflow.pyfunc  # heavy; only when a model is loaded

        load = loader or mlflow.pyfunc.load_model
        local = self.local_dir(version.artifact_key)
        self.check_loadable(local)  # before the loader imports or reads anything
        return load(local)

    def check_loadable(self, local: str) -> None:
        """What every load of a version's files in ``local`` does first: confinement
        (:func:`~slipway.registry.confinement.check_before_load`) and the platform's
        formats (``registry.allowed_model_formats``, which may have narrowed since the
        version was registered). Reads the ``MLmodel`` file only."""
        check_before_load(local)
        meta = yaml.safe_load((Path(local) / "MLmodel").read_text())
        self.check_format(meta, field="model")

    def check_format(self, meta: dict[str, Any], *, field: str) -> None:
        """The platform's formats (``registry.allowed_model_formats``), then this
        workspace's own when it has a list (``slipway workspaces formats``): a version is
        registered and loaded only in a format both admit. Read at each check, so a
        narrowed policy holds from the next load on."""
        check_format(meta, self.settings.registry.allowed_model_formats, field=field)
        own = workspace_model_formats(self.db, self.workspace)
        if own is not None:
            check_format(
                meta, own, field=field, policy=f"workspace {self.workspace}'s model formats"
            )

    def _check_confined(self, key: str) -> None:
        """Refuse the model under ``key`` if its MLmodel or its symlinks reach outside its
        folder (:mod:`slipway.registry.confinement`); on an object store, on a copy."""
        if not _on_object_store(self.settings.artifact_root):
            check_folder(self.local_dir(key))
            return
        with tempfile.TemporaryDirectory(prefix="slipway-confine-") as tmp:
            local = Path(tmp) / "model"
            self.artifacts.get_dir(key, local)
            check_folder(local)

    def _declared_classes(self, key: str, declared: Output) -> list[Any] | None:
        """The classes of a version declared to return probabilities. A native model is
        loaded — unpickled, its code run — in a child process (:mod:`.probe`), never in
        this one; a pyfunc's are read from its signature."""
        meta = read_mlmodel(self.artifacts, key)
        if native_flavor(meta) is None:
            return declared_classes("", meta, declared)
        answer = probe.run("classes", self.local_dir(key), field="output", output=declared.value)
        return checked_classes(answer.get("classes"))

    def local_dir(self, key: str) -> str:
        """A local folder holding the files under ``key`` (downloaded when remote)."""
        root = self.settings.artifact_root
        if "://" not in root or root.startswith("file://"):
            return str(Path(root.removeprefix("file://")) / key)
        target = Path(tempfile.mkdtemp(prefix="slipway-model-")) / "model"
        self.artifacts.get_dir(key, target)
        return str(target)
