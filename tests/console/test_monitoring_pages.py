"""The monitoring pages on an embedded control plane (SQLite): the monitors and the alerts
they fired, drift per feature over a monitor's runs, a run's report with both histograms
per feature and its violations, paging, 404 pages, and the run-now / enable / disable
actions with their role and CSRF checks.

Traffic is written straight into the capture layout (tests.monitoring.synthetic): no model
or gateway, so a monitor run takes milliseconds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.monitoring.spec import QUEUE
from slipway.security.tokens import Role
from slipway.services import Services
from tests.console.conftest import act, csrf_of, sign_in
from tests.monitoring.synthetic import HOUR, capture, execute_queued, write_baseline

NEXT_HOUR = HOUR + timedelta(hours=1)
_SERIES = re.compile(r'<g class="series" data-series="([^"]*)">(.*?)</g>', re.S)


def _series(html: str) -> dict[str, int]:
    """Each drawn series of a page and how many points it has."""
    return {name: body.count('<circle class="point"') for name, body in _SERIES.findall(html)}


def _baseline(services: Services, tmp_path: Path) -> None:
    path = write_baseline(tmp_path / "baseline.parquet")
    services.baselines.create(
        "base", source={"file": path}, prediction_column="score", actor="test"
    )


def _drift_monitor(services: Services, name: str = "dq", **extra: Any) -> None:
    spec = {"name": name, "kind": "data_quality", "endpoint": "shop", "baseline": "base"}
    services.monitoring.create(spec | extra, actor="test")


def _run(services: Services, monitor: str, start: Any) -> int:
    """Run ``monitor`` over the hour from ``start`` as a worker would; its id."""
    run = services.monitoring.run(
        monitor, actor="test", start=start, end=start + timedelta(hours=1)
    )
    assert execute_queued(services) == 1
    done = services.monitoring.get_run(run.id)
    assert done.state == "completed", done.error
    return run.id


@pytest.fixture
def drifted(services: Services, tmp_path: Path) -> dict[str, int]:
    """Monitor ``dq`` run twice: over a clean hour, then over an hour where ``a`` shifted;
    an alert rule on violations with a log channel, processed."""
    _baseline(services, tmp_path)
    _drift_monitor(services, schedule="0 * * * *")
    services.alerts.create_channel("ops-log", "log", {}, actor="test")
    services.alerts.create_rule(
        {"name": "drift", "event_types": ["monitor.violations"], "channels": ["ops-log"]},
        actor="test",
    )
    capture(services, "shop", shift=0.0, seed=3, hour=HOUR)
    capture(services, "shop", shift=3.0, seed=4, hour=NEXT_HOUR)
    clean = _run(services, "dq", HOUR)
    shifted = _run(services, "dq", NEXT_HOUR)
    services.alerts.process()
    return {"clean": clean, "shifted": shifted}


def test_the_list_shows_monitors_their_last_run_and_alerts(
    console: TestClient, services: Services, drifted: dict[str, int]
) -> None:
    _drift_monitor(services, name="idle")
    page = console.get("/monitoring")
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>Monitoring</h1>" in html
    row = re.search(r'<tr data-monitor="dq">(.*?)</tr>', html, re.S)
    assert row, html
    cells = row.group(1)
    assert "Data quality / drift" in cells and ">shop</a>" in cells
    assert "<code>0 * * * *</code>" in cells and "<td>yes</td>" in cells
    assert f'/monitoring/dq/runs/{drifted["shifted"]}"' in cells
    assert "status-violations" in cells
    shifted = services.monitoring.get_run(drifted["shifted"])
    assert shifted.violations > 0
    open_cell = re.search(r'class="num open-violations">(.*?)</td>', cells, re.S)
    assert open_cell and f">{shifted.violations}</a>" in open_cell.group(1)
    idle = re.search(r'<tr data-monitor="idle">(.*?)</tr>', html, re.S)
    assert idle and "never run" in idle.group(1) and "on demand" in idle.group(1)
    # The alert the shifted run raised, with its delivery and the attempt made.
    alert = re.search(r'<table id="monitor-alerts".*?</table>', html, re.S)
    assert alert, html
    assert "<code>monitor.violations</code>" in alert.group(0)
    assert f'/monitoring/dq/runs/{drifted["shifted"]}"' in alert.group(0)
    assert "ops-log: " in alert.group(0) and "status-delivered" in alert.group(0)
    assert "1 attempt" in alert.group(0)


def test_empty_states_name_the_cli_commands(console: TestClient) -> None:
    html = console.get("/monitoring").text
    assert "No monitor watches an endpoint" in html
    assert "slipway monitors create --file monitor.yaml" in html
    assert "slipway alerts rules create drift --event monitor.violations" in html
    assert '<table id="monitors"' not in html


def test_the_monitor_page_draws_drift_per_feature_over_its_runs(
    console: TestClient, services: Services, drifted: dict[str, int]
) -> None:
    page = console.get("/monitoring/dq")
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>Monitor dq</h1>" in html
    # One line per feature (and the prediction), two points each: one per run.
    assert _series(html) == {"a": 2, "b": 2, "prediction": 2}
    assert "Drift per feature (PSI) by run" in html
    latest = re.search(r'<table id="latest-drift".*?</table>', html, re.S)
    assert latest and f"run #{drifted['shifted']}" in latest.group(0)
    drifted_row = re.search(r'<tr data-feature="a">(.*?)</tr>', latest.group(0), re.S)
    assert drifted_row and "status-drifted" in drifted_row.group(1)
    for run_id in drifted.values():
        assert f'<tr data-run="{run_id}">' in html
        assert f'href="/monitoring/dq/runs/{run_id}"' in html
    # Auth off: the local admin may act.
    assert 'action="/monitoring/dq/run"' in html and 'action="/monitoring/dq/disable"' in html


def test_a_model_quality_monitor_draws_its_metrics_per_run(
    console: TestClient, services: Services
) -> None:
    served = capture(services, "shop", rows=30)
    records = [
        {"inference_id": i, "row": r, "label": round(p + (0.1 if r % 2 else -0.2), 6)}
        for i, r, p in served
    ]
    services.monitoring.put_ground_truth("shop", records)
    services.monitoring.create(
        {
            "name": "quality",
            "kind": "model_quality",
            "endpoint": "shop",
            "model_quality": {"problem_type": "regression", "thresholds": {"mae": {"max": 0.1}}},
        },
        actor="test",
    )
    first = _run(services, "quality", HOUR)
    _run(services, "quality", HOUR)
    html = console.get("/monitoring/quality").text
    assert "Model quality by run" in html
    assert _series(html) == {"mae": 2, "mse": 2, "r2": 2, "rmse": 2}
    report = console.get(f"/monitoring/quality/runs/{first}").text
    mae = re.search(r'<tr data-metric="mae">(.*?)</tr>', report, re.S)
    assert mae and "0.15" in mae.group(1) and "status-violations" in mae.group(1)
    violations = re.search(r'<table id="violations".*?</table>', report, re.S)
    assert violations and "<td>mae</td>" in violations.group(0)
    assert "<code>model_quality</code>" in violations.group(0)


def test_the_report_shows_histograms_violations_and_statistics(
    console: TestClient, services: Services, drifted: dict[str, int]
) -> None:
    page = console.get(f"/monitoring/dq/runs/{drifted['shifted']}")
    assert page.status_code == 200, page.text
    html = page.text
    assert f"<h1>Run {drifted['shifted']} of dq</h1>" in html
    report = services.monitoring.report(drifted["shifted"])
    assert report.columns is not None
    # Per feature a histogram: baseline and current bars over the baseline's bins.
    for feature, entry in report.columns.items():
        figure = re.search(
            rf'<figure class="card feature" data-feature="{feature}">(.*?)</figure>', html, re.S
        )
        assert figure, feature
        histogram = entry["drift"]["histogram"]
        bins = len(histogram["baseline"])
        assert figure.group(1).count('<rect class="bar"') == 2 * bins, feature
        assert "baseline, " in figure.group(1) and "current, " in figure.group(1)
    categories = re.search(r'data-feature="b">(.*?)</figure>', html, re.S)
    assert categories and "baseline, x:" in categories.group(1)
    # The violations: feature, check, message.
    table = re.search(r'<table id="violations".*?</table>', html, re.S)
    assert table, html
    row = re.search(r'<tr data-check="drift">(.*?)</tr>', table.group(0), re.S)
    assert row and "<td>a</td>" in row.group(1) and "&#39;a&#39; drifted: psi" in row.group(1)
    assert len(re.findall(r"<tr data-check=", table.group(0))) == len(report.violations)
    statistics = re.search(r'<table id="statistics".*?</table>', html, re.S)
    assert statistics and '<tr data-feature="a">' in statistics.group(0)
    assert "psi ≥ 0.2" in statistics.group(0)
    # The clean run: no violation, no drift.
    clean = console.get(f"/monitoring/dq/runs/{drifted['clean']}").text
    assert "No violations: every check passed." in clean
    assert "status-drifted" not in clean


def test_a_queued_run_is_shown_live_until_a_worker_has_run_it(
    console: TestClient, services: Services, tmp_path: Path
) -> None:
    _baseline(services, tmp_path)
    _drift_monitor(services)
    capture(services, "shop", hour=HOUR)
    run = services.monitoring.run("dq", actor="test", start=HOUR, end=NEXT_HOUR)
    html = console.get(f"/monitoring/dq/runs/{run.id}").text
    assert 'data-live="/monitoring/dq/runs/' in html and "status-queued" in html
    fragment = console.get(f"/monitoring/dq/runs/{run.id}", headers={"X-Console-Fragment": "1"})
    assert "data-final" not in fragment.text and "<html" not in fragment.text
    execute_queued(services)
    finished = console.get(
        f"/monitoring/dq/runs/{run.id}", headers={"X-Console-Fragment": "1"}
    ).text
    assert "data-final" in finished and "status-completed" in finished
    assert "data-live" not in console.get(f"/monitoring/dq/runs/{run.id}").text


def test_unknown_monitors_and_runs_are_404_pages(
    console: TestClient, services: Services, drifted: dict[str, int]
) -> None:
    _drift_monitor(services, name="other")
    for path in (
        "/monitoring/nope",
        "/monitoring/nope/runs/1",
        "/monitoring/dq/runs/999999",
        "/monitoring/dq/runs/-1",
        "/monitoring/dq/runs/99999999999999999999999",
        "/monitoring/dq/runs/abc",
        # A run of another monitor is not this one's.
        f"/monitoring/other/runs/{drifted['clean']}",
    ):
        page = console.get(path)
        assert page.status_code == 404, (path, page.status_code)
        assert "<h1>Not found</h1>" in page.text, path


def test_runs_are_paged_on_the_server(
    console: TestClient, services: Services, tmp_path: Path
) -> None:
    _baseline(services, tmp_path)
    _drift_monitor(services)
    ids = [
        services.monitoring.run("dq", actor="test", start=HOUR, end=NEXT_HOUR).id for _ in range(30)
    ]
    first = console.get("/monitoring/dq").text
    shown = [int(i) for i in re.findall(r'<tr data-run="(\d+)">', first)]
    assert shown == ids[::-1][:25]
    assert 'href="/monitoring/dq?page=2" rel="next"' in first and "1-25 of 30" in first
    second = console.get("/monitoring/dq?page=2").text
    assert [int(i) for i in re.findall(r'<tr data-run="(\d+)">', second)] == ids[::-1][25:]
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert console.get("/monitoring/dq?page=0").status_code == 400
    # No completed run yet: the chart says so.
    assert "no completed run with traffic yet" in first


def test_run_now_enable_and_disable(
    console: TestClient, services: Services, tmp_path: Path
) -> None:
    _baseline(services, tmp_path)
    _drift_monitor(services, schedule="0 * * * *")
    answer: Any = act(console, "/monitoring/dq/disable", _page="/monitoring/dq")
    assert answer.status_code == 200, answer.text
    assert answer.json()["location"] == "/monitoring/dq"
    assert services.monitoring.get("dq").enabled is False
    page = console.get("/monitoring/dq").text
    assert 'action="/monitoring/dq/enable"' in page
    assert act(console, "/monitoring/dq/enable").status_code == 200  # type: ignore[attr-defined]
    assert services.monitoring.get("dq").enabled is True

    queued: Any = act(console, "/monitoring/dq/run")
    assert queued.status_code == 200, queued.text
    [run] = services.monitoring.runs("dq")
    assert queued.json()["location"] == f"/monitoring/dq/runs/{run.id}"
    assert run.trigger == "manual" and run.created_by == "anonymous"
    assert len(services.queue.list(queue=QUEUE)) == 1
    missing: Any = act(console, "/monitoring/nope/run")
    assert missing.status_code == 404
    entries = services.audit.list(limit=10)
    assert {"monitor.disable", "monitor.enable", "monitor.run"} <= {e.action for e in entries}


def test_actions_need_an_editor_and_a_csrf_token(
    auth_console: TestClient, auth_services: Services, tmp_path: Path
) -> None:
    _baseline(auth_services, tmp_path / "auth")
    _drift_monitor(auth_services)
    viewer_token = auth_services.tokens.create("watcher", Role.VIEWER, created_by="test")[1]
    editor_token = auth_services.tokens.create("ed", Role.EDITOR, created_by="test")[1]

    sign_in(auth_console, viewer_token)
    page = auth_console.get("/monitoring/dq")
    assert page.status_code == 200 and 'action="/monitoring/dq/run"' not in page.text
    refused: Any = act(auth_console, "/monitoring/dq/run", _page="/monitoring/dq")
    assert refused.status_code == 403
    assert act(auth_console, "/monitoring/dq/disable").status_code == 403  # type: ignore[attr-defined]

    sign_in(auth_console, editor_token)
    no_csrf = auth_console.post("/monitoring/dq/run", headers={"accept": "application/json"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]
    assert list(auth_services.monitoring.runs("dq")) == []
    csrf = csrf_of(auth_console, "/monitoring/dq")
    ok = auth_console.post(
        "/monitoring/dq/run", data={"csrf_token": csrf}, headers={"accept": "application/json"}
    )
    assert ok.status_code == 200, ok.text
    [run] = auth_services.monitoring.runs("dq")
    assert run.created_by == "ed" and run.state == "queued"
