"""Every request format through real HTTP, and the answers equal MLflow pyfunc's."""

from __future__ import annotations

import httpx
import mlflow
import numpy as np
import pytest

from slipway.registry.predict import load_model
from tests.serving import models as test_models
from tests.serving.conftest import Platform, RunningGateway

ROWS = [{"x1": 0.5, "x2": -1.0}, {"x1": 2.0, "x2": 0.25}]


@pytest.fixture(scope="module")
def endpoint(platform: Platform, gateway: RunningGateway) -> str:
    platform.deploy(
        {"name": "proto", "variants": [{"name": "main", "model": platform.refs["linear"]}]}
    )
    return "proto"


def _pyfunc(platform: Platform, ref: str) -> np.ndarray:
    name, version = ref.split(":")
    local = platform.services.registry.local_dir(
        platform.services.registry.get(name, int(version)).artifact_key
    )
    frame = test_models.pd.DataFrame(ROWS)
    return np.asarray(mlflow.pyfunc.load_model(local).predict(frame))


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["x1", "x2"], "data": [[0.5, -1.0], [2.0, 0.25]]}},
        {"dataframe_records": ROWS},
        {"instances": ROWS},
        {"instances": [[0.5, -1.0], [2.0, 0.25]]},
        {"inputs": {"x1": [0.5, 2.0], "x2": [-1.0, 0.25]}},
        {"inputs": ROWS},
    ],
    ids=["split", "records", "instances", "instances-lists", "inputs-columns", "inputs-rows"],
)
def test_every_mlflow_json_format(
    platform: Platform, gateway: RunningGateway, endpoint: str, body: dict[str, object]
) -> None:
    response = httpx.post(f"{gateway.url}/endpoints/{endpoint}/invocations", json=body)
    assert response.status_code == 200, response.text
    expected = _pyfunc(platform, platform.refs["linear"])
    assert np.allclose(response.json()["predictions"], expected)
    assert response.headers["x-slipway-variant"] == "main"
    assert len(response.headers["x-slipway-inference-id"]) == 32


def test_csv(platform: Platform, gateway: RunningGateway, endpoint: str) -> None:
    response = httpx.post(
        f"{gateway.url}/endpoints/{endpoint}/invocations",
        content="x1,x2\n0.5,-1.0\n2.0,0.25\n",
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert np.allclose(response.json()["predictions"], _pyfunc(platform, platform.refs["linear"]))


@pytest.mark.parametrize("short", ["linear", "lgbm", "xgb", "hgb"])
def test_fast_path_equals_pyfunc(platform: Platform, short: str) -> None:
    name, version = platform.refs[short].split(":")
    model = load_model(platform.services.registry, name, int(version))
    assert model.fast
    from slipway.serving.gateway.inputs import Frame, check

    expected = _pyfunc(platform, platform.refs[short])
    frame = Frame({"x1": [r["x1"] for r in ROWS], "x2": [r["x2"] for r in ROWS]}, 2)
    batch = check(frame, model.schema, max_rows=10)
    assert np.array_equal(np.asarray(model.predict(batch)), expected)
    for index, row in enumerate(ROWS):  # one row at a time (LightGBM's single-row path)
        one = check(Frame({"x1": [row["x1"]], "x2": [row["x2"]]}, 1), model.schema, max_rows=10)
        assert np.array_equal(np.asarray(model.predict(one)), expected[index : index + 1])


def test_ping_and_oip_health(gateway: RunningGateway) -> None:
    assert httpx.get(f"{gateway.url}/ping").status_code == 200
    assert httpx.get(f"{gateway.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{gateway.url}/v2/health/ready").status_code == 200


def test_tritonclient_against_v2(
    platform: Platform, gateway: RunningGateway, endpoint: str
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=gateway.url.removeprefix("http://"))
    assert client.is_server_live()
    assert client.is_model_ready(endpoint)
    metadata = client.get_model_metadata(endpoint)
    assert [i["name"] for i in metadata["inputs"]] == ["x1", "x2"]
    inputs = []
    for column in ("x1", "x2"):
        tensor = triton.InferInput(column, [2], "FP64")
        tensor.set_data_from_numpy(np.array([r[column] for r in ROWS], dtype=np.float64))
        inputs.append(tensor)
    result = client.infer(endpoint, inputs)
    assert np.allclose(result.as_numpy("predict"), _pyfunc(platform, platform.refs["linear"]))
    # One [rows, columns] tensor works too.
    matrix = triton.InferInput("input", [2, 2], "FP64")
    matrix.set_data_from_numpy(np.array([[0.5, -1.0], [2.0, 0.25]]))
    result = client.infer(endpoint, [matrix])
    assert np.allclose(result.as_numpy("predict"), _pyfunc(platform, platform.refs["linear"]))


def test_pyfunc_with_strings_and_a_dataframe_output(
    platform: Platform, gateway: RunningGateway
) -> None:
    platform.deploy({"name": "echo", "variants": [{"name": "a", "model": platform.refs["echo"]}]})
    response = httpx.post(
        f"{gateway.url}/endpoints/echo/invocations",
        json={"dataframe_records": [{"city": "oslo", "n": 2}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [{"city": "OSLO", "twice": 4}]


def test_nan_output_is_null(platform: Platform, gateway: RunningGateway) -> None:
    platform.deploy({"name": "nans", "variants": [{"name": "a", "model": platform.refs["nans"]}]})
    response = httpx.post(
        f"{gateway.url}/endpoints/nans/invocations", json={"dataframe_records": ROWS}
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [None, None]


def test_metrics(gateway: RunningGateway, endpoint: str) -> None:
    for _ in range(3):
        httpx.post(
            f"{gateway.url}/endpoints/{endpoint}/invocations", json={"dataframe_records": ROWS}
        )
    gateway.gateway.recorder.flush()
    gateway.gateway.recorder._scrapes.clear()
    text = httpx.get(f"{gateway.url}/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith('slipway_requests_total{endpoint="proto",variant="main"}')
    )
    assert float(line.split()[-1]) >= 3
    assert 'slipway_model_latency_ms_bucket{endpoint="proto",variant="main",le="+Inf"}' in text
    assert "slipway_overhead_latency_ms_sum" in text


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_compiled_forest_is_bit_for_bit_sklearn(loss: str) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from slipway.registry.trees import CompiledForest

    rng = np.random.default_rng(7)
    x = rng.normal(size=(3000, 5))
    x[::5, 2] = np.nan  # trees learn where missing values go
    y = np.exp(np.nan_to_num(x) @ rng.normal(size=5) * 0.3)
    model = HistGradientBoostingRegressor(loss=loss, max_iter=30).fit(x, y)
    assert CompiledForest.supports(model)
    forest = CompiledForest(model)
    for row in x[:300]:
        assert np.array_equal(forest.predict_row(row), model.predict(row.reshape(1, -1)))
