"""``slipway backup`` and ``slipway restore`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.backup.platform import create_groups


def test_backup_then_restore_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = Services.open(load_settings(home=tmp_path / "source"))
    try:
        create_groups(services)
    finally:
        services.close()
    runner = CliRunner()
    archive = tmp_path / "p.tar.zst"
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "source"))
    done = runner.invoke(app, ["backup", str(archive)])
    assert done.exit_code == 0, done.output
    assert "planes@0" in done.output and "weather@2" in done.output

    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "target"))
    done = runner.invoke(app, ["restore", str(archive), "--output", "json"])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["restore", str(archive)])
    assert again.exit_code == 1
    assert "not empty" in again.output and "--force" in again.output
    forced = runner.invoke(app, ["restore", str(archive), "--force"])
    assert forced.exit_code == 0, forced.output
    corrupt = tmp_path / "corrupt.tar.zst"
    corrupt.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 64)
    bad = runner.invoke(app, ["restore", str(corrupt), "--force"])
    assert bad.exit_code == 2
    assert "not a readable Slipway archive" in bad.output
