"""What loading the CLI, and the processes ``slipway up`` starts, import — checked by the
modules loaded, not by time.

Every ``slipway`` run (and each of ``slipway up``'s children: control plane, scheduler,
gateway, workers) pays for what it imports before it does anything. The CLI imports a
command's capability when the command runs (slipway/cli/context.py), so ``slipway
--help``, any command's help and a command that opens no platform load none of the
platform; and the platform itself imports SciPy, Optuna, Kafka's and Redis's clients only
where they are used. Each check runs in a fresh interpreter: this one has long since
imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Modules the CLI must not load until a command needs them: the platform, its capabilities'
# heavy dependencies, the control plane's app and the remote client.
CLI_HEAVY = (
    "slipway.services",
    "slipway.api.app",
    "slipway.client",
    "scipy",
    "sklearn",
    "mlflow",
    "optuna",
    "duckdb",
    "deltalake",
    "pandas",
    "pyarrow",
    "numpy",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "uvicorn",
    "httpx",
    "redis",
    "confluent_kafka",
)

# Imported by the platform's processes only where used: drift scoring (SciPy), tuning
# (Optuna), a Kafka publisher, a Redis online store (the default store is SQLite).
PLATFORM_HEAVY = ("scipy", "sklearn", "mlflow", "optuna", "confluent_kafka", "redis")

_LOADED = """
import json, sys
heavy = json.loads(sys.argv[2])
def report():
    with open(sys.argv[1], "w") as out:
        json.dump(sorted(m for m in heavy if m in sys.modules), out)
"""

_RUN_CLI = (
    _LOADED
    + """
from slipway.cli.main import app
try:
    app(sys.argv[3:], prog_name="slipway")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
report()
sys.exit(code)
"""
)

_EVERY_HELP = (
    _LOADED
    + """
import click, typer.main
from slipway.cli.main import app
root = typer.main.get_command(app)
def walk(command, parent, name):
    ctx = click.Context(command, info_name=name, parent=parent)
    command.get_help(ctx)
    for sub in getattr(command, "commands", {}).values():
        walk(sub, ctx, sub.name)
walk(root, None, "slipway")
report()
"""
)

_IMPORT = (
    _LOADED
    + """
import importlib
for name in sys.argv[3:]:
    importlib.import_module(name)
report()
"""
)


def _loaded(
    tmp_path: Path, code: str, heavy: tuple[str, ...], args: list[str]
) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    out = tmp_path / "loaded.json"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out), json.dumps(heavy), *args],
        env=os.environ | {"SLIPWAY_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.exists(), done.stdout + done.stderr
    loaded: list[str] = json.loads(out.read_text())
    return loaded, done


@pytest.mark.parametrize(
    "args",
    [["--help"], ["features", "--help"], ["up", "--help"], ["version"], ["config", "show"]],
    ids=" ".join,
)
def test_a_command_that_opens_no_platform_loads_none_of_it(tmp_path: Path, args: list[str]) -> None:
    loaded, done = _loaded(tmp_path, _RUN_CLI, CLI_HEAVY, args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert loaded == []


def test_every_commands_help_loads_none_of_the_platform(tmp_path: Path) -> None:
    """Building every command (what ``--help`` does) evaluates each option's type and
    default: none of them may pull in a capability's heavy modules."""
    loaded, done = _loaded(tmp_path, _EVERY_HELP, CLI_HEAVY, [])
    assert done.returncode == 0, done.stdout + done.stderr
    assert loaded == []


def test_a_command_loads_its_capability_when_it_runs(tmp_path: Path) -> None:
    """The other half: the imports moved into the commands still happen (an in-process
    command opens the platform on its settings)."""
    loaded, done = _loaded(tmp_path, _RUN_CLI, ("slipway.services",), ["tokens", "list"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert loaded == ["slipway.services"]


def test_the_platforms_processes_load_only_what_they_use(tmp_path: Path) -> None:
    """What the control plane, the scheduler, the gateway's master and workers import
    before they serve (the worker's warm-up loads MLflow, scikit-learn and Optuna on
    purpose, for its fork server)."""
    modules = [
        "slipway.cli.main",
        "slipway.services",
        "slipway.api.app",
        "slipway.workers.scheduler",
        "slipway.serving.gateway.server",
        "slipway.serving.gateway.app",
        "slipway.gateway_worker",
    ]
    loaded, done = _loaded(tmp_path, _IMPORT, PLATFORM_HEAVY, modules)
    assert done.returncode == 0, done.stdout + done.stderr
    assert loaded == []
