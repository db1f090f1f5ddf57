"""Registering a model version: its source resolved to its own files in the artifact
root, checked (confined, in an allowed format, with a signature) before any of its code
runs, and recorded in MLflow's registry and Slipway's tables in one place — which
promotion from another platform (:mod:`slipway.registry.transfer`) writes through too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slipway.core.artifacts import tree_hash
from slipway.core.clock import utcnow
from slipway.core.errors import InvalidInput
from slipway.core.locks import named_lock
from slipway.core.names import validate_name
from slipway.core.workspace import check_key_workspace
from slipway.registry import probe
from slipway.registry.archive import ExportedTransition
from slipway.registry.card import card_fields
from slipway.registry.lineage import Lineage
from slipway.registry.loading import FILES_TAG, FILES_TAG_LIMIT, VersionLoading, on_object_store
from slipway.registry.models import ApprovalStatus, Output
from slipway.registry.outputs import (
    CLASSES_TAG,
    OUTPUT_TAG,
    checked_classes,
    classes_tag,
    declared_classes,
    described_signature,
    native_flavor,
)
from slipway.registry.resources import ModelVersion
from slipway.registry.signatures import ensure_signature, read_mlmodel
from slipway.registry.sources import RUN_ID, check_source, key_for_path, key_for_uri
from slipway.registry.tables import ApprovalTransitionRow, ModelInputRow, ModelVersionRow


class Registration(VersionLoading):
    """Registering versions (a part of :class:`~slipway.registry.service.Registry`)."""

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
        if on_object_store(root) and not base_uri.startswith("mlflow-artifacts:"):
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

    def _declared_classes(self, key: str, declared: Output) -> list[Any] | None:
        """The classes of a version declared to return probabilities. A native model is
        loaded — unpickled, its code run — in a child process (:mod:`.probe`), never in
        this one; a pyfunc's are read from its signature."""
        meta = read_mlmodel(self.artifacts, key)
        if native_flavor(meta) is None:
            return declared_classes("", meta, declared)
        answer = probe.run("classes", self.local_dir(key), field="output", output=declared.value)
        return checked_classes(answer.get("classes"))
