"""Running helm on the chart: lint, and template into manifests the tests read."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "slipway"
# The Kubernetes release the chart is rendered for and its manifests are validated
# against (kubernetes-validate's schemas of that release, strict: no unknown field).
KUBERNETES_VERSION = "1.35.0"
# What an install needs at least (values.yaml: secret.databaseUrl is required).
DATABASE_URL = "postgresql://slipway:secret@postgres.db:5432/slipway"


@dataclass(frozen=True)
class Helm:
    binary: Path
    home: Path  # helm's config, cache and data folders: none of the user's

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=env, timeout=120
        )

    def template(
        self, *values: str, set_string: tuple[str, ...] = (), database: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``helm template`` of the chart with ``--set`` for each of ``values`` (and the
        database URL an install needs, unless ``database`` is false)."""
        args = ["template", "slipway", str(CHART), "--namespace", "ml"]
        args += ["--kube-version", KUBERNETES_VERSION]
        if database:
            args += ["--set", f"secret.databaseUrl={DATABASE_URL}"]
        for value in values:
            args += ["--set", value]
        for value in set_string:
            args += ["--set-string", value]
        return self.run(*args)

    def manifests(self, *values: str, set_string: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """The rendered resources; the test fails with helm's error if it renders none."""
        run = self.template(*values, set_string=set_string)
        assert run.returncode == 0, run.stderr
        return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The resources of ``kind``, by their component label (or name when they have none)."""
    found = {}
    for doc in manifests:
        if doc["kind"] == kind:
            labels = doc["metadata"].get("labels", {})
            found[labels.get("app.kubernetes.io/component", doc["metadata"]["name"])] = doc
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The one container of a Deployment's pods."""
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result
