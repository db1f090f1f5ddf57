"""Moving a model version between Slipway platforms: export on the source, import on the
target (``slipway models promote``; :mod:`slipway.registry.promotion` drives both).

Export packs the version's files — checked against its digest as they are read — with
what the source knows of it (:mod:`slipway.registry.archive`). Import refuses the whole
archive before anything is written unless, in this order: its bytes hash to the SHA-256
the caller declared (what left the source is what arrived), every member is a safe
name, the files hash to the digest the manifest carries (the source's registry record),
they reference only themselves and are in a format this platform loads, and they carry
an input signature (none is inferred: nothing of the archive's runs here). Then, under
a lock on the model's imports:

- the same source version (platform, workspace, name, version, digest) promoted before
  is answered with the version it became — promoting twice is a no-op;
- otherwise the metrics and params become a finished MLflow run of the experiment
  ``slipway-promotions`` (so every face shows them as any version's), the files its
  artifacts, and the version is recorded with the source's approval history (actors
  named with their platform) followed by this import, PendingManualApproval unless
  ``registry.promotion_status`` is Approved, the version was Approved at its source and
  the caller may approve here. Its lineage keeps the source's as references
  (``promoted_from``): URL, name, version, run — nothing that is looked up here.

A failure after the run is made removes the run's files and deletes the run: a
version is there whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from slipway.core.artifacts import tree_hash
from slipway.core.clock import utcnow
from slipway.core.errors import Forbidden, InvalidInput
from slipway.core.locks import named_lock
from slipway.core.names import validate_name
from slipway.core.workspace import scoped_resource
from slipway.registry.archive import (
    ExportedTransition,
    ExportManifest,
    ModelExport,
    file_digests,
    pack,
    unpack,
)
from slipway.registry.card import card_fields
from slipway.registry.confinement import check_folder
from slipway.registry.lineage import Lineage
from slipway.registry.models import ApprovalStatus, ModelTampered, Output
from slipway.registry.outputs import CLASSES_TAG, OUTPUT_TAG, checked_classes, classes_tag
from slipway.registry.resources import ImportedVersion

if TYPE_CHECKING:
    from slipway.core.settings import Settings
    from slipway.registry.service import Registry

EXPERIMENT = "slipway-promotions"
PROMOTED_TAG = "slipway.promoted_from"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The identity of a source version: what makes a second import of it a no-op.
ORIGIN_KEYS = ("platform", "workspace", "name", "version", "digest")


def served_url(settings: Settings) -> str:
    """The URL this platform's control plane serves on, as its settings say: how an
    in-process export names its platform."""
    host = settings.server.host
    host = f"[{host}]" if ":" in host else host
    return f"{settings.tls.scheme}://{host}:{settings.server.port}"


# ---------------------------------------------------------------------------------- export


def export_version(
    registry: Registry, name: str, ref: int | str, *, platform: str | None
) -> ModelExport:
    """The version as an archive (see the module's docstring)."""
    version = registry.verify(name, ref)  # a changed file is named before anything is read
    files = registry.artifacts.file_digests(version.artifact_key)
    history = registry.transitions(name, version.version)
    manifest = ExportManifest(
        platform=platform or served_url(registry.settings),
        workspace=registry.workspace,
        name=name,
        version=version.version,
        digest=version.digest,
        files=files,
        approval_status=version.approval_status,
        approvals=[
            ExportedTransition(
                from_status=t.from_status,
                to_status=t.to_status,
                actor=t.actor,
                comment=t.comment,
                time=t.time,
            )
            for t in history
        ],
        run_id=version.run_id,
        experiment_id=version.lineage.get("experiment_id"),
        metrics=version.metrics,
        params=version.params,
        lineage=version.lineage,
        description=version.description,
        output=version.output,
        classes=version.classes,
        owner=version.owner,
        intended_use=version.intended_use,
        registered_by=version.registered_by,
        registered_at=version.registered_at,
        exported_at=utcnow(),
    )
    key = version.artifact_key
    data, packed = pack(manifest, lambda rel: registry.artifacts.open(f"{key}/{rel}"))
    if packed != version.digest:
        raise ModelTampered(
            f"{name} version {version.version}: the model's files changed while they were"
            " exported (digest mismatch); refusing to export them",
            details={"expected": version.digest, "actual": packed},
        )
    return ModelExport(manifest=manifest, data=data, sha256=hashlib.sha256(data).hexdigest())


# ---------------------------------------------------------------------------------- import


def import_version(
    registry: Registry,
    name: str,
    data: bytes,
    *,
    sha256: str,
    actor: str,
    may_approve: bool = True,
) -> ImportedVersion:
    """Register the exported version in ``data`` as a version of ``name`` (see the
    module's docstring); ``may_approve``: whether the caller may approve versions here
    (a promotion keeps its source's approval only then)."""
    validate_name(name, field="name")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidInput("sha256 must be 64 lower-case hex digits", field="sha256")
    received = hashlib.sha256(data).hexdigest()
    if received != sha256:
        raise ModelTampered(
            f"import of {name}: the archive does not match its declared SHA-256 (expected"
            f" {sha256[:12]}…, received {received[:12]}…): it changed in transit; nothing"
            " was registered",
            details={"field": "sha256", "expected": sha256, "actual": received},
        )
    limits = registry.settings.registry
    with tempfile.TemporaryDirectory(prefix="slipway-import-") as tmp:
        folder = Path(tmp) / "model"
        manifest = unpack(
            data, folder, max_files=100_000, max_bytes=limits.max_import_unpacked_bytes
        )
        files = file_digests(folder)
        _check_digest(name, manifest, files)
        signature, tags = _admitted(registry, manifest, folder)
        origin = {
            "platform": manifest.platform,
            "workspace": manifest.workspace,
            "name": manifest.name,
            "version": manifest.version,
            "digest": manifest.digest,
        }
        with named_lock(
            registry.db, scoped_resource(registry.workspace, f"registry-imports/{name}")
        ):
            existing = registry.promoted(name, origin)
            if existing is not None:
                return ImportedVersion(created=False, version=registry.get(name, existing))
            status = (
                ApprovalStatus.APPROVED
                if limits.promotion_status == ApprovalStatus.APPROVED.value
                and manifest.approval_status is ApprovalStatus.APPROVED
                and may_approve
                else ApprovalStatus.PENDING
            )
            version = _record(
                registry,
                name,
                manifest,
                folder,
                files,
                origin=origin,
                signature=signature,
                tags=tags,
                status=status,
                actor=actor,
            )
    registry.audit.record(
        actor=actor,
        action="model.import",
        resource=scoped_resource(registry.workspace, f"model/{name}/{version}"),
        outcome="success",
        details={**origin, "status": status.value},
    )
    return ImportedVersion(created=True, version=registry.get(name, version))


def _check_digest(name: str, manifest: ExportManifest, files: dict[str, str]) -> None:
    """The unpacked files against the source's digest; a mismatch names the files."""
    actual = tree_hash(files)
    if actual == manifest.digest:
        return
    listed = manifest.files
    changes = {
        "changed": sorted(p for p in listed if p in files and files[p] != listed[p]),
        "missing": sorted(p for p in listed if p not in files),
        "added": sorted(p for p in files if p not in listed),
    }
    what = "; ".join(f"{kind} {', '.join(paths[:5])}" for kind, paths in changes.items() if paths)
    raise ModelTampered(
        f"import of {name}: the model's files do not match the digest the source recorded"
        f" ({what or 'digest mismatch'}); nothing was registered",
        details={"expected": manifest.digest, "actual": actual, "files": changes},
    )


def _admitted(
    registry: Registry, manifest: ExportManifest, folder: Path
) -> tuple[dict[str, Any], dict[str, str]]:
    """What registration checks of a model, on the unpacked files and without running
    any of them: confined, an allowed format, a signature present; the output, classes
    and card fields the manifest declares, checked. (signature, version tags)."""
    if manifest.approval_status is ApprovalStatus.REJECTED:
        raise Forbidden(
            f"{manifest.name} version {manifest.version} is Rejected at {manifest.platform}"
            " and cannot be promoted"
        )
    if not (folder / "MLmodel").is_file():
        raise InvalidInput("archive: no MLmodel file under model/", field="archive")
    check_folder(folder)
    try:
        meta = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"archive: MLmodel does not read: {exc}", field="archive") from None
    if not isinstance(meta, dict):
        raise InvalidInput("archive: the MLmodel file is not a mapping", field="archive")
    registry.check_format(meta, field="archive")
    signature = meta.get("signature")
    if not isinstance(signature, dict) or not signature.get("inputs"):
        raise InvalidInput(
            "archive: the model has no input signature (its source registered it with one)",
            field="archive",
        )
    tags = {OUTPUT_TAG: manifest.output.value, **card_fields(manifest.owner, manifest.intended_use)}
    if manifest.output is not Output.LABEL:
        try:
            classes = checked_classes(manifest.classes)
        except InvalidInput as exc:
            raise InvalidInput(exc.message, field="manifest.classes") from None
        text = classes_tag(classes)
        if text is not None:
            tags[CLASSES_TAG] = text
    return dict(signature), tags


def _record(
    registry: Registry,
    name: str,
    manifest: ExportManifest,
    folder: Path,
    files: dict[str, str],
    *,
    origin: dict[str, Any],
    signature: dict[str, Any],
    tags: dict[str, str],
    status: ApprovalStatus,
    actor: str,
) -> int:
    """The run holding the metrics and files, then the version; undone on failure."""
    promoted_from = {
        **origin,
        "run_id": manifest.run_id,
        "experiment_id": manifest.experiment_id,
        "approval_status": manifest.approval_status.value,
        "registered_by": manifest.registered_by,
        "registered_at": manifest.registered_at.isoformat(),
        "exported_at": manifest.exported_at.isoformat(),
        "lineage": manifest.lineage,
    }
    where = f"{manifest.platform} ({manifest.workspace})"
    mlflow = registry.mlflow
    experiment = mlflow.experiment_id(EXPERIMENT, registry.settings.artifact_root)
    run_id = mlflow.create_run(
        experiment,
        name=f"{manifest.name}-v{manifest.version}",
        tags={PROMOTED_TAG: json.dumps(origin, sort_keys=True)},
        metrics=manifest.metrics,
        params=manifest.params,
    )
    key: str | None = None
    try:
        source = f"runs:/{run_id}/model"
        _, key = registry.resolve_source(source)
        registry.artifacts.put_dir(key, folder)
        stored = registry.artifacts.file_digests(key)
        if stored != files:
            raise ModelTampered(
                f"import of {name}: the copy in the artifact store does not match the"
                " files received; nothing was registered",
                details={"expected": manifest.digest, "actual": tree_hash(stored)},
            )
        history = [
            past.model_copy(update={"actor": f"{past.actor} at {where}"[:255]})
            for past in manifest.approvals
        ]
        version, _ = registry.record_version(
            name,
            key=key,
            source=source,
            run_id=run_id,
            description=manifest.description,
            tags={**tags, PROMOTED_TAG: json.dumps(origin, sort_keys=True)},
            signature=signature,
            files=files,
            lineage=Lineage(run_id=run_id, experiment_id=experiment, promoted_from=promoted_from),
            actor=actor,
            status=status,
            comment=f"promoted from {where}: {manifest.name} version {manifest.version}"
            f" ({manifest.approval_status.value} there)",
            history=history,
        )
    except BaseException:
        if key is not None and registry.artifacts.list(key):
            registry.artifacts.delete(key)
        mlflow.delete_run(run_id)
        raise
    return version


__all__ = ["EXPERIMENT", "PROMOTED_TAG", "export_version", "import_version", "served_url"]
