"""``slipway gc`` and ``slipway status`` on a real workspace, and the retention settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from slipway.retention.audit import read_archive
from slipway.security.tables import AuditRow
from slipway.services import Services

runner = CliRunner()
OLD = datetime(2020, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("SLIPWAY_RETENTION__AUDIT_DAYS", "90")
    monkeypatch.setenv("COLUMNS", "200")
    services = Services.open(load_settings())
    with services.db.write() as session:
        for n in range(3):
            session.add(
                AuditRow(
                    time=OLD, actor="a", action="x.y", resource=f"r/{n}", outcome="success",
                    status_code=200, details={},
                )
            )  # fmt: skip
    capture = "capture/endpoint=e/variant=main/hour=2020-01-01T12/a.parquet"
    services.artifacts.put_bytes(capture, b"x" * 100)
    services.features.create_group(
        {
            "name": "g",
            "record_identifiers": [{"name": "k"}],
            "features": [{"name": "v", "type": "int"}],
        }
    )
    services.features.ingest("g", [{"k": "a", "event_time": OLD, "v": 1}])
    yield services
    services.close()


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, [*args, "--output", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_gc_dry_run_then_gc_only_audit(workspace: Services) -> None:
    dry = _json(["gc", "--dry-run"])
    assert dry["dry_run"] is True
    kinds = {k["kind"]: k for k in dry["kinds"]}
    assert list(kinds) == ["capture", "delta", "work_items", "events", "audit", "runs"]
    assert kinds["audit"]["deleted"] == 3 and kinds["audit"]["enabled"]
    assert not kinds["capture"]["enabled"] and not kinds["delta"]["enabled"]  # kept for ever
    assert workspace.audit.list() != [] and read_archive(workspace.artifacts) == []

    done = _json(["gc", "--only", "audit"])
    assert [k["kind"] for k in done["kinds"]] == ["audit"]
    assert done["kinds"][0]["deleted"] == 3
    assert len(read_archive(workspace.artifacts)) == 3
    assert [e.resource for e in workspace.audit.list() if e.time == OLD] == []

    table = runner.invoke(app, ["gc", "--dry-run"])
    assert table.exit_code == 0 and "kept for ever" in table.stdout
    assert "nothing was deleted" in table.stdout


def test_gc_refuses_an_unknown_kind(workspace: Services) -> None:
    result = runner.invoke(app, ["gc", "--only", "everything"])
    assert result.exit_code == 2 and "unknown retention kind 'everything'" in result.output


def test_status_shows_sizes_per_kind(workspace: Services) -> None:
    shown = _json(["status"])
    groups = {g["group"]: g for g in shown["database"]}
    # the three old rows, and the feature store's entries for creating and ingesting "g"
    assert groups["audit"]["rows"] == 5 and groups["features"]["rows"] >= 2
    assert "tracking" in groups or "queue" in groups
    assert shown["database_bytes"] > 0
    folders = {f["folder"]: f for f in shown["artifacts"]}
    assert folders["capture/endpoint=e"] == {
        "folder": "capture/endpoint=e",
        "files": 1,
        "bytes": 100,
    }
    assert folders["features/g"]["files"] >= 2 and folders["features/g"]["bytes"] > 0
    assert shown["artifact_bytes"] >= 100 + folders["features/g"]["bytes"]
    assert shown["online"] == [{"group": "g", "records": 1}] and shown["online_bytes"] > 0
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0 and "artifact root" in table.stdout


@pytest.mark.parametrize(
    ("field", "value"),
    [("capture_days", -1), ("delta_versions_hours", "soon"), ("batch_size", 0)],
)
def test_bad_retention_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        load_settings(retention={field: value})
    assert raised.value.details["field"] == f"retention.{field}"


def test_retention_defaults_keep_user_data_for_ever() -> None:
    retention = load_settings().retention
    assert retention.capture_days is None and retention.delta_versions_hours is None
    assert retention.audit_days is None
    assert retention.work_items_days == retention.events_days == retention.deleted_runs_days == 30
