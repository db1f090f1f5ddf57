"""Bias monitors end to end: captured traffic joined with late ground truth, split by a
facet, scored and checked against thresholds (the four-fifths rule) by a worker, with the
events every monitor raises; bad specs refused naming the field, storing nothing.

Two sources of traffic: the flight-delay model behind a real gateway (its ``hour`` input
as a numeric facet), and crafted traffic written straight into the capture layout of an
endpoint ``loans`` (a ``sex`` input as a categorical facet), whose disparate impact is
known exactly.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
)
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app
from slipway.core.errors import InvalidInput
from slipway.serving.gateway.capture import partition_key
from tests.monitoring.conftest import FlightPlatform, execute_run, send_traffic

LOANS = "loans"
HOUR = datetime(2024, 5, 1, 10, tzinfo=UTC)
PER_REQUEST = 10


def _loans_hour(
    fp: FlightPlatform, hour: datetime, approved: dict[str, tuple[int, int]], unlabelled: int
) -> dict[str, np.ndarray]:
    """Capture an hour of the ``loans`` endpoint: per sex (rows, predicted positive) —
    scores 0.9 or exactly 0.5 (positive at threshold 0.5) and 0.1 — then ``unlabelled``
    more rows without ground truth; labels (random, seeded) are sent for the rest. Returns
    the labelled rows' sex, score and label."""
    rng = np.random.default_rng(hour.hour)
    sex, score = [], []
    for group, (rows, positive) in approved.items():
        sex += [group] * rows
        score += [0.5 if i % 4 == 0 else 0.9 for i in range(positive)] + [0.1] * (rows - positive)
    labelled = len(sex)
    sex += ["m"] * unlabelled
    score += [0.9] * unlabelled
    rows = len(sex)
    label = (rng.random(rows) < np.where(np.array(sex) == "f", 0.35, 0.5)).astype(int)
    ids = [f"{LOANS}-{hour:%H}-{i // PER_REQUEST}" for i in range(rows)]
    table = pa.table(
        {
            "inference_id": pa.array(ids, pa.string()),
            "row": pa.array([i % PER_REQUEST for i in range(rows)], pa.int32()),
            "time": pa.array(
                [hour + timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "config_version": pa.array([1] * rows, pa.int32()),
            "model_name": pa.array(["credit"] * rows, pa.string()),
            "model_version": pa.array([1] * rows, pa.int32()),
            "kind": pa.array(["production"] * rows, pa.string()),
            "features": pa.StructArray.from_arrays(
                [pa.array(sex), pa.array(rng.normal(50.0, 10.0, rows))], names=["sex", "income"]
            ),
            "prediction": pa.array(score, pa.float64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    fp.services.artifacts.put_bytes(
        f"{partition_key(LOANS, 'main', hour)}/x-{hour:%H}.parquet", sink.getvalue()
    )
    fp.services.monitoring.put_ground_truth(
        LOANS,
        [
            {"inference_id": ids[i], "row": i % PER_REQUEST, "label": int(label[i])}
            for i in range(labelled)
        ],
    )
    return {
        "sex": np.array(sex[:labelled]),
        "score": np.array(score[:labelled]),
        "label": label[:labelled],
    }


@pytest.fixture(scope="module")
def loans(flight_platform: FlightPlatform) -> dict[str, dict[str, np.ndarray]]:
    """Two hours: in the first 60 of 200 women and 150 of 300 men are approved (DI =
    0.3 / 0.5 = 0.6), in the second 90 of 200 women (DI = 0.45 / 0.5 = 0.9)."""
    return {
        "biased": _loans_hour(flight_platform, HOUR, {"f": (200, 60), "m": (300, 150)}, 50),
        "fair": _loans_hour(
            flight_platform, HOUR + timedelta(hours=1), {"f": (200, 90), "m": (300, 150)}, 0
        ),
    }


def _loans_monitor(fp: FlightPlatform, name: str, **bias: Any) -> None:
    settings = {
        "facet": "sex",
        "facet_values": ["f"],
        "probability_threshold": 0.5,
        "thresholds": {"DI": {"min": 0.8}},
    } | bias
    fp.services.monitoring.create(
        {"name": name, "kind": "bias", "endpoint": LOANS, "bias": settings}, actor="test"
    )


def _run(fp: FlightPlatform, monitor: str, start: datetime) -> tuple[dict[str, Any], Any]:
    queued = fp.services.monitoring.run(
        monitor, actor="test", start=start, end=start + timedelta(hours=1)
    )
    done = execute_run(fp, queued)
    report = fp.services.monitoring.report(done.id) if done.state == "completed" else None
    return done, report


def test_disparate_impact_below_four_fifths_is_a_violation_and_raises_events(
    flight_platform: FlightPlatform, loans: dict[str, dict[str, np.ndarray]]
) -> None:
    services = flight_platform.services
    _loans_monitor(flight_platform, "loans-bias")
    biased, report = _run(flight_platform, "loans-bias", HOUR)
    assert biased.state == "completed" and biased.status == "violations"
    assert (report.kind, report.rows, report.labelled, report.unlabelled) == (
        "bias",
        550,
        500,
        50,
    )
    assert report.facet == {"column": "sex", "values": ["f"]}
    # q'_d = 60/200 = 0.3, q'_a = 150/300 = 0.5: DI = 0.3 / 0.5 = 0.6, DPPL = 0.5 - 0.3 = 0.2
    assert report.metrics["DI"] == pytest.approx(0.6, rel=1e-12)
    assert report.metrics["DPPL"] == pytest.approx(0.2, rel=1e-12)
    assert report.groups["d"]["rows"] == 200 and report.groups["a"]["rows"] == 300
    assert [(v["check"], v["metric"], v["column"]) for v in report.violations] == [
        ("bias", "DI", "sex")
    ]
    assert "DI 0.6 of facet sex is below 0.8" in report.violations[0]["message"]
    _matches_fairlearn(report, loans["biased"])
    assert biased.summary["checks"] == {"bias": 1}
    assert biased.summary["metrics"]["DI"] == pytest.approx(0.6)

    fair, report = _run(flight_platform, "loans-bias", HOUR + timedelta(hours=1))
    assert fair.status == "no_violations" and report.violations == []
    # q'_d = 90/200 = 0.45, q'_a = 150/300 = 0.5: DI = 0.45 / 0.5 = 0.9
    assert report.metrics["DI"] == pytest.approx(0.9, rel=1e-12)
    _matches_fairlearn(report, loans["fair"])

    assert services.monitoring.get("loans-bias").last_status == "no_violations"
    completed = services.events.read(types=["monitor.run_completed"], limit=1000)
    mine = [e.payload for e in completed if e.payload["monitor"] == "loans-bias"]
    assert [(p["run_id"], p["status"], p["kind"]) for p in mine] == [
        (biased.id, "violations", "bias"),
        (fair.id, "no_violations", "bias"),
    ]
    raised = services.events.read(types=["monitor.violations"], limit=1000)
    alarms = [e.payload for e in raised if e.payload["monitor"] == "loans-bias"]
    assert [(p["run_id"], p["checks"], p["violations"]) for p in alarms] == [
        (biased.id, ["bias"], 1)
    ]


def _matches_fairlearn(report: dict[str, Any], served: dict[str, np.ndarray]) -> None:
    group = np.where(served["sex"] == "f", "d", "a")
    y, p = served["label"], (served["score"] >= 0.5).astype(int)
    metrics = report.metrics
    assert abs(metrics["DPPL"]) == pytest.approx(
        demographic_parity_difference(y, p, sensitive_features=group)
    )
    assert metrics["equal_opportunity_difference"] == pytest.approx(
        equal_opportunity_difference(y, p, sensitive_features=group)
    )
    assert metrics["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, p, sensitive_features=group)
    )
    a, d = group == "a", group == "d"
    assert metrics["DPL"] == pytest.approx(y[a].mean() - y[d].mean())
    assert metrics["AD"] == pytest.approx((y[a] == p[a]).mean() - (y[d] == p[d]).mean())
    assert metrics["CI"] == pytest.approx((a.sum() - d.sum()) / len(y))


def test_a_numeric_facet_on_real_gateway_traffic(flight_platform: FlightPlatform) -> None:
    """Evening departures (hour >= 17) against the rest, scored by the served model."""
    services = flight_platform.services
    traffic = send_traffic(flight_platform)
    served = traffic["served"]["second"]
    labelled = dict(list(served.items())[:2500])
    services.monitoring.put_ground_truth(
        "flights",
        [{"inference_id": i, "row": r, "label": label} for (i, r), (_, label) in labelled.items()],
    )
    services.monitoring.create(
        {
            "name": "flights-bias",
            "kind": "bias",
            "endpoint": "flights",
            "bias": {
                "facet": "hour",
                "facet_threshold": 17,
                "probability_threshold": 0.5,
                "thresholds": {"DI": {"min": 0.0}, "AD": {"max": 1.0}},
            },
        },
        actor="test",
    )
    start, end = traffic["windows"]["second"]
    run = execute_run(
        flight_platform, services.monitoring.run("flights-bias", actor="test", start=start, end=end)
    )
    assert run.status == "no_violations", run
    report = services.monitoring.report(run.id)
    assert (report.labelled, report.unlabelled) == (2500, 500)
    hours = flight_platform.second_half["hour"].to_numpy()[:2500]  # served in this order
    group = np.where(hours >= 17, "d", "a")
    y = np.array([label for _, label in labelled.values()])
    p = (np.array([score for score, _ in labelled.values()]) >= 0.5).astype(int)
    a, d = group == "a", group == "d"
    assert report.groups["d"]["rows"] == int(d.sum()) > 0
    assert report.metrics["DI"] == pytest.approx(p[d].mean() / p[a].mean())
    assert report.metrics["DPL"] == pytest.approx(y[a].mean() - y[d].mean())
    tpr = {g: p[m & (y == 1)].mean() for g, m in (("a", a), ("d", d))}
    assert report.metrics["RD"] == pytest.approx(tpr["a"] - tpr["d"])
    assert report.metrics["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, p, sensitive_features=group)
    )


def test_a_facet_missing_from_captured_traffic_fails_the_run_saying_so(
    flight_platform: FlightPlatform, loans: dict[str, dict[str, np.ndarray]]
) -> None:
    # No endpoint "loans" is deployed, so nothing at creation knows its columns.
    _loans_monitor(flight_platform, "loans-region", facet="region", facet_values=["north"])
    run, _ = _run(flight_platform, "loans-region", HOUR)
    assert run.state == "failed" and run.status == "failed"
    assert "no input column 'region' (it has sex, income)" in run.error
    failed = flight_platform.services.events.read(types=["monitor.run_failed"], limit=1000)
    assert [e.payload["run_id"] for e in failed if e.payload["monitor"] == "loans-region"] == [
        run.id
    ]


def test_a_facet_value_absent_from_the_window_leaves_group_d_metrics_undefined(
    flight_platform: FlightPlatform, loans: dict[str, dict[str, np.ndarray]]
) -> None:
    _loans_monitor(flight_platform, "loans-other", facet_values=["x"])
    run, report = _run(flight_platform, "loans-other", HOUR)
    assert run.status == "no_violations"
    assert report.unmatched_facet_values == ["x"]
    assert report.metrics["CI"] == 1.0 and report.metrics["DI"] is None
    assert report.undefined["DI"] == "facet d has no rows"


@pytest.fixture(scope="module")
def flights_baseline(flight_platform: FlightPlatform) -> str:
    flight_platform.services.baselines.create(
        "bias-flights", source={"file": flight_platform.train_file}, actor="test"
    )
    return "bias-flights"


GOOD = {"facet": "hour", "facet_threshold": 17, "probability_threshold": 0.5}


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ({"bias": GOOD | {"thresholds": {"disparity": {"min": 0.8}}}}, "bias.thresholds",
         "'disparity' is not a bias metric"),
        ({"bias": {"facet": "hour"}}, "bias.facet_values", "exactly one"),
        ({"bias": GOOD | {"facet_values": [1]}}, "bias.facet_values", "exactly one"),
        ({"bias": GOOD | {"facet": "origin"}}, "bias.facet",
         "the model inputs of endpoint 'flights' has no column 'origin'"),
        ({"bias": GOOD | {"facet": "origin"}, "baseline": "bias-flights"}, "bias.facet",
         "baseline 'bias-flights' has no column 'origin'"),
        ({"bias": GOOD | {"thresholds": {"DI": {}}}}, "bias.thresholds.DI", "min, max"),
        ({}, "body", "needs bias settings"),
        ({"kind": "model_quality", "model_quality": {"problem_type": "regression"},
          "bias": GOOD}, "body", "belong to a bias monitor"),
    ],
)  # fmt: skip
def test_bad_bias_specs_name_the_field_and_store_nothing(
    flight_platform: FlightPlatform, flights_baseline: str, spec: dict[str, Any], field: str,
    says: str
) -> None:  # fmt: skip
    services = flight_platform.services
    body = {"name": "bad-bias", "kind": "bias", "endpoint": "flights"} | spec
    before = services.monitoring.list()
    with pytest.raises(InvalidInput) as caught:
        services.monitoring.create(body, actor="test")
    assert caught.value.field == field and says in caught.value.message
    # The same over REST: a 400 naming the field.
    response = TestClient(create_app(services)).post("/api/v1/monitors", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field and says in error["message"]
    assert services.monitoring.list() == before


def test_the_cli_prints_a_bias_report(
    flight_platform: FlightPlatform,
    loans: dict[str, dict[str, np.ndarray]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = flight_platform.services.settings
    monkeypatch.setenv("SLIPWAY_HOME", str(settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", settings.database.url)
    monkeypatch.setenv("COLUMNS", "200")
    _loans_monitor(flight_platform, "loans-cli")
    run, _ = _run(flight_platform, "loans-cli", HOUR)
    result = CliRunner().invoke(app, ["monitors", "report", str(run.id)])
    assert result.exit_code == 0, result.output
    shown = result.stdout
    assert "500 predictions labelled, 50 not yet; facet d: sex in ['f'], facet a: the rest" in shown
    di = [line for line in shown.splitlines() if line.strip("│ ").startswith("DI ")]
    assert di and "0.6" in di[0] and "yes" in di[0], shown
    assert "DI 0.6 of facet sex is below 0.8" in shown
