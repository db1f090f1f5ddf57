"""``POST /endpoints/{name}/explain`` through a real gateway: the invocation formats,
attributions that add up to the model's raw output, the same checks (and enrichment) as
invocations, and a 400 naming ``model`` for a model without an explainer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pytest

from slipway.serving.stats import read_counts
from tests.serving import models as test_models
from tests.serving.conftest import Platform, RunningGateway, _register

ROWS = [{"x1": 0.5, "x2": -1.0}, {"x1": 2.0, "x2": 0.25}, {"x1": -1.5, "x2": 1.75}]


class Linear(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A pyfunc with no tree inside: explained by Kernel SHAP over its input example."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return np.asarray(3.0 * model_input["x1"] - 2.0 * model_input["x2"] + 1.0)


@dataclass
class Explained:
    url: str
    booster: lightgbm.Booster
    example: pd.DataFrame  # the pyfunc's registered input example
    group: str  # the feature group the enriched endpoint joins


@pytest.fixture(scope="module")
def explained(platform: Platform, gateway: RunningGateway) -> Iterator[Explained]:
    services = platform.services
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        yield from _explained(platform, gateway)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def _explained(platform: Platform, gateway: RunningGateway) -> Iterator[Explained]:
    services = platform.services
    x = test_models.frame(rows=400, seed=5)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(x, (x["x1"] + x["x2"] > 0).astype(int)),
        num_boost_round=30,
    )
    example = test_models.frame(rows=60, seed=6)
    experiment = services.registry.mlflow.experiment_id(
        f"explain-{uuid.uuid4().hex[:6]}", services.settings.artifact_root
    )
    signature = mlflow.models.infer_signature(x, booster.predict(x))
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.lightgbm.log_model(booster, name="model", signature=signature)
    lgbm = _register(services, "explain-lgbm", run.info.run_id)
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.pyfunc.log_model(
            name="model", python_model=Linear(), signature=signature, input_example=example
        )
    kernel = _register(services, "explain-kernel", run.info.run_id)
    group = f"explain_{uuid.uuid4().hex[:6]}"
    services.features.create_group(
        {
            "name": group,
            "record_identifiers": [{"name": "customer_id", "type": "int"}],
            "features": [{"name": "x2", "type": "float"}],
        }
    )
    services.features.ingest(
        group,
        pd.DataFrame(
            {"customer_id": [1, 2], "x2": [-1.0, 0.25], "event_time": [datetime.now(UTC)] * 2}
        ),
    )
    for name, ref, extra in (
        ("explain-lgbm", lgbm, {}),
        ("explain-kernel", kernel, {}),
        ("explain-none", platform.refs["linear"], {}),
        ("explain-enriched", lgbm, {"enrichment": {"features": [f"{group}:x2"]}}),
    ):
        described = platform.deploy(
            {"name": name, "variants": [{"name": "main", "model": ref}], **extra}
        )
        assert described.status == "InService", described
    yield Explained(gateway.url, booster, example, group)


def _explain(url: str, endpoint: str, **request: Any) -> httpx.Response:
    return httpx.post(f"{url}/endpoints/{endpoint}/explain", timeout=60, **request)


def _attributions(payload: dict[str, Any]) -> np.ndarray:
    return np.array(
        [[row["attributions"][f] for f in payload["features"]] for row in payload["explanations"]]
    )


def _outputs(payload: dict[str, Any]) -> np.ndarray:
    bases = np.array([row["base_value"] for row in payload["explanations"]])
    return bases + _attributions(payload).sum(axis=1)


@pytest.mark.parametrize(
    "request_",
    [
        {
            "json": {
                "dataframe_split": {
                    "columns": ["x1", "x2"],
                    "data": [list(r.values()) for r in ROWS],
                }
            }
        },
        {"json": {"dataframe_records": ROWS}},
        {"json": {"instances": [[r["x1"], r["x2"]] for r in ROWS]}},
        {
            "content": "x1,x2\n" + "".join(f"{r['x1']},{r['x2']}\n" for r in ROWS),
            "headers": {"content-type": "text/csv"},
        },
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "csv"],
)
def test_every_invocation_format_explains_the_raw_output(
    explained: Explained, request_: dict[str, Any]
) -> None:
    response = _explain(explained.url, "explain-lgbm", **request_)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["output_space"] == "raw"
    assert payload["features"] == ["x1", "x2"]
    matrix = np.array([[r["x1"], r["x2"]] for r in ROWS])
    # base value + attributions = the booster's log-odds, row by row
    np.testing.assert_allclose(
        _outputs(payload), explained.booster.predict(matrix, raw_score=True), rtol=1e-9
    )
    contributions = explained.booster.predict(matrix, pred_contrib=True)
    np.testing.assert_allclose(_attributions(payload), contributions[:, :-1], atol=1e-9)
    invoked = httpx.post(
        f"{explained.url}/endpoints/explain-lgbm/invocations", json={"dataframe_records": ROWS}
    )
    assert [row["prediction"] for row in payload["explanations"]] == invoked.json()["predictions"]
    assert {row["explained_class"] for row in payload["explanations"]} == {1}
    assert response.headers["x-slipway-variant"] == "main"
    assert response.headers["x-slipway-model-version"].startswith("explain-lgbm:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataframe_records": [{"x1": 1.0}]}, "x2"),
        ({"dataframe_records": [{"x1": "one", "x2": 2.0}]}, "x1"),
        ({"dataframe_split": {"columns": ["x1", "x2"], "data": [[1.0, None]]}}, "x2"),
        ({"dataframe_records": [{"x1": 1.0, "x2": 2.0, "x3": 3.0}]}, "x3"),
        ({"rows": ROWS}, "rows"),
    ],
    ids=["missing-column", "wrong-type", "null", "extra-column", "unknown-format"],
)
def test_bad_input_is_a_400_naming_the_field(
    explained: Explained, body: object, field: str
) -> None:
    response = _explain(explained.url, "explain-lgbm", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"]["field"] == field


def test_other_refusals(explained: Explained) -> None:
    assert _explain(explained.url, "nope", json={"dataframe_records": ROWS}).status_code == 404
    wrong = _explain(explained.url, "explain-lgbm", content=b"x", headers={"content-type": "a/b"})
    assert wrong.status_code == 415
    assert httpx.get(f"{explained.url}/endpoints/explain-lgbm/explain").status_code == 405


def test_a_model_without_an_explainer_is_a_400_and_counts_nothing(
    platform: Platform, gateway: RunningGateway, explained: Explained
) -> None:
    """The linear model was registered without an input example: no tree to walk and no
    background for Kernel SHAP."""
    for _ in range(2):  # refused when building, then from the cached refusal
        response = _explain(explained.url, "explain-none", json={"dataframe_records": ROWS})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["details"]["field"] == "model"
        assert "input example" in error["message"]
    gateway.gateway.recorder.flush()
    with platform.services.db.session() as session:
        assert read_counts(session, endpoint="explain-none") == {}  # nothing served


def test_a_pyfunc_is_explained_by_kernel_shap_over_its_input_example(
    explained: Explained,
) -> None:
    response = _explain(explained.url, "explain-kernel", json={"dataframe_records": ROWS})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["output_space"] == "prediction"
    predictions = np.array([row["prediction"] for row in payload["explanations"]])
    np.testing.assert_allclose(_outputs(payload), predictions, atol=1e-9)
    # A linear model's exact Shapley values: w_i (x_i - the background's mean of x_i); the
    # background is the whole example here (60 rows, under the default 100).
    matrix = np.array([[r["x1"], r["x2"]] for r in ROWS])
    mean = explained.example[["x1", "x2"]].to_numpy().mean(axis=0)
    expected = np.array([3.0, -2.0]) * (matrix - mean)
    np.testing.assert_allclose(_attributions(payload), expected, atol=1e-9)
    assert "explained_class" not in payload["explanations"][0]


def test_an_enriched_endpoint_explains_the_joined_features(explained: Explained) -> None:
    body = {"dataframe_records": [{"customer_id": 1, "x1": 0.5}, {"customer_id": 2, "x1": 2.0}]}
    response = _explain(explained.url, "explain-enriched", json=body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["features"] == ["x1", "x2"]  # x2 came from the feature group
    matrix = np.array([[0.5, -1.0], [2.0, 0.25]])
    np.testing.assert_allclose(
        _outputs(payload), explained.booster.predict(matrix, raw_score=True), rtol=1e-9
    )
    missing = _explain(explained.url, "explain-enriched", json={"dataframe_records": [{"x1": 0.5}]})
    assert missing.status_code == 400
    assert missing.json()["error"]["details"]["field"] == "customer_id"
