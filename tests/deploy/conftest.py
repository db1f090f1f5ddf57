"""The deployment files' tools: helm (scripts/install-helm) and the Compose Specification's
schema (scripts/fetch-compose-schema). `make test` installs both before the suite runs;
a test run without them installs them here (the scripts do nothing when they are there)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.helm import Helm

REPO = Path(__file__).resolve().parents[2]


def _installed(script: str) -> Path:
    """Run ``scripts/<script>`` and return the path it prints; fail with its output."""
    run = subprocess.run(
        [str(REPO / "scripts" / script)], capture_output=True, text=True, timeout=1200
    )
    if run.returncode != 0:
        pytest.fail(f"scripts/{script} failed ({run.returncode}):\n{run.stderr}")
    path = Path(run.stdout.strip().splitlines()[-1])
    assert path.is_file(), f"scripts/{script} printed {path}, which is not a file"
    return path


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(_installed("install-helm"), home=tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def compose_schema() -> Path:
    return _installed("fetch-compose-schema")
