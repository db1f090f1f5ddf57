"""Baselines, monitors, runs, reports and ground truth through slipway.Client over HTTP,
against the embedded API: the same tests run on both (the ``platform`` fixture).

Traffic is written straight into the capture layout of an endpoint of the test's own
(tests.monitoring.synthetic, through the embedded twin), so no model or gateway is needed;
the runs are executed by ``slipway up``'s workers, on either side.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.monitoring.resources import (
    Baseline,
    BaselineConstraints,
    BaselineStatistics,
    GroundTruthUpload,
    Monitor,
    MonitorReport,
    MonitorRun,
)
from slipway.monitoring.spec import MonitorSpec
from tests.monitoring.synthetic import HOUR, capture, write_baseline
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually

END = HOUR + timedelta(hours=1)


def _finished(platform: Any, run: MonitorRun) -> MonitorRun:
    """The run once a worker of ``slipway up`` has run it to its outcome."""
    return eventually(
        lambda: (done := platform.monitoring.get_run(run.id)).finished and done,
        what=f"monitor run {run.id} finished",
        timeout=120,
    )


def _baseline(platform: Any, name: str, tmp_path: Path) -> Baseline:
    data = write_baseline(tmp_path / f"{name}.parquet")
    return platform.baselines.create(
        name, source={"file": data}, prediction_column="score", actor="test"
    )


def test_a_drifted_window_is_reported_by_a_data_quality_monitor(
    platform: Any, shared_platform: SharedPlatform, side: str, tmp_path: Path
) -> None:
    endpoint, name = f"shop-dq-{side}", f"dq-{side}"
    baseline = _baseline(platform, f"base-dq-{side}", tmp_path)
    assert isinstance(baseline, Baseline)
    assert (baseline.rows, baseline.columns, baseline.model) == (2000, 3, None)
    capture(shared_platform.services, endpoint, shift=3.0)  # feature a moved far

    monitor = platform.monitoring.create(
        {"name": name, "kind": "data_quality", "endpoint": endpoint, "baseline": baseline.name},
        actor="test",
    )
    assert isinstance(monitor, Monitor)
    assert (monitor.kind, monitor.spec.baseline, monitor.enabled) == (
        "data_quality",
        baseline.name,
        True,
    )
    queued = platform.monitoring.run(name, actor="test", start=HOUR, end=END)
    assert isinstance(queued, MonitorRun) and queued.window_start == HOUR
    done = _finished(platform, queued)

    assert (done.state, done.status, done.rows) == ("completed", "violations", 500)
    report = platform.monitoring.report(done.id)
    assert isinstance(report, MonitorReport)
    assert (report.kind, report.monitor, report.run_id) == ("data_quality", name, done.id)
    assert report.drifted == ["a"] and report.baseline == baseline.name
    assert report.columns is not None and report.columns["a"]["drift"]["psi"] > 0.2
    assert ("a", "drift") in {(v.get("column"), v["check"]) for v in report.violations}
    assert report.metrics is None  # a data-quality report has none
    runs = platform.monitoring.runs(name)
    assert isinstance(runs, Listing) and [r.id for r in runs] == [done.id]
    assert platform.monitoring.get(name).last_status == "violations"


def test_ground_truth_as_a_table_scores_a_model_quality_monitor(
    platform: Any, shared_platform: SharedPlatform, side: str
) -> None:
    endpoint, name = f"shop-mq-{side}", f"mq-{side}"
    served = capture(shared_platform.services, endpoint, rows=40, seed=11)
    labels = pd.DataFrame(
        {
            "inference_id": [i for i, _, _ in served[:30]],
            "row": [r for _, r, _ in served[:30]],
            "label": [p + 0.25 for _, _, p in served[:30]],
        }
    )
    stored = platform.monitoring.put_ground_truth(endpoint, labels)  # Arrow IPC when remote
    assert isinstance(stored, GroundTruthUpload)
    assert (stored.endpoint, stored.records) == (endpoint, 30)
    as_list = [{"inference_id": served[30][0], "row": served[30][1], "label": 1}]
    assert platform.monitoring.put_ground_truth(endpoint, as_list).records == 1

    platform.monitoring.create(
        {
            "name": name,
            "kind": "model_quality",
            "endpoint": endpoint,
            "model_quality": {
                "problem_type": "regression",
                "thresholds": {"mae": {"max": 0.1}},
            },
        },
        actor="test",
    )
    done = _finished(platform, platform.monitoring.run(name, actor="test", start=HOUR, end=END))

    assert (done.state, done.status) == ("completed", "violations")
    report = platform.monitoring.report(done.id)
    assert (report.labelled, report.unlabelled, report.problem_type) == (31, 9, "regression")
    assert report.metrics is not None and report.metrics["mae"] > 0.1
    assert [v["metric"] for v in report.violations] == ["mae"]


def test_baselines_and_monitors_crud(platform: Any, side: str, tmp_path: Path) -> None:
    name, monitor = f"base-crud-{side}", f"crud-{side}"
    created = _baseline(platform, name, tmp_path)
    assert platform.baselines.get(name) == created
    assert name in [b.name for b in platform.baselines.list()]
    statistics = platform.baselines.statistics(name)
    assert isinstance(statistics, BaselineStatistics)
    assert list(statistics.columns) == ["a", "b", "prediction"]
    constraints = platform.baselines.constraints(name)
    assert isinstance(constraints, BaselineConstraints)
    assert constraints.columns["a"]["drift"] == {"method": "psi", "threshold": 0.2}
    edited = {"columns": constraints.columns | {"a": {"drift": {"method": "ks_statistic"}}}}
    updated = platform.baselines.set_constraints(name, edited, actor="test")
    assert updated.columns["a"]["drift"] == {"method": "ks_statistic", "threshold": 0.1}
    assert platform.baselines.constraints(name) == updated

    made = platform.monitoring.create(
        {
            "name": monitor,
            "kind": "data_quality",
            "endpoint": f"shop-crud-{side}",
            "baseline": name,
            "schedule": "0 * * * *",
        },
        actor="test",
    )
    assert made.next_run_at is not None and made.schedule == "0 * * * *"
    assert platform.monitoring.get(monitor) == made
    assert [m.name for m in platform.monitoring.list(endpoint=f"shop-crud-{side}")] == [monitor]
    off = platform.monitoring.set_enabled(monitor, False, actor="test")
    assert off.enabled is False and platform.monitoring.get(monitor).enabled is False
    assert platform.monitoring.set_enabled(monitor, True, actor="test").enabled is True
    with pytest.raises(Conflict):
        platform.monitoring.create(made.spec, actor="test")
    with pytest.raises(Conflict):  # a monitor uses it
        platform.baselines.delete(name)

    platform.monitoring.delete(monitor, actor="test")
    with pytest.raises(NotFound):
        platform.monitoring.get(monitor)
    platform.baselines.delete(name)
    with pytest.raises(NotFound):
        platform.baselines.get(name)
    with pytest.raises(NotFound):
        platform.monitoring.get_run(10**12)
    with pytest.raises(NotFound):
        platform.monitoring.report(10**12)


def test_bad_input_names_the_field_and_stores_nothing(
    platform: Any, shared_platform: SharedPlatform, side: str, tmp_path: Path
) -> None:
    base = _baseline(platform, f"base-bad-{side}", tmp_path).name
    monitor = {"name": f"bad-{side}", "kind": "data_quality", "endpoint": f"shop-bad-{side}"}
    cases: list[tuple[dict[str, Any], str]] = [
        (monitor | {"baseline": base, "window_hours": -1}, "window_hours"),
        (monitor | {"baseline": f"none-{side}"}, "baseline"),
        (monitor | {"baseline": base, "drift": {"nope": {"method": "psi"}}}, "drift.nope"),
        (monitor | {"baseline": base, "colour": "red"}, "colour"),
    ]
    for spec, field in cases:
        with pytest.raises(InvalidInput) as bad:
            platform.monitoring.create(spec, actor="test")
        assert bad.value.field == field, (spec, bad.value)
    assert f"bad-{side}" not in [m.name for m in platform.monitoring.list()]

    with pytest.raises(InvalidInput) as bad_source:
        platform.baselines.create(f"nothing-{side}", source={"file": 3}, actor="test")
    assert bad_source.value.field == "source.file"
    with pytest.raises(InvalidInput) as bad_constraints:
        platform.baselines.set_constraints(base, {"columns": {"nope": {}}}, actor="test")
    assert bad_constraints.value.field == "constraints.columns.nope"

    records = [{"inference_id": "x", "row": 0, "label": "ok"}, {"inference_id": "", "label": 1}]
    with pytest.raises(InvalidInput) as bad_records:
        platform.monitoring.put_ground_truth(f"shop-bad-{side}", records)
    assert bad_records.value.field == "records"
    assert "records[1].inference_id" in bad_records.value.message
    table = pa.table({"inference_id": ["x"], "label": [float("nan")]})
    with pytest.raises(InvalidInput) as bad_table:
        platform.monitoring.put_ground_truth(f"shop-bad-{side}", table)
    assert bad_table.value.field == "records" and "records[0].label" in bad_table.value.message
    stored = shared_platform.services.artifacts.list(
        f"monitoring/ground-truth/endpoint=shop-bad-{side}"
    )
    assert list(stored) == []

    platform.monitoring.create(monitor | {"baseline": base}, actor="test")
    with pytest.raises(InvalidInput) as backwards:
        platform.monitoring.run(f"bad-{side}", actor="test", start=END, end=HOUR)
    assert backwards.value.field == "end"
    with pytest.raises(InvalidInput) as naive:
        platform.monitoring.run(
            f"bad-{side}", actor="test", start=datetime(2024, 5, 1), end=datetime(2024, 5, 2)
        )
    assert naive.value.field == "start"
    assert platform.monitoring.runs(f"bad-{side}") == []


def test_a_monitor_is_updated_in_place(platform: Any, side: str, tmp_path: Path) -> None:
    base, other = f"base-upd-{side}", f"base-upd2-{side}"
    _baseline(platform, base, tmp_path)
    _baseline(platform, other, tmp_path)
    name, endpoint = f"upd-{side}", f"shop-upd-{side}"
    spec = {"name": name, "kind": "data_quality", "endpoint": endpoint, "baseline": base}
    made = platform.monitoring.create(spec, actor="test")
    platform.monitoring.set_enabled(name, False, actor="test")

    new = MonitorSpec.model_validate(
        spec | {"baseline": other, "schedule": "0 * * * *", "window_hours": 3}
    )
    updated = platform.monitoring.update(new, actor="test")
    assert isinstance(updated, Monitor)
    assert updated.spec == new and updated.schedule == "0 * * * *"
    assert updated.next_run_at is not None and made.next_run_at is None
    assert (updated.enabled, updated.runs, updated.created_at) == (False, 0, made.created_at)
    assert platform.monitoring.get(name) == updated
    again = platform.monitoring.update(new.model_dump(mode="json"), actor="test")  # a mapping
    assert again.spec == new and again.next_run_at == updated.next_run_at

    bad: list[tuple[dict[str, Any], str]] = [
        ({"kind": "bias", "bias": {"facet": "b", "facet_values": ["x"]}}, "kind"),
        ({"baseline": f"none-{side}"}, "baseline"),
        ({"schedule": "every hour"}, "schedule"),
        ({"drift": {"nope": {"method": "psi"}}}, "drift.nope"),
        ({"colour": "red"}, "colour"),
    ]
    for change, field in bad:
        with pytest.raises(InvalidInput) as refused:
            platform.monitoring.update(spec | change, actor="test")
        assert refused.value.field == field, (change, refused.value)
    with pytest.raises(NotFound):
        platform.monitoring.update(spec | {"name": f"nobody-{side}"}, actor="test")
    assert platform.monitoring.get(name) == again


def test_a_put_naming_another_monitor_is_refused(
    shared_platform: SharedPlatform, tmp_path: Path
) -> None:
    """The REST body may leave the name out or repeat the path's; naming another is a
    400 naming ``name`` (a rename), and nothing changes."""
    services = shared_platform.services
    _baseline(services, "base-put", tmp_path)
    spec = {"name": "put-mon", "kind": "data_quality", "endpoint": "shop", "baseline": "base-put"}
    kept = services.monitoring.create(spec, actor="test")
    with shared_platform.client() as client:
        with pytest.raises(InvalidInput) as renamed:
            client.transport.request("PUT", "/monitors/put-mon", json=spec | {"name": "other"})
        assert renamed.value.field == "name"
        nameless = {k: v for k, v in spec.items() if k != "name"} | {"window_hours": 2}
        answer = client.transport.request("PUT", "/monitors/put-mon", json=nameless)
        assert Monitor.model_validate(answer.json()).spec.window_hours == 2
    assert services.monitoring.get("put-mon").created_at == kept.created_at
    with pytest.raises(NotFound):
        services.monitoring.get("other")
