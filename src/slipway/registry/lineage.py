"""What a model version was made from, recorded when it is registered.

A pydantic model that forbids unknown fields: it is also the ``lineage`` of the REST
registration body, where a misspelt key is an error naming it rather than lost.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class Lineage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str | None = None
    experiment_id: str | None = None
    pipeline: str | None = None
    pipeline_execution: str | None = None
    pipeline_step: str | None = None
    training_set: dict[str, Any] | None = None
    code_revision: dict[str, Any] | None = None
    data_digest: str | None = None
    # The champion/challenger comparison the registration was decided on (both models'
    # figures on the same rows, the rule, the verdict and its reason).
    comparison: dict[str, Any] | None = None
    # Reports computed on the evaluation set when it was registered, by name: "bias"
    # (Clarify-style metrics), "importance" (global mean |SHAP| per feature), ...
    reports: dict[str, Any] | None = None
    # A version promoted from another Slipway (registry/transfer.py): that platform's URL,
    # workspace, model name, version, digest, run and experiment ids and its own lineage,
    # as references — nothing here is looked up on this platform. Only an import writes
    # it; a registration naming it is refused.
    promoted_from: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @property
    def feature_groups(self) -> dict[str, int | None]:
        """Feature group → the Delta version read, from the training-set definition."""
        if not self.training_set:
            return {}
        versions: dict[str, int | None] = dict(self.training_set.get("group_versions", {}))
        for ref in self.training_set.get("feature_refs", []):
            versions.setdefault(str(ref).partition(":")[0], None)
        return versions

    @property
    def feature_view(self) -> dict[str, Any] | None:
        """The feature view the training set was computed for — ``{name, version,
        digest}`` — or None (no training set, or one of raw feature references). An
        endpoint enriching by a view refuses a version trained on another one."""
        if not self.training_set:
            return None
        view = self.training_set.get("feature_view")
        if not isinstance(view, dict) or not view.get("name"):
            return None
        version = view.get("version")
        digest = view.get("digest")
        return {
            "name": str(view["name"]),
            # A registration over REST writes this dict as it was sent: anything but a
            # whole number names no version, which no endpoint's pinned version matches.
            "version": version
            if isinstance(version, int) and not isinstance(version, bool)
            else None,
            "digest": digest if isinstance(digest, str) else None,
        }


def code_revision(path: Path | None = None) -> dict[str, Any] | None:
    """The git commit of ``path`` (default: the working directory), and whether the tree
    had uncommitted changes; ``None`` outside a repository or without git."""
    cwd = str(path or Path.cwd())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}
