"""What stands between a registered version's files and the code that loads them: its
digest (naming the files that changed), confinement to its own folder and the model
formats the platform and the workspace allow; and where those files are on this machine.
Registration runs the same checks before a version is recorded.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from slipway.core.artifacts import tree_hash
from slipway.registry.confinement import check_before_load, check_folder
from slipway.registry.formats import check_format
from slipway.registry.models import ModelTampered
from slipway.registry.reads import RegistryReads
from slipway.registry.resources import ModelVersion
from slipway.security.workspaces import workspace_model_formats

# A model version's per-file SHA-256 digests, as an MLflow tag (JSON, path -> digest),
# so that a digest mismatch can name the files; left out for trees too big for a tag.
FILES_TAG = "slipway.files"
FILES_TAG_LIMIT = 100_000


def on_object_store(root: str) -> bool:
    """Whether the artifact root is a URI other than a local ``file://`` one."""
    return "://" in root and not root.startswith("file://")


class VersionLoading(RegistryReads):
    """The registry's checks of a version's files, and its loading (a part of
    :class:`~slipway.registry.service.Registry`)."""

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
        if not on_object_store(self.settings.artifact_root):
            check_folder(self.local_dir(key))
            return
        with tempfile.TemporaryDirectory(prefix="slipway-confine-") as tmp:
            local = Path(tmp) / "model"
            self.artifacts.get_dir(key, local)
            check_folder(local)

    def local_dir(self, key: str) -> str:
        """A local folder holding the files under ``key`` (downloaded when remote)."""
        root = self.settings.artifact_root
        if "://" not in root or root.startswith("file://"):
            return str(Path(root.removeprefix("file://")) / key)
        target = Path(tempfile.mkdtemp(prefix="slipway-model-")) / "model"
        self.artifacts.get_dir(key, target)
        return str(target)
