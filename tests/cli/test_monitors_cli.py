"""`slipway monitors` (and `monitors baseline`), embedded on both engines: baselines from
a file with edited constraints, monitors from YAML, a run followed with --wait while a
worker thread executes it, reports as tables and JSON, ground truth from JSON lines, CSV
and JSON files; a monitor updated from YAML; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.settings import load_settings
from slipway.monitoring.spec import QUEUE
from slipway.services import Services
from slipway.workers.worker import Worker
from tests.monitoring.synthetic import WINDOW, capture, execute_queued, write_baseline

runner = CliRunner()
GROUND_TRUTH = "monitoring/ground-truth"

MONITOR = """
name: dq
kind: data_quality
endpoint: shop
baseline: base
schedule: "0 * * * *"
"""

QUALITY = {
    "name": "quality",
    "kind": "model_quality",
    "endpoint": "shop",
    "model_quality": {"problem_type": "regression", "thresholds": {"mae": {"max": 0.1}}},
}


@pytest.fixture
def services(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """The platform the CLI opens too (same home and database)."""
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    opened = Services.open(settings)
    monkeypatch.setenv("SLIPWAY_HOME", str(settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    yield opened
    opened.close()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails(args: list[str], code: int = 1) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return result.output


def _baseline(tmp_path: Path) -> None:
    write_baseline(tmp_path / "baseline.parquet")
    create = ["monitors", "baseline", "create", "base", "--data", "baseline.parquet"]
    created = _ok([*create, "--prediction-column", "score"])
    assert "created baseline base: 2,000 rows, 3 columns" in created


def test_every_command_has_help() -> None:
    top = _ok(["monitors", "--help"])
    commands = "create update list show enable disable delete run runs report ground-truth baseline"
    for command in commands.split():
        assert command in top
        assert "Usage" in _ok(["monitors", command, "--help"])
    for command in ("create", "list", "show", "constraints", "delete"):
        assert "Usage" in _ok(["monitors", "baseline", command, "--help"])
    assert "--wait" in _ok(["monitors", "run", "--help"])
    assert "--set" in _ok(["monitors", "baseline", "constraints", "--help"])
    assert "monitors" in _ok(["--help"])


def test_baselines(services: Services, tmp_path: Path) -> None:
    _baseline(tmp_path)
    # A relative path is stored absolute: workers do not share the CLI's folder.
    assert services.baselines.get("base").source == {"file": str(tmp_path / "baseline.parquet")}
    assert services.baselines.get("base").created_by.startswith("cli:")
    listed = _ok(["monitors", "baseline", "list"])
    assert "base" in listed and "baseline.parquet" in listed
    rows = json.loads(_ok(["monitors", "baseline", "list", "-o", "json"]))
    assert [(r["name"], r["rows"], r["columns"]) for r in rows] == [("base", 2000, 3)]
    shown = _ok(["monitors", "baseline", "show", "base"])
    assert "prediction" in shown and "float" in shown and "string" in shown
    document = json.loads(_ok(["monitors", "baseline", "show", "base", "-o", "json"]))
    assert list(document["statistics"]["columns"]) == ["a", "b", "prediction"]
    constraints = _ok(["monitors", "baseline", "constraints", "base"])
    assert "psi" in constraints and "out_of_range_tolerance" in constraints

    edited = tmp_path / "constraints.yaml"
    edited.write_text("columns:\n  a:\n    drift: {method: ks_statistic, threshold: 0.15}\n")
    updated = _ok(["monitors", "baseline", "constraints", "base", "--set", str(edited)])
    assert "updated the constraints of base" in updated and "ks_statistic" in updated
    stored = services.baselines.constraints("base")
    assert stored.columns["a"]["drift"] == {"method": "ks_statistic", "threshold": 0.15}

    bad = tmp_path / "bad.yaml"
    bad.write_text("columns:\n  a:\n    drift: {method: chi2_p_value}\n")
    refused = _fails(["monitors", "baseline", "constraints", "base", "--set", str(bad)], 2)
    assert "chi2_p_value does not apply" in refused
    assert services.baselines.constraints("base") == stored

    assert "exists already" in _fails(
        ["monitors", "baseline", "create", "base", "--data", "baseline.parquet"]
    )
    other = ["monitors", "baseline", "create", "other"]
    two = _fails([*other, "--data", "x.parquet", "--query", "select 1"], 2)
    assert "exactly one of" in two
    missing = _fails([*other, "--data", "none.parquet"], 2)
    assert "no file" in missing
    _fails(["monitors", "baseline", "show", "nobody"])
    assert [b.name for b in services.baselines.list()] == ["base"]
    assert "deleted baseline base" in _ok(["monitors", "baseline", "delete", "base", "--yes"])
    assert services.baselines.list() == []


def test_monitor_lifecycle_a_waited_run_and_its_report(services: Services, tmp_path: Path) -> None:
    _baseline(tmp_path)
    spec = tmp_path / "dq.yaml"
    spec.write_text(MONITOR)
    created = _ok(["monitors", "create", "-f", str(spec)])
    assert "created data_quality monitor dq of endpoint shop on 0 * * * * (UTC)" in created
    assert "exists already" in _fails(["monitors", "create", "-f", str(spec)])
    listed = _ok(["monitors", "list", "--endpoint", "shop"])
    assert "dq" in listed and "base" in listed and "yes" in listed
    assert json.loads(_ok(["monitors", "list", "--endpoint", "other", "-o", "json"])) == []
    assert "dq: data_quality of endpoint shop, baseline base" in _ok(["monitors", "show", "dq"])

    capture(services, "shop", shift=1.5)
    worker = Worker(services, queues=[QUEUE], worker_id="cli-test")
    thread = threading.Thread(target=worker.run, kwargs={"max_items": 1}, daemon=True)
    thread.start()
    window = ["--start", WINDOW["start"], "--end", WINDOW["end"]]
    waited = _ok(["monitors", "run", "dq", *window, "--wait", "--timeout", "60"])
    thread.join(timeout=30)
    assert "violations, 500 rows, 2024-05-01 10:00:00 - 2024-05-01 11:00:00" in waited
    assert "drift per column" in waited
    drifted = [line for line in waited.splitlines() if line.strip("│ ").startswith("a ")]
    assert drifted and "psi" in drifted[0] and "yes" in drifted[0], waited
    assert "'a' drifted: psi" in waited

    run = services.monitoring.runs("dq")[0]
    assert (run.state, run.status) == ("completed", "violations")
    reported = _ok(["monitors", "report", str(run.id)])
    assert "drift per column" in reported and "violations" in reported
    document = json.loads(_ok(["monitors", "report", str(run.id), "-o", "json"]))
    assert document["drifted"] == ["a"] and document["run_id"] == run.id
    runs = json.loads(_ok(["monitors", "runs", "dq", "-o", "json"]))
    assert [(r["id"], r["status"]) for r in runs] == [(run.id, "violations")]
    assert "violations" in _ok(["monitors", "runs", "dq"])
    shown = json.loads(_ok(["monitors", "show", "dq", "-o", "json"]))
    assert shown["last_status"] == "violations" and shown["recent_runs"][0]["id"] == run.id

    # No worker now: waiting gives up, saying why, and the run stays queued.
    stalled = _fails(["monitors", "run", "dq", "--wait", "--timeout", "0"])
    assert "still queued" in stalled and "worker" in stalled
    queued = json.loads(_ok(["monitors", "run", "dq", "-o", "json"]))
    assert queued["state"] == "queued"
    assert "has no report" in _fails(["monitors", "report", str(queued["id"])])

    assert "disabled dq" in _ok(["monitors", "disable", "dq"])
    assert services.monitoring.get("dq").enabled is False
    assert "enabled dq" in _ok(["monitors", "enable", "dq"])
    assert "used by monitor" in _fails(["monitors", "baseline", "delete", "base", "--yes"])
    assert "deleted monitor dq" in _ok(["monitors", "delete", "dq", "--yes"])
    assert services.monitoring.list() == []


def test_bad_monitor_input_exits_2_and_stores_nothing(services: Services, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(MONITOR.replace('"0 * * * *"', "every hour"))
    assert "schedule" in _fails(["monitors", "create", "-f", str(spec)], 2)
    spec.write_text(MONITOR)
    assert "baseline 'base' does not exist" in _fails(["monitors", "create", "-f", str(spec)], 2)
    assert services.monitoring.list() == []
    for command in ("show", "enable", "disable", "runs", "run", "delete --yes", "report"):
        name = "999" if command == "report" else "nobody"
        verb, *flags = command.split()
        assert "does not exist" in _fails(["monitors", verb, name, *flags])
    _baseline(tmp_path)
    _ok(["monitors", "create", "-f", str(spec)])
    naive = _fails(["monitors", "run", "dq", "--start", "2024-05-01T10:00:00"], 2)
    assert "needs a time zone" in naive
    assert "not an ISO 8601 time" in _fails(["monitors", "run", "dq", "--end", "today"], 2)
    assert "must end after it starts" in _fails(
        ["monitors", "run", "dq", "--start", WINDOW["end"], "--end", WINDOW["start"]], 2
    )
    assert services.monitoring.runs("dq") == []


def test_a_monitor_updated_from_a_file_keeps_its_state(services: Services, tmp_path: Path) -> None:
    _baseline(tmp_path)
    spec = tmp_path / "dq.yaml"
    spec.write_text(MONITOR)
    _ok(["monitors", "create", "-f", str(spec)])
    _ok(["monitors", "disable", "dq"])
    spec.write_text(MONITOR.replace('"0 * * * *"', '"30 6 * * *"\ntimezone: Europe/Paris'))
    updated = _ok(["monitors", "update", "-f", str(spec)])
    assert "updated data_quality monitor dq of endpoint shop on 30 6 * * * (Europe/Paris)" in (
        updated
    )
    monitor = services.monitoring.get("dq")
    assert (monitor.schedule, monitor.timezone, monitor.enabled) == (
        "30 6 * * *",
        "Europe/Paris",
        False,
    )
    shown = json.loads(_ok(["monitors", "update", "-f", str(spec), "-o", "json"]))
    assert shown["spec"]["schedule"] == "30 6 * * *" and shown["enabled"] is False
    monitor = services.monitoring.get("dq")

    bias = "bias:\n  facet: b\n  facet_values: [x]\n"
    spec.write_text(MONITOR.replace("data_quality", "bias") + bias)
    assert "its kind cannot change" in _fails(["monitors", "update", "-f", str(spec)], 2)
    spec.write_text(MONITOR.replace('"0 * * * *"', "every hour"))
    assert "schedule" in _fails(["monitors", "update", "-f", str(spec)], 2)
    spec.write_text(MONITOR.replace("name: dq", "name: nobody"))
    assert "does not exist" in _fails(["monitors", "update", "-f", str(spec)])
    assert services.monitoring.list() == [monitor]


def test_ground_truth_files_and_a_model_quality_report(services: Services, tmp_path: Path) -> None:
    served = capture(services, "shop", rows=30)
    labels = [
        {"inference_id": i, "row": r, "label": round(p + (0.1 if r % 2 else -0.2), 6)}
        for i, r, p in served
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(x) + "\n" for x in labels[:10]))
    (tmp_path / "b.csv").write_text(
        "inference_id,row,label\n"
        + "".join(f"{x['inference_id']},{x['row']},{x['label']}\n" for x in labels[10:20])
    )
    (tmp_path / "c.json").write_text(json.dumps({"records": labels[20:]}))
    sent = _ok(["monitors", "ground-truth", "shop", "a.jsonl"])
    assert "stored 10 labels for endpoint shop" in sent
    assert "stored 10 labels" in _ok(["monitors", "ground-truth", "shop", "b.csv"])
    stored = json.loads(_ok(["monitors", "ground-truth", "shop", "c.json", "-o", "json"]))
    assert stored["records"] == 10 and stored["endpoint"] == "shop"
    before = services.artifacts.list(GROUND_TRUTH)
    assert len(before) == 3

    (tmp_path / "bad.jsonl").write_text(json.dumps(labels[0]) + "\n{\n")
    assert "records[1] (line 2)" in _fails(["monitors", "ground-truth", "shop", "bad.jsonl"], 2)
    (tmp_path / "bad.csv").write_text("inference_id,row,label\na,0,1\nb,-1,2\n")
    assert "records[1].row" in _fails(["monitors", "ground-truth", "shop", "bad.csv"], 2)
    (tmp_path / "labels.txt").write_text("a,0,1\n")
    assert ".jsonl" in _fails(["monitors", "ground-truth", "shop", "labels.txt"], 2)
    assert "cannot read" in _fails(["monitors", "ground-truth", "shop", "none.csv"], 2)
    assert "endpoint" in _fails(["monitors", "ground-truth", "Shop", "a.jsonl"], 2)
    assert services.artifacts.list(GROUND_TRUTH) == before

    spec = tmp_path / "quality.json"
    spec.write_text(json.dumps(QUALITY))
    _ok(["monitors", "create", "-f", str(spec)])
    window = ["--start", WINDOW["start"], "--end", WINDOW["end"]]
    run = json.loads(_ok(["monitors", "run", "quality", *window, "-o", "json"]))
    assert execute_queued(services) == 1
    shown = _ok(["monitors", "report", str(run["id"])])
    assert "30 predictions labelled, 0 not yet (regression)" in shown
    mae = [line for line in shown.splitlines() if line.strip("│ ").startswith("mae")]
    assert mae and "0.15" in mae[0] and "yes" in mae[0], shown
    assert "mae 0.15 is above 0.1" in shown
