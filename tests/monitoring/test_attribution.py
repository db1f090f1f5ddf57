"""Attribution-drift monitors (SageMaker Clarify's explainability monitor): the global
importance of captured traffic against the version's registered importance, ranked by
NDCG, checked by a worker, with the events every monitor raises.

The flight-delay model is registered again as ``flight-why`` with its global importance
on the training data in the lineage (as ``register_model(reports=...)`` keeps it) and
served behind the real gateway as ``flights-why``. Two kinds of traffic: the held-out
January-June flights outside midday (the model leans on the departure hour most, as in
training), and midday flights alone (12-14 h, where the hour barely moves the score:
humidity overtakes it, NDCG 0.85).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import ndcg_score
from typer.testing import CliRunner

from slipway.api.app import create_app
from slipway.cli.main import app
from slipway.core.errors import InvalidInput
from slipway.explain import shaplib
from slipway.monitoring.attribution import CHECK, ndcg
from slipway.registry.lineage import Lineage
from slipway.registry.predict import load_model
from slipway.steps import explain_global
from tests.monitoring.conftest import FEATURES, FlightPlatform, as_records, execute_run

ENDPOINT = "flights-why"
MODEL = "flight-why"


@pytest.mark.parametrize("seed", range(12))
def test_ndcg_is_scikit_learns_with_ties_and_top_k(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    names = [f"f{i}" for i in range(n)]
    reference = rng.uniform(0.0, 1.0, n) * (rng.random(n) < 0.8)  # some exactly 0
    reference[0] = 0.5
    current = rng.integers(0, 4, n).astype(float)  # many ties
    k = None if seed % 3 == 0 else int(rng.integers(1, n + 1))
    ours = ndcg(dict(zip(names, reference, strict=True)), dict(zip(names, current, strict=True)), k)
    assert ours == pytest.approx(ndcg_score([reference], [current], k=k), rel=1e-12, abs=1e-15)


def test_ndcg_of_a_ranking_against_itself_and_reversed() -> None:
    reference = {"a": 3.0, "b": 2.0, "c": 1.0}
    assert ndcg(reference, reference) == pytest.approx(1.0)
    assert (ndcg(reference, {"a": 0.1, "b": 0.2, "c": 0.3}) or 1.0) < 0.9
    # a feature only one side knows counts 0 on the other
    assert (ndcg(reference, {"a": 1.0, "b": 0.5, "c": 0.2, "d": 9.0}) or 1.0) < 1.0
    assert ndcg({"a": 0.0}, {"a": 1.0}) is None  # nothing is relevant: undefined


@pytest.fixture(scope="module")
def why(flight_platform: FlightPlatform) -> dict[str, Any]:
    """``flight-why`` registered with its training importance, served as ``flights-why``;
    the held-out flights outside midday, then midday flights, each in its own window."""
    fp = flight_platform
    services = fp.services
    native = load_model(services.registry, "flight-delay", 1).native
    assert native is not None
    importance = explain_global(native, pd.read_parquet(fp.train_file))
    run_id = services.registry.get("flight-delay", 1).run_id
    version = services.registry.register(
        MODEL,
        f"runs:/{run_id}/model",
        actor="t",
        lineage=Lineage(run_id=run_id, reports={"importance": importance}),
    )
    services.registry.set_approval(MODEL, version.version, "Approved", actor="t")
    fp.platform.deploy(
        {
            "name": ENDPOINT,
            "variants": [{"name": "main", "model": f"{MODEL}:{version.version}"}],
            "data_capture": {"enabled": True, "sampling_percent": 100},
        }
    )
    midday = fp.first_half["hour"].between(12, 14)
    windows: dict[str, tuple[datetime, datetime]] = {}
    frames = {"usual": fp.first_half[~midday], "midday": fp.first_half[midday]}
    start = datetime.now(UTC)
    for name, frame in frames.items():
        for offset in range(0, len(frame), 250):
            response = httpx.post(
                f"{fp.gateway.url}/endpoints/{ENDPOINT}/invocations",
                json=as_records(frame.iloc[offset : offset + 250]),
                timeout=30,
            )
            assert response.status_code == 200, response.text
        fp.gateway.gateway.capture.flush()
        end = datetime.now(UTC)  # the next window starts here: no row is in both
        windows[name] = (start, end)
        start = end
    return {
        "native": native,
        "importance": importance["importance"],
        "frames": frames,
        "windows": windows,
        "version": version.version,
    }


def _run(fp: FlightPlatform, monitor: str, window: tuple[datetime, datetime]) -> Any:
    queued = fp.services.monitoring.run(monitor, actor="test", start=window[0], end=window[1])
    done = execute_run(fp, queued)
    assert done.state == "completed", done
    return done, fp.services.monitoring.report(done.id)


def _shap_importance(native: Any, frame: pd.DataFrame) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = shaplib.shap().TreeExplainer(native).shap_values(frame[FEATURES])
    means = np.abs(np.asarray(values)).mean(axis=0)
    return dict(zip(FEATURES, means.tolist(), strict=True))


def _monitor(fp: FlightPlatform, name: str, **attribution: Any) -> None:
    if name not in {m.name for m in fp.services.monitoring.list()}:
        spec = {"name": name, "kind": "attribution_drift", "endpoint": ENDPOINT}
        fp.services.monitoring.create(spec | {"attribution": attribution}, actor="test")


def test_traffic_like_training_keeps_the_registered_ranking(
    flight_platform: FlightPlatform, why: dict[str, Any]
) -> None:
    _monitor(flight_platform, "why-usual")
    done, report = _run(flight_platform, "why-usual", why["windows"]["usual"])
    usual = why["frames"]["usual"]
    assert done.status == "no_violations" and report.violations == []
    assert report.kind == "attribution_drift" and report.rows == len(usual)
    [model] = report.models
    assert model["model"] == f"{MODEL}:{why['version']}"
    assert (model["rows"], model["explained"]) == (len(usual), len(usual))
    assert (model["reference_source"], model["output_space"]) == ("registered", "raw")
    # The importance is mean |SHAP| of exactly the rows served, as SHAP computes it.
    expected = _shap_importance(why["native"], usual)
    shown = {f["feature"]: f["importance"] for f in model["features"]}
    assert shown == pytest.approx(expected, rel=1e-9)
    reference = {f["feature"]: f["reference"] for f in model["features"]}
    assert reference == pytest.approx(why["importance"])
    names = sorted(FEATURES)
    by_sklearn = ndcg_score([[why["importance"][n] for n in names]], [[expected[n] for n in names]])
    assert model["ndcg"] == pytest.approx(by_sklearn, rel=1e-9) and model["ndcg"] > 0.99
    assert [f["rank"] for f in model["features"]] == list(range(1, len(FEATURES) + 1))
    assert done.summary["ndcg"] == {model["model"]: model["ndcg"]}


def test_midday_traffic_reranks_the_features_a_violation_with_events(
    flight_platform: FlightPlatform, why: dict[str, Any]
) -> None:
    services = flight_platform.services
    _monitor(flight_platform, "why-midday")
    done, report = _run(flight_platform, "why-midday", why["windows"]["midday"])
    assert done.status == "violations"
    [model] = report.models
    ranked = [f["feature"] for f in model["features"]]
    assert ranked[0] != max(why["importance"], key=why["importance"].get)  # the hour fell
    expected = _shap_importance(why["native"], why["frames"]["midday"])
    names = sorted(FEATURES)
    by_sklearn = ndcg_score([[why["importance"][n] for n in names]], [[expected[n] for n in names]])
    assert model["ndcg"] == pytest.approx(by_sklearn, rel=1e-9) and model["ndcg"] < 0.9
    [violation] = report.violations
    assert (violation["check"], violation["metric"], violation["model"]) == (
        CHECK,
        "ndcg",
        model["model"],
    )
    assert violation["value"] == model["ndcg"] and violation["threshold"] == 0.9
    assert "below 0.9" in violation["message"]
    assert done.summary["checks"] == {CHECK: 1}
    raised = services.events.read(types=["monitor.violations"], limit=1000)
    alarms = [e.payload for e in raised if e.payload["monitor"] == "why-midday"]
    assert [(p["run_id"], p["checks"], p["kind"]) for p in alarms] == [
        (done.id, [CHECK], "attribution_drift")
    ]


def test_a_given_reference_top_k_and_a_seeded_sample(
    flight_platform: FlightPlatform, why: dict[str, Any]
) -> None:
    reference = {"hour": 1.0, "humid": 0.5, "dewp": 0.2}
    _monitor(flight_platform, "why-sample", reference=reference, top_k=2, max_rows=300, seed=5)
    _, report = _run(flight_platform, "why-sample", why["windows"]["usual"])
    [model] = report.models
    assert (model["rows"], model["explained"]) == (len(why["frames"]["usual"]), 300)
    assert model["reference_source"] == "monitor" and report.top_k == 2
    importance = {f["feature"]: f["importance"] for f in model["features"]}
    names = sorted(importance)
    by_sklearn = ndcg_score(
        [[reference.get(n, 0.0) for n in names]], [[importance[n] for n in names]], k=2
    )
    assert model["ndcg"] == pytest.approx(by_sklearn, rel=1e-12)
    _, repeated = _run(flight_platform, "why-sample", why["windows"]["usual"])
    assert repeated.models[0]["features"] == model["features"]  # the same seeded rows


@pytest.mark.parametrize(
    ("endpoint", "attribution", "field", "says"),
    [
        (ENDPOINT, {"reference": {"hour": 1.0, "nope": 0.5}}, "attribution.reference.nope",
         "no column 'nope'"),
        ("flights", {}, "attribution.reference", "registered without a global importance"),
        (ENDPOINT, {"threshold": 1.5}, "attribution.threshold", "less than or equal to 1"),
        (ENDPOINT, {"reference": {"hour": -1.0}}, "attribution.reference", ">= 0"),
        (ENDPOINT, {"reference": {"hour": 0.0}}, "attribution.reference", "above 0"),
        (ENDPOINT, {"max_rows": 0}, "attribution.max_rows", "greater than or equal to 1"),
    ],
)  # fmt: skip
def test_bad_attribution_specs_name_the_field_and_store_nothing(
    flight_platform: FlightPlatform,
    why: dict[str, Any],
    endpoint: str,
    attribution: dict[str, Any],
    field: str,
    says: str,
) -> None:
    services = flight_platform.services
    body: dict[str, Any] = {"name": "bad-why", "kind": "attribution_drift", "endpoint": endpoint}
    body |= {"attribution": attribution}
    before = services.monitoring.list()
    with pytest.raises(InvalidInput) as caught:
        services.monitoring.create(body, actor="test")
    assert caught.value.field == field and says in caught.value.message, caught.value
    response = TestClient(create_app(services)).post("/api/v1/monitors", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["details"]["field"] == field and says in error["message"]
    assert services.monitoring.list() == before


def test_attribution_settings_belong_to_an_attribution_monitor(
    flight_platform: FlightPlatform,
) -> None:
    body: dict[str, Any] = {"name": "bad-kind", "kind": "model_quality", "endpoint": "flights"}
    body |= {"model_quality": {"problem_type": "regression"}, "attribution": {}}
    with pytest.raises(InvalidInput) as caught:
        flight_platform.services.monitoring.create(body, actor="test")
    assert "belong to an attribution_drift monitor" in caught.value.message


def test_the_cli_prints_the_ranking_side_by_side(
    flight_platform: FlightPlatform, why: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = flight_platform.services.settings
    monkeypatch.setenv("SLIPWAY_HOME", str(settings.home))
    monkeypatch.setenv("SLIPWAY_DATABASE__URL", settings.database.url)
    monkeypatch.setenv("COLUMNS", "200")
    _monitor(flight_platform, "why-cli")
    done, report = _run(flight_platform, "why-cli", why["windows"]["midday"])
    result = CliRunner().invoke(app, ["monitors", "report", str(done.id)])
    assert result.exit_code == 0, result.output
    shown = result.stdout
    model = report.models[0]
    assert f"NDCG {model['ndcg']:.4f} against the registered reference (threshold 0.9)" in shown
    first = [line for line in shown.splitlines() if line.strip("│ ").startswith("1 ")]
    assert first and model["features"][0]["feature"] in first[0] and "█" in first[0], shown
    assert CHECK in shown
