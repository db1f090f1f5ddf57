"""The layering of DESIGN.md §3 is checked by import-linter's contracts (pyproject.toml),
run by `make test`: here, that they hold on this tree and that a wrong import fails them
(so the check can fail at all)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(source_root)  # ahead of the installed (editable) slipway
    return subprocess.run(
        [str(LINT), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    shutil.copytree(
        REPO / "src" / "slipway", root / "slipway", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


def test_the_contracts_hold_on_this_tree(tmp_path: Path) -> None:
    result = _lint(REPO / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_core_importing_a_face_breaks_a_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    clock = root / "slipway" / "core" / "clock.py"
    clock.write_text(clock.read_text() + "\nimport slipway.api.app  # noqa\n")
    result = _lint(root, tmp_path)
    assert result.returncode != 0
    assert "core imports no capability and no face BROKEN" in result.stdout
    assert "slipway.core.clock -> slipway.api.app" in result.stdout


def test_a_new_cycle_breaks_a_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    # registry -> monitoring closes a cycle (monitoring reads the registry).
    card = root / "slipway" / "registry" / "card.py"
    card.write_text(card.read_text() + "\nimport slipway.monitoring.bias  # noqa\n")
    result = _lint(root, tmp_path)
    assert result.returncode != 0
    assert "no import cycles between sibling packages BROKEN" in result.stdout
