"""An A/B test read from what the endpoint served: two classifiers serving probabilities
behind one endpoint, ground truth sent later, per-variant ROC AUC equal to scikit-learn's
over the captured rows joined with their labels, a reproducible interval, a verdict, and
the REST face."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app as cli
from slipway.core.errors import InvalidInput, NotFound
from slipway.evaluation import ab
from slipway.monitoring import ab_test
from slipway.monitoring.capture import read_window
from slipway.monitoring.resources import ABReport
from slipway.steps import compare_models, labelled_traffic
from tests.api.conftest import bearer
from tests.serving import models as test_models
from tests.serving.conftest import Platform, RunningGateway

ENDPOINT = "abtest"
REQUESTS = 400


def _register(platform: Platform, name: str, model: Any) -> str:
    services = platform.services
    experiment = services.registry.mlflow.experiment_id("ab-test", services.settings.artifact_root)
    x = test_models.frame()
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=mlflow.models.infer_signature(x, model.predict(x)),
                pip_requirements=["scikit-learn"],
            )
    finally:  # a module fixture: monkeypatch is function-scoped
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    version = services.registry.register(
        name, f"runs:/{run.info.run_id}/model", actor="test", output="probabilities"
    )
    services.registry.set_approval(name, version.version, "Approved", actor="test", comment="")
    return f"{name}:{version.version}"


@pytest.fixture(scope="module")
def served(platform: Platform, gateway: RunningGateway) -> dict[str, Any]:
    """Traffic split 50/50 between a weak champion and a strong challenger, captured,
    with every label sent back as ground truth."""
    x = test_models.frame(rows=2000, seed=1)
    truth = (x["x1"] + x["x2"] + np.random.default_rng(2).normal(size=len(x)) > 0).astype(int)
    # The champion learned from shuffled labels (ROC AUC near 0.5), the challenger from
    # the truth (near 0.88): a difference far beyond what 200 samples a side blur.
    shuffled = np.random.default_rng(3).permutation(truth.to_numpy())
    weak = LogisticRegression().fit(x[["x1", "x2"]], shuffled)
    strong = LogisticRegression().fit(x[["x1", "x2"]], truth)
    refs = {
        "champion": _register(platform, "ab-weak", weak),
        "challenger": _register(platform, "ab-strong", strong),
    }
    since = datetime.now(UTC) - timedelta(seconds=1)
    platform.deploy(
        {
            "name": ENDPOINT,
            "variants": [
                {"name": "champion", "model": refs["champion"], "weight": 50},
                {"name": "challenger", "model": refs["challenger"], "weight": 50},
            ],
            "data_capture": {"enabled": True},
        }
    )
    sample = test_models.frame(rows=REQUESTS, seed=7)
    labels = sample["x1"] + sample["x2"] + np.random.default_rng(8).normal(size=REQUESTS) > 0
    with httpx.Client(timeout=30) as client:
        for i in range(REQUESTS):
            row = {"x1": float(sample["x1"][i]), "x2": float(sample["x2"][i])}
            response = client.post(
                f"{gateway.url}/endpoints/{ENDPOINT}/invocations",
                json={"dataframe_records": [row]},
                headers={"X-Slipway-Inference-Id": f"ab-{i}"},
            )
            assert response.status_code == 200, response.text
    gateway.gateway.capture.flush()
    gateway.gateway.recorder.flush()
    platform.services.monitoring.put_ground_truth(
        ENDPOINT,
        [{"inference_id": f"ab-{i}", "row": 0, "label": int(labels[i])} for i in range(REQUESTS)],
    )
    return {"since": since, "labels": labels}


def test_per_variant_roc_auc_equals_scikit_learns_over_the_joined_rows(
    platform: Platform, served: dict[str, Any]
) -> None:
    rule = ab.Rule(min_samples=50, resamples=300, seed=5)
    report = ab_test.run(
        platform.services, ENDPOINT, since=served["since"], rule=rule, reference="champion"
    )
    assert isinstance(report, ABReport)
    assert report.captured_rows == REQUESTS and report.labelled_rows == REQUESTS
    captured = read_window(
        platform.services.artifacts, ENDPOINT, served["since"], datetime.now(UTC)
    ).to_pandas()
    captured["label"] = [
        int(served["labels"][int(i.split("-")[1])]) for i in captured["inference_id"]
    ]
    for variant in ("champion", "challenger"):
        rows = captured[captured["variant"] == variant]
        figures = report.variants[variant]
        assert figures["samples"] == len(rows) > 100
        assert figures["roc_auc"] == pytest.approx(
            roc_auc_score(rows["label"], rows["prediction"]), abs=1e-12
        )
        assert figures["traffic"]["requests"] == len(rows)
        assert figures["traffic"]["p99_ms"] is not None
    comparison = report.comparisons[0]
    assert comparison.variant == "challenger" and comparison.versus == "champion"
    assert comparison.verdict == ab.WINNER, comparison
    again = ab_test.run(
        platform.services, ENDPOINT, since=served["since"], rule=rule, reference="champion"
    )
    assert again.comparisons == report.comparisons  # the seed makes it reproducible


def test_the_report_over_rest(platform: Platform, served: dict[str, Any]) -> None:
    """(The serving platform runs with auth off; the route shares the endpoints router's
    authorization, which tests/serving/test_latency_sketch.py checks with auth on.)"""
    services = platform.services
    viewer = bearer(services.tokens.create("ab-viewer", "viewer", created_by="test")[1])
    url = f"/api/v1/endpoints/{ENDPOINT}/ab-test"
    params: dict[str, Any] = {
        "since": served["since"].isoformat(),
        "reference": "champion",
        "min_samples": 50,
        "resamples": 200,
        "seed": 1,
    }
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        body = client.get(url, params=params, headers=viewer)
        assert body.status_code == 200, body.text
        report = body.json()
        assert set(report["variants"]) == {"champion", "challenger"}
        assert report["comparisons"][0]["verdict"] == ab.WINNER, report
        for change, field in (
            ({"metric": "auc"}, "metric"),
            ({"reference": "nobody"}, "reference"),
            ({"until": (served["since"] - timedelta(hours=1)).isoformat()}, "until"),
        ):
            bad = client.get(url, params=params | change, headers=viewer)
            assert bad.status_code == 400, (change, bad.text)
            assert bad.json()["error"]["details"]["field"].endswith(field), bad.json()
        missing = client.get(url, params={}, headers=viewer)
        assert missing.status_code == 400
        assert (
            client.get("/api/v1/endpoints/nope/ab-test", params=params, headers=viewer).status_code
            == 404
        )


def test_the_report_on_the_command_line(
    platform: Platform, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in platform.services.settings.as_env().items():
        monkeypatch.setenv(key, value)
    since = served["since"].isoformat()
    args = ["endpoints", "ab-test", ENDPOINT, "--since", since, "--reference", "champion"]
    table = CliRunner().invoke(cli, [*args, "--min-samples", "50"])
    assert table.exit_code == 0, table.output
    assert "challenger" in table.stdout and "winner" in table.stdout
    as_json = CliRunner().invoke(cli, [*args, "--min-samples", "50", "-o", "json"])
    assert json.loads(as_json.stdout)["comparisons"][0]["verdict"] == ab.WINNER
    refused = CliRunner().invoke(cli, [*args, "--metric", "auc"])
    assert refused.exit_code == 2 and "metric" in refused.output


def test_labelled_traffic_is_evaluation_data_for_a_relative_gate(
    platform: Platform, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The champion compared with a candidate on the traffic it actually served."""
    for key, value in platform.services.settings.as_env().items():
        monkeypatch.setenv(key, value)
    frame = labelled_traffic(ENDPOINT, "outcome", hours=1)
    assert len(frame) == REQUESTS and list(frame.columns) == ["x1", "x2", "outcome"]
    assert frame["outcome"].sum() == int(served["labels"].sum())
    candidate = LogisticRegression().fit(frame[["x1", "x2"]], frame["outcome"])
    result = compare_models(candidate, frame, "outcome", f"endpoint:{ENDPOINT}/champion")
    assert result["reference"]["model"].startswith("ab-weak:")
    assert result["passed"] is True and result["rows"] == REQUESTS
    with pytest.raises(InvalidInput) as caught:
        labelled_traffic(ENDPOINT, "x1")
    assert caught.value.field == "label"
    with pytest.raises(NotFound):
        labelled_traffic("no-such-endpoint")
