"""Versions that return probabilities (``output`` ``probabilities`` or ``both``): declared
at registration, served through the real gateway in every protocol, captured, and written
by batch transform — every probability equal to ``predict_proba`` of the same model
loaded with its own MLflow flavor."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import lightgbm
import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import xgboost
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from slipway.api.app import create_app
from slipway.monitoring import ground_truth, model_quality
from slipway.monitoring.capture import read_window
from slipway.services import Services
from slipway.workers.worker import Worker
from tests.serving import models as test_models
from tests.serving.conftest import Platform, RunningGateway

ENDPOINT = "scores"
# Requirements given: MLflow would otherwise load each model in a subprocess to infer them
# (~7 s a model), and serving never reads them.
NO_INFERENCE = ["mlflow"]
TOLERANCE = 1e-9
FRAME = test_models.frame(rows=6, seed=11)
ROWS: list[dict[str, float]] = [
    {"x1": float(a), "x2": float(b)} for a, b in FRAME[["x1", "x2"]].to_numpy()
]


class Odds(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A pyfunc returning class probabilities itself: ``[1 - s, s]`` per row."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        score = 1.0 / (1.0 + np.exp(-(model_input["x1"] + model_input["x2"]).to_numpy()))
        return np.column_stack([1.0 - score, score])


@dataclass
class Scored:
    """A registered version returning probabilities, and what it must answer for ROWS."""

    variant: str
    ref: str
    output: str
    classes: list[Any]
    probabilities: np.ndarray  # predict_proba of the natively loaded model, on FRAME
    labels: list[Any] | None  # its predict, for ``both``

    def expected(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[Any] | None]:
        index = [ROWS.index(r) for r in frame.to_dict(orient="records")]
        labels = [self.labels[i] for i in index] if self.labels is not None else None
        return self.probabilities[index], labels


def _log(experiment: str, logger: Callable[[], None]) -> str:
    with mlflow.start_run(experiment_id=experiment) as run:
        logger()
    return str(run.info.run_id)


def _train(services: Services) -> dict[str, str]:
    """Run ids of the classifiers, one per flavor (and raw boosters, and a pyfunc)."""
    experiment = services.registry.mlflow.experiment_id("scores", services.settings.artifact_root)
    x = test_models.frame()
    positive = (x["x1"] + x["x2"] > 0).astype(int)
    three = (x["x1"] > 0).astype(int) + (x["x2"] > 0).astype(int)
    words = np.where(positive == 1, "yes", "no")

    def signed(model: Any, target: Any) -> Any:
        return mlflow.models.infer_signature(x, model.predict(x) if model else target)

    sk = LogisticRegression().fit(x, words)
    lgb = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(x, positive)
    xgb = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(x, three)
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7},
        lightgbm.Dataset(x, positive),
        num_boost_round=20,
    )
    xgb_booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3},
        xgboost.DMatrix(x, label=positive),
        num_boost_round=10,
    )
    odds = Odds().predict(None, x)
    return {
        "sklearn": _log(
            experiment,
            lambda: mlflow.sklearn.log_model(
                sk, name="model", pip_requirements=NO_INFERENCE, signature=signed(sk, None)
            ),
        ),
        "lightgbm": _log(
            experiment,
            lambda: mlflow.lightgbm.log_model(
                lgb, name="model", pip_requirements=NO_INFERENCE, signature=signed(lgb, None)
            ),
        ),
        "xgboost": _log(
            experiment,
            lambda: mlflow.xgboost.log_model(
                xgb, name="model", pip_requirements=NO_INFERENCE, signature=signed(xgb, None)
            ),
        ),
        "lgbbooster": _log(
            experiment,
            lambda: mlflow.lightgbm.log_model(
                booster,
                name="model",
                pip_requirements=NO_INFERENCE,
                signature=signed(None, booster.predict(x)),
            ),
        ),
        "xgbbooster": _log(
            experiment,
            lambda: mlflow.xgboost.log_model(
                xgb_booster,
                name="model",
                pip_requirements=NO_INFERENCE,
                signature=signed(None, xgb_booster.predict(xgboost.DMatrix(x))),
            ),
        ),
        "pyfunc": _log(
            experiment,
            lambda: mlflow.pyfunc.log_model(
                name="model",
                pip_requirements=NO_INFERENCE,
                python_model=Odds(),
                signature=signed(None, odds),
            ),
        ),
    }


def _native(services: Services, ref: str, flavor: str) -> tuple[np.ndarray, list[Any] | None]:
    """(probabilities, labels) on FRAME of ``ref`` loaded by ``mlflow.<flavor>``."""
    name, version = ref.split(":")
    local = services.registry.local_dir(services.registry.get(name, int(version)).artifact_key)
    if flavor == "pyfunc":
        return np.asarray(mlflow.pyfunc.load_model(local).predict(FRAME)), None
    if flavor == "lgbbooster":
        p = mlflow.lightgbm.load_model(local).predict(FRAME)
        return np.vstack((1.0 - p, p)).transpose(), None
    if flavor == "xgbbooster":
        p = mlflow.xgboost.load_model(local).predict(xgboost.DMatrix(FRAME))
        return np.vstack((1.0 - p, p)).transpose(), None
    model = getattr(mlflow, flavor).load_model(local)
    return np.asarray(model.predict_proba(FRAME)), np.asarray(model.predict(FRAME)).tolist()


@pytest.fixture(scope="module")
def scored(platform: Platform, gateway: RunningGateway) -> dict[str, Scored]:
    services = platform.services
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    try:
        runs = _train(services)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    out: dict[str, Scored] = {}
    for flavor, run_id in runs.items():
        natives = ("sklearn", "lightgbm", "xgboost")
        for output in ("probabilities", "both") if flavor in natives else ("probabilities",):
            version = services.registry.register(
                f"score-{flavor}", f"runs:/{run_id}/model", actor="test", output=output
            )
            services.registry.set_approval(
                version.name, version.version, "Approved", actor="test", comment="ok"
            )
            ref = f"{version.name}:{version.version}"
            probabilities, labels = _native(services, ref, flavor)
            assert version.classes is not None
            out[f"{flavor}-{output}"] = Scored(
                f"{flavor}-{output}",
                ref,
                output,
                version.classes,
                probabilities,
                labels if output == "both" else None,
            )
    platform.deploy(
        {
            "name": ENDPOINT,
            "variants": [{"name": s.variant, "model": s.ref} for s in out.values()],
            "data_capture": {"enabled": True, "sampling_percent": 100},
        }
    )
    return out


def _close(served: Any, expected: np.ndarray) -> None:
    assert np.asarray(served, dtype=np.float64).shape == expected.shape
    np.testing.assert_allclose(
        np.asarray(served, dtype=np.float64), expected, rtol=0, atol=TOLERANCE
    )


def _check_predictions(scored: Scored, body: dict[str, Any], frame: pd.DataFrame) -> None:
    probabilities, labels = scored.expected(frame)
    assert body["classes"] == scored.classes
    predictions = body["predictions"]
    if scored.output == "probabilities":
        _close(predictions, probabilities)
    else:
        assert [p["label"] for p in predictions] == labels
        _close([p["probabilities"] for p in predictions], probabilities)


def test_registration_declares_the_output_and_the_signature_describes_it(
    platform: Platform, scored: dict[str, Scored]
) -> None:
    services = platform.services
    name, number = scored["sklearn-both"].ref.split(":")
    version = services.registry.get(name, int(number))
    assert version.output == "both" and version.classes == ["no", "yes"]
    outputs = json.loads(version.signature["outputs"])
    assert [o["name"] for o in outputs] == ["label", "probability_no", "probability_yes"]
    assert [o["type"] for o in outputs] == ["string", "double", "double"]
    assert services.registry.mlflow.tag(version.name, version.version, "slipway.output") == "both"
    assert scored["xgboost-probabilities"].classes == [0, 1, 2]
    assert scored["lgbbooster-probabilities"].classes == [0, 1]
    client = TestClient(create_app(services))
    both = scored["lightgbm-both"].ref.split(":")[1]
    described = client.get(f"/api/v1/models/score-lightgbm/versions/{both}").json()
    assert described["output"] == "both" and described["classes"] == [0, 1]
    listed = client.get("/api/v1/models/score-lightgbm/versions").json()
    assert [v["output"] for v in listed] == ["probabilities", "both"]
    # A label version (every version before outputs existed) says so.
    linear = client.get("/api/v1/models/linear/versions/1").json()
    assert linear["output"] == "label" and linear["classes"] is None


BODIES: dict[str, Callable[[list[dict[str, float]]], dict[str, Any]]] = {
    "split": lambda rows: {
        "dataframe_split": {
            "columns": ["x1", "x2"],
            "data": [[r["x1"], r["x2"]] for r in rows],
        }
    },
    "records": lambda rows: {"dataframe_records": rows},
    "instances": lambda rows: {"instances": rows},
    "instances-lists": lambda rows: {"instances": [[r["x1"], r["x2"]] for r in rows]},
    "inputs-columns": lambda rows: {
        "inputs": {"x1": [r["x1"] for r in rows], "x2": [r["x2"] for r in rows]}
    },
}


@pytest.mark.parametrize("form", sorted(BODIES))
def test_invocations_in_every_mlflow_format_and_csv(
    gateway: RunningGateway, scored: dict[str, Scored], form: str
) -> None:
    for one in scored.values():
        for rows in (ROWS, ROWS[2:3]):  # a batch, and one row (the single-row fast paths)
            response = httpx.post(
                f"{gateway.url}/endpoints/{ENDPOINT}/invocations",
                json=BODIES[form](rows),
                headers={"X-Slipway-Target-Variant": one.variant},
            )
            assert response.status_code == 200, response.text
            assert response.headers["x-slipway-variant"] == one.variant
            _check_predictions(one, response.json(), pd.DataFrame(rows))
        csv = "x1,x2\n" + "".join(f"{r['x1']!r},{r['x2']!r}\n" for r in ROWS)
        response = httpx.post(
            f"{gateway.url}/endpoints/{ENDPOINT}/invocations",
            content=csv,
            headers={"content-type": "text/csv", "X-Amzn-SageMaker-Target-Variant": one.variant},
        )
        assert response.status_code == 200, response.text
        _check_predictions(one, response.json(), FRAME)


def _oip_check(scored: Scored, outputs: list[dict[str, Any]]) -> None:
    by_name = {o["name"]: o for o in outputs}
    expected_names = ["probabilities"] if scored.output == "probabilities" else ["label"]
    if scored.output == "both":
        expected_names.append("probabilities")
    assert [o["name"] for o in outputs] == expected_names
    tensor = by_name["probabilities"]
    assert tensor["datatype"] == "FP64"
    assert tensor["shape"] == [len(ROWS), len(scored.classes)]
    assert json.loads(tensor["parameters"]["classes"]) == scored.classes
    _close(np.reshape(tensor["data"], tensor["shape"]), scored.probabilities)
    if scored.labels is not None:
        assert by_name["label"]["shape"] == [len(ROWS)]
        assert by_name["label"]["data"] == scored.labels


def test_open_inference_protocol(gateway: RunningGateway, scored: dict[str, Scored]) -> None:
    import tritonclient.http as triton

    url = f"{gateway.url}/v2/models/{ENDPOINT}/infer"
    columns = [
        {"name": c, "shape": [len(ROWS)], "datatype": "FP64", "data": [r[c] for r in ROWS]}
        for c in ("x1", "x2")
    ]
    matrix = [
        {
            "name": "input",
            "shape": [len(ROWS), 2],
            "datatype": "FP64",
            "data": [[r["x1"], r["x2"]] for r in ROWS],
        }
    ]
    client = triton.InferenceServerClient(url=gateway.url.removeprefix("http://"))
    for one in scored.values():
        headers = {"X-Slipway-Target-Variant": one.variant}
        for inputs in (columns, matrix):
            response = httpx.post(url, json={"inputs": inputs}, headers=headers)
            assert response.status_code == 200, response.text
            _oip_check(one, response.json()["outputs"])
        tensors = []
        for column in ("x1", "x2"):  # tritonclient's binary tensors
            tensor = triton.InferInput(column, [len(ROWS)], "FP64")
            tensor.set_data_from_numpy(FRAME[column].to_numpy(dtype=np.float64))
            tensors.append(tensor)
        result = client.infer(ENDPOINT, tensors, headers=headers)
        _close(result.as_numpy("probabilities"), one.probabilities)
    metadata = client.get_model_metadata(ENDPOINT)  # the config's first variant
    first = next(iter(scored.values()))
    assert [o["name"] for o in metadata["outputs"]] == ["probabilities"]
    assert metadata["outputs"][0]["shape"] == [-1, len(first.classes)]


def test_captured_rows_hold_the_probabilities_and_the_score_scores_ground_truth(
    platform: Platform, gateway: RunningGateway, scored: dict[str, Scored]
) -> None:
    started = datetime.now(UTC)
    for one in scored.values():
        response = httpx.post(
            f"{gateway.url}/endpoints/{ENDPOINT}/invocations",
            json={"dataframe_records": ROWS},
            headers={
                "X-Slipway-Target-Variant": one.variant,
                "X-Slipway-Inference-Id": one.variant,
            },
        )
        assert response.status_code == 200, response.text
    gateway.gateway.capture.flush()
    artifacts = platform.services.artifacts
    root = platform.services.settings.artifact_root
    for one in scored.values():
        files = ds.dataset(
            f"{root}/capture/endpoint={ENDPOINT}/variant={one.variant}", format="parquet"
        )
        rows = [r for r in files.to_table().to_pylist() if r["inference_id"] == one.variant]
        assert sorted(r["row"] for r in rows) == list(range(len(ROWS)))
        rows.sort(key=lambda r: r["row"])
        _close([r["probabilities"] for r in rows], one.probabilities)
        if len(one.classes) == 2:  # the positive class's probability: the score
            _close([r["prediction"] for r in rows], one.probabilities[:, 1])
        elif one.labels is None:  # multiclass probabilities: as served, JSON text
            _close([json.loads(r["prediction"]) for r in rows], one.probabilities)
        else:
            assert [r["prediction"] for r in rows] == one.labels
        if one.labels is not None:
            assert [_decoded(r["label"]) for r in rows] == one.labels
        else:
            assert "label" not in rows[0]
    # The score is what a model-quality monitor ranks: late labels join by (id, row).
    binary = scored["lightgbm-both"]
    truth = [int(r["x1"] + r["x2"] > 0) for r in ROWS]
    labels = ground_truth.records_table(
        [{"inference_id": binary.variant, "row": i, "label": t} for i, t in enumerate(truth)]
    )
    captured = read_window(
        artifacts,
        ENDPOINT,
        started - timedelta(minutes=1),
        datetime.now(UTC) + timedelta(minutes=1),
        variant=binary.variant,
    )
    report = model_quality.evaluate(
        captured, labels, "binary_classification", probability_threshold=0.5
    )
    assert report["labelled"] == len(ROWS)
    expected_auc = roc_auc_score(truth, binary.probabilities[:, 1])
    assert report["metrics"]["roc_auc"] == pytest.approx(expected_auc, abs=1e-12)


def _decoded(value: Any) -> Any:
    """A captured label: numbers as they are, anything else JSON text."""
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def batch_workers(platform: Platform) -> Iterator[None]:
    pool = [Worker(platform.services, queues=("batch",), worker_id=f"scores-{n}") for n in (0, 1)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in pool]
    for thread in threads:
        thread.start()
    yield
    for worker in pool:
        worker.stopping.set()
    for thread in threads:
        thread.join(timeout=60)


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_batch_transform_writes_what_the_version_declares(
    platform: Platform,
    scored: dict[str, Scored],
    batch_workers: None,
    tmp_path: Path,
    kind: str,
) -> None:
    inputs = tmp_path / "in.parquet"
    FRAME.assign(record_id=[f"r{i}" for i in range(len(ROWS))]).to_parquet(inputs)
    batch = platform.services.batch
    for one in scored.values():
        out = tmp_path / one.variant
        name = f"scores-{kind}-{one.variant}"
        batch.submit(
            {
                "name": name,
                "model": one.ref,
                "input": {"files": {"path": str(inputs)}},
                "output": {"files": {"path": str(out), "format": kind}},
                "keep_columns": ["record_id"],
            },
            actor="test",
        )
        assert batch.wait(name, timeout=120).state == "Completed"
        parts = sorted(p for p in out.iterdir() if p.name.startswith("part-"))
        read = pd.read_parquet if kind == "parquet" else pd.read_csv
        frame = pd.concat([read(p) for p in parts]).sort_values("record_id")
        columns = [f"prediction_probability_{c}" for c in one.classes]
        expected = ["record_id", *(["prediction"] if one.labels else []), *columns]
        assert list(frame.columns) == expected
        _close(frame[columns].to_numpy(), one.probabilities)
        if one.labels is not None:
            assert frame["prediction"].tolist() == one.labels


def test_bad_outputs_are_refused_and_nothing_is_registered(
    platform: Platform, scored: dict[str, Scored]
) -> None:
    services = platform.services
    client = TestClient(create_app(services))

    def source(ref: str) -> str:
        name, version = ref.split(":")
        return f"runs:/{services.registry.get(name, int(version)).run_id}/model"

    cases = [
        (platform.refs["linear"], "maybe"),  # not an output at all
        (platform.refs["linear"], "probabilities"),  # a scikit-learn regressor
        (platform.refs["lgbm"], "both"),  # a LightGBM regression booster
        (platform.refs["xgb"], "probabilities"),  # an XGBoost regression booster
        (platform.refs["nans"], "probabilities"),  # a pyfunc without probabilities
        (scored["pyfunc-probabilities"].ref, "both"),  # a pyfunc has one output
    ]
    before = services.registry.models()
    for ref, output in cases:
        response = client.post(
            "/api/v1/models/refused/versions", json={"source": source(ref), "output": output}
        )
        assert response.status_code == 400, (ref, output, response.text)
        assert response.json()["error"]["details"]["field"] == "output", response.text
    assert client.get("/api/v1/models/refused/versions").status_code == 404
    assert services.registry.models() == before
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        services.registry.mlflow.client.get_registered_model("refused")


def test_cli_registers_with_model_output(
    platform: Platform, scored: dict[str, Scored], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from slipway.cli.main import app as cli

    services = platform.services
    monkeypatch.setenv("SLIPWAY_HOME", str(services.settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", services.settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    name, version = scored["lightgbm-both"].ref.split(":")
    source = f"runs:/{services.registry.get(name, int(version)).run_id}/model"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["models", "register", "score-cli", source, "--model-output", "probabilities"]
    )
    assert result.exit_code == 0, result.output
    assert "output probabilities; classes [0, 1]" in result.stdout
    listed = runner.invoke(cli, ["models", "versions", "score-cli", "-o", "json"])
    assert json.loads(listed.stdout)[0]["output"] == "probabilities"
    refused = runner.invoke(cli, ["models", "register", "score-cli", source, "--model-output", "x"])
    assert refused.exit_code == 2 and "model-output" in refused.output
    linear = f"runs:/{services.registry.get('linear', 1).run_id}/model"
    regressor = runner.invoke(
        cli, ["models", "register", "score-cli", linear, "--model-output", "both"]
    )
    assert regressor.exit_code != 0 and "output" in regressor.output
    assert [v.version for v in services.registry.versions("score-cli")] == [1]
