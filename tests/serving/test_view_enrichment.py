"""An endpoint enriched by a feature view: the view version pinned in its stored config
(named, else the one its models were trained on, else the latest), models trained on
another view or version refused, predictions equal to batch scoring of the view's
training set at the captured times, and captures holding the view's columns and the
very time the windows ended at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression

from slipway.api.app import create_app
from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from slipway.registry.lineage import Lineage
from slipway.services import Services
from slipway.serving.spec import EndpointSpec
from tests.serving.conftest import SKLEARN, Platform, RunningGateway, start_gateway
from tests.waiting import eventually

# Model inputs: a stored feature, two windows, two row-level transformations and a
# request field.
INPUTS = ["age", "trips_1h", "fare_sum_24h", "senior", "per_km", "distance"]

VIEW: dict[str, Any] = {
    "name": "rider",
    "features": ["riders:age"],
    "request_fields": {"distance": "float"},
    "transformations": [
        {"name": "trips_1h", "window": {"group": "trips", "function": "count", "duration": "1h"}},
        {
            "name": "fare_sum_24h",
            "window": {"group": "trips", "column": "fare", "function": "sum", "duration": "24h"},
        },
        {"name": "senior", "expression": "age >= 60", "type": "bool"},
        {"name": "per_km", "expression": "fare_sum_24h / distance", "type": "float"},
    ],
}
# Version 2: one more transformation (a changed definition is a new version).
VIEW_2: dict[str, Any] = {
    **VIEW,
    "transformations": [
        *VIEW["transformations"],
        {"name": "long_trip", "expression": "distance > 10", "type": "bool"},
    ],
}
OTHER: dict[str, Any] = {"name": "other", "features": ["riders:age"]}


@dataclass
class Views(Platform):
    now: datetime  # the trips are placed around it
    model: Any  # the trained scikit-learn model (batch scoring)


def _train(services: Services, version: int, now: datetime) -> tuple[Any, Any, pd.DataFrame]:
    """The view's training set for rows of every rider over the last hours, a linear
    model fitted on it, and the rows."""
    rng = np.random.default_rng(version)
    times = [now - timedelta(hours=h) for h in (2, 1.5, 1, 0.75, 0.5, 0.25)]
    entities = pd.DataFrame(
        [
            {"rider_id": rider, "event_timestamp": t, "distance": float(rng.uniform(1, 20))}
            for rider in ("a", "b", "c")
            for t in times
        ]
    )
    training = services.feature_views.training_set("rider", entities, version=version)
    data = training.to_pandas()
    x = data[INPUTS]
    y = 0.5 * x["age"] + 3 * x["trips_1h"] + 0.1 * x["fare_sum_24h"] + 2 * x["per_km"]
    return training, LinearRegression().fit(x, y), x


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Views]:
    home = tmp_path_factory.mktemp("views") / "home"
    settings = load_settings(home=home, database={"url": f"sqlite:///{home.parent}/meta.db"})
    services = Services.open(settings)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        services.features.create_group(
            {
                "name": "riders",
                "record_identifiers": [{"name": "rider_id"}],
                "features": [{"name": "age", "type": "int"}],
            }
        )
        services.features.create_group(
            {
                "name": "trips",
                "record_identifiers": [{"name": "rider_id"}],
                "features": [{"name": "fare", "type": "float"}],
            }
        )
        services.features.ingest(
            "riders",
            pd.DataFrame(
                {
                    "rider_id": ["a", "b", "c"],
                    "event_time": [now - timedelta(days=30)] * 3,
                    "age": [30, 65, 41],
                }
            ),
        )
        # Trips well inside their windows for the minutes the tests take: the requests'
        # 1 h window holds the ones 20 and 25 minutes old and not the 4 h old one.
        trips = [
            ("a", timedelta(minutes=20), 12.0),
            ("a", timedelta(minutes=25), 8.0),
            ("a", timedelta(hours=4), 30.0),
            ("b", timedelta(hours=4), 5.0),
            ("b", timedelta(days=3), 50.0),
            ("c", timedelta(hours=2, minutes=30), 7.5),
            ("c", timedelta(minutes=22), 2.5),
        ]
        services.features.ingest(
            "trips",
            pd.DataFrame(
                {
                    "rider_id": [t[0] for t in trips],
                    "event_time": [now - t[1] for t in trips],
                    "fare": [t[2] for t in trips],
                }
            ),
        )
        services.feature_views.apply(VIEW)
        services.feature_views.apply(OTHER)
        # A view over an offline-only group: fine for training sets, not for serving.
        services.features.create_group(
            {
                "name": "archive",
                "record_identifiers": [{"name": "rider_id"}],
                "features": [{"name": "score", "type": "float"}],
                "online": False,
            }
        )
        services.feature_views.apply({"name": "archived", "features": ["archive:score"]})
        training, model, x = _train(services, 1, now)
        experiment = services.registry.mlflow.experiment_id("views", settings.artifact_root)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=mlflow.models.infer_signature(x, model.predict(x)),
                pip_requirements=SKLEARN,
            )
        services.feature_views.apply(VIEW_2)  # the latest is now version 2
        training_2, _, _ = _train(services, 2, now)
        v1 = training.definition.to_dict()
        stranger = {**v1, "feature_view": {**v1["feature_view"], "name": "other"}}
        altered = {**v1, "feature_view": {**v1["feature_view"], "digest": "0" * 64}}
        refs = {}
        # One model's files, registered with each lineage the pinning rules look at.
        for name, lineage in (
            ("scorer", Lineage(training_set=v1)),
            ("on-v2", Lineage(training_set=training_2.definition.to_dict())),
            ("plain", Lineage()),
            ("stranger", Lineage(training_set=stranger)),
            ("altered", Lineage(training_set=altered)),
        ):
            version = services.registry.register(
                name, f"runs:/{run.info.run_id}/model", actor="test", lineage=lineage
            )
            services.registry.set_approval(
                name, version.version, "Approved", actor="test", comment="ok"
            )
            refs[name] = f"{name}:{version.version}"
        yield Views(services, refs, now, model)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        services.close()


@pytest.fixture(scope="module")
def gateway(platform: Views) -> Iterator[RunningGateway]:
    running, stop = start_gateway(platform.services)
    yield running
    stop()


def _spec(name: str, view: str, *models: str, **enrichment: Any) -> dict[str, Any]:
    return {
        "name": name,
        "variants": [{"name": f"v{i}", "model": model} for i, model in enumerate(models)],
        "enrichment": {"feature_view": view, **enrichment},
        "data_capture": {"enabled": True},
    }


@pytest.fixture(scope="module")
def by_view(platform: Views, gateway: RunningGateway) -> str:
    """Endpoint ``by-view`` (the view named without a version), deployed once for the
    tests that use it: they run in any order."""
    platform.deploy(_spec("by-view", "rider", platform.refs["scorer"]))
    return "by-view"


def _invoke(gateway: RunningGateway, endpoint: str, records: list[dict[str, Any]]) -> Any:
    return httpx.post(
        f"{gateway.url}/endpoints/{endpoint}/invocations",
        json={"dataframe_records": records},
        timeout=30,
    )


def _captured(platform: Views, gateway: RunningGateway, endpoint: str) -> pd.DataFrame:
    gateway.gateway.capture.flush()
    root = platform.services.settings.artifact_root
    folder = f"{root}/capture/endpoint={endpoint}"
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pandas()


def test_lineage_names_the_view_of_its_training_set() -> None:
    bound = {"name": "rider", "version": 2, "digest": "ab" * 32}
    lineage = Lineage(training_set={"feature_refs": ["a:b"], "feature_view": bound})
    assert lineage.feature_view == bound
    assert Lineage().feature_view is None
    assert Lineage(training_set={"feature_refs": ["riders:age"]}).feature_view is None
    # Sent over REST as anything: no whole-number version, no digest.
    odd = {"name": "rider", "version": "2", "digest": 7}
    assert Lineage(training_set={"feature_view": odd}).feature_view == {
        "name": "rider",
        "version": None,
        "digest": None,
    }


def test_the_models_lineage_binds_the_view_it_was_trained_on(platform: Views) -> None:
    version = platform.services.registry.get("scorer", 1)
    view = platform.services.feature_views.get("rider", 1)
    assert Lineage.model_validate(version.lineage).feature_view == {
        "name": "rider",
        "version": 1,
        "digest": view.digest,
    }


# -- pinning ------------------------------------------------------------------------------


def test_the_version_the_models_were_trained_on_is_pinned(platform: Views, by_view: str) -> None:
    # The latest version is 2; the model was trained on version 1.
    assert platform.services.feature_views.get("rider").version == 2
    stored = platform.services.endpoints.describe(by_view).active
    assert stored is not None
    assert stored.spec.enrichment is not None
    assert stored.spec.enrichment.feature_view == "rider:1"


def _pinned(platform: Views, view: str, *models: str) -> str | None:
    spec = EndpointSpec.model_validate(_spec("pinned", view, *(platform.refs[m] for m in models)))
    resolved = platform.services.endpoints.resolve(spec)
    assert spec.enrichment is not None and spec.enrichment.feature_view == view  # unchanged
    assert resolved.enrichment is not None
    return resolved.enrichment.feature_view


def test_a_named_version_or_the_latest_is_pinned(platform: Views) -> None:
    assert _pinned(platform, "rider:1", "scorer") == "rider:1"
    # A model trained without a view binds nothing: the latest version.
    assert _pinned(platform, "rider", "plain") == "rider:2"
    # Variants agreeing (one bound to nothing) pin the version they were trained on.
    assert _pinned(platform, "rider", "plain", "on-v2") == "rider:2"
    assert _pinned(platform, "rider", "scorer", "plain") == "rider:1"


REFUSED = [
    ("no-such-view", "nope", ["scorer"], "does not exist"),
    ("no-such-version", "rider:9", ["plain"], "version 9 does not exist"),
    ("other-version", "rider:2", ["scorer"], "trained on version 1"),
    ("other-view", "rider", ["stranger"], "trained on feature view 'other'"),
    ("other-definition", "rider:1", ["altered"], "different definition"),
    ("disagreeing", "rider", ["scorer", "on-v2"], "different versions"),
    ("offline-only", "archived", ["plain"], "offline-only"),
]


@pytest.mark.parametrize(("name", "view", "models", "why"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_before_anything_is_written(
    platform: Views, name: str, view: str, models: list[str], why: str
) -> None:
    spec = _spec(name, view, *(platform.refs[m] for m in models))
    with pytest.raises(InvalidInput) as caught:
        platform.services.endpoints.create(spec, actor="test")
    assert caught.value.field == "enrichment.feature_view"
    assert why in caught.value.message
    assert name not in [e.name for e in platform.services.endpoints.list()]


def test_refused_over_rest_and_on_update(platform: Views, by_view: str) -> None:
    with TestClient(create_app(platform.services), raise_server_exceptions=False) as client:
        spec = _spec("rest-refused", "rider:2", platform.refs["scorer"])
        answer = client.post("/api/v1/endpoints", json=spec)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"]["field"] == "enrichment.feature_view"
        both = {**spec, "enrichment": {"feature_view": "rider", "features": ["riders:age"]}}
        answer = client.post("/api/v1/endpoints", json=both)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"]["field"] == "enrichment.feature_view"
        names = [e["name"] for e in client.get("/api/v1/endpoints").json()]
        assert "rest-refused" not in names
        # An update to a version the model was not trained on: no new config.
        before = len(platform.services.endpoints.history(by_view))
        answer = client.put(
            f"/api/v1/endpoints/{by_view}",
            json=_spec(by_view, "rider:2", platform.refs["scorer"]),
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"]["field"] == "enrichment.feature_view"
        assert len(platform.services.endpoints.history(by_view)) == before


# -- serving ------------------------------------------------------------------------------


def test_predictions_equal_batch_scoring_of_the_training_set(
    platform: Views, gateway: RunningGateway, by_view: str
) -> None:
    requests = [
        [{"rider_id": "a", "distance": 4.0}, {"rider_id": "b", "distance": 2.5}],
        [{"rider_id": "c", "distance": 12.0}],
    ]
    served: dict[str, list[float]] = {}
    for records in requests:
        answer = _invoke(gateway, by_view, records)
        assert answer.status_code == 200, answer.text
        served[answer.headers["x-slipway-inference-id"]] = answer.json()["predictions"]
    captured = _captured(platform, gateway, by_view)
    captured = captured[captured["inference_id"].isin(served)].sort_values(["inference_id", "row"])
    assert len(captured) == 3
    # The view at each request's captured time, computed offline as for training.
    features = pd.DataFrame(list(captured["features"]))
    entities = pd.DataFrame(
        {
            "rider_id": features["rider_id"],
            "event_timestamp": list(captured["time"]),
            "distance": features["distance"],
        }
    )
    offline = platform.services.feature_views.training_set("rider", entities, version=1)
    rows = offline.to_pandas()[INPUTS]
    # Every column the model read, online and offline: the same values.
    assert features[INPUTS].to_dict("records") == rows.to_dict("records")
    # And the same predictions: batch scoring sums in another order than the gateway's
    # one-request matrices (BLAS on 1 row vs 3, row- vs column-major), which may move
    # the last bit and nothing more.
    expected = platform.model.predict(rows)
    answers = [served[i][r] for i, r in zip(captured["inference_id"], captured["row"], strict=True)]
    np.testing.assert_allclose(answers, expected, rtol=1e-12, atol=0)
    # The windows did count something: two trips of a's in the hour, none of b's.
    by_rider = dict(zip(features["rider_id"], features["trips_1h"], strict=True))
    assert by_rider == {"a": 2, "b": 0, "c": 1}


def test_capture_holds_the_view_and_the_time_it_was_read_at(
    platform: Views, gateway: RunningGateway, by_view: str
) -> None:
    # The gateway sees the config active within a poll of the deployment settling.
    config = eventually(
        lambda: gateway.gateway.state.endpoints[by_view].active, what="by-view active here"
    )
    enricher = config.enricher
    assert enricher is not None
    read_at: list[int] = []
    enrich = enricher.enrich

    def recording(columns: dict[str, list[Any]], rows: int, at_us: int) -> Any:
        read_at.append(at_us)
        return enrich(columns, rows, at_us)

    enricher.enrich = recording  # type: ignore[method-assign]
    try:
        answer = _invoke(gateway, by_view, [{"rider_id": "a", "distance": 8.0}])
    finally:
        del enricher.enrich  # the class's method again
    assert answer.status_code == 200, answer.text
    captured = _captured(platform, gateway, by_view)
    row = captured[captured["inference_id"] == answer.headers["x-slipway-inference-id"]]
    [features] = list(row["features"])
    assert set(features) == {"rider_id", "distance", *INPUTS}
    assert features["rider_id"] == "a"
    assert features["per_km"] == features["fare_sum_24h"] / 8.0
    [at] = list(row["time"])
    assert read_at == [at.value // 1000]  # the same microsecond


def test_a_missing_request_field_is_named(
    platform: Views, gateway: RunningGateway, by_view: str
) -> None:
    answer = _invoke(gateway, by_view, [{"rider_id": "a"}])
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["field"] == "distance"
    assert "distance" in answer.json()["error"]["message"]
    answer = _invoke(gateway, by_view, [{"distance": 1.0}])
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["field"] == "rider_id"


def test_on_missing(platform: Views, gateway: RunningGateway, by_view: str) -> None:
    unknown = [{"rider_id": "a", "distance": 1.0}, {"rider_id": "zz", "distance": 1.0}]
    answer = _invoke(gateway, by_view, unknown)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["row"] == 1
    assert answer.json()["error"]["details"]["field"] == "rider_id"
    # With on_missing=null the stored features become null, which this model refuses.
    platform.deploy(_spec("lenient-view", "rider", platform.refs["scorer"], on_missing="null"))
    answer = _invoke(gateway, "lenient-view", unknown)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["field"] == "age"


@pytest.mark.parametrize(
    "enrichment",
    [
        {"feature_view": "../../etc/passwd"},
        {"feature_view": "rider:1:2"},
        {"feature_view": "rider:0"},
        {"feature_view": "rider:latest"},
        {"feature_view": "rider", "features": ["riders:age"]},
        {"features": []},
    ],
    ids=["path", "two-versions", "version-0", "alias", "both", "neither"],
)
def test_a_bad_enrichment_is_named(platform: Views, enrichment: dict[str, Any]) -> None:
    spec = {**_spec("bad-enrichment", "rider", platform.refs["scorer"]), "enrichment": enrichment}
    with pytest.raises(InvalidInput) as caught:
        platform.services.endpoints.create(spec, actor="test")
    assert caught.value.field == "enrichment.feature_view"
    assert "bad-enrichment" not in [e.name for e in platform.services.endpoints.list()]
