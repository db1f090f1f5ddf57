"""Online-feature enrichment from real Redis: the request carries entity keys, the gateway
joins two feature groups' latest values in one read, and the model sees them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import redis
from sklearn.linear_model import LinearRegression

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.conftest import service_url
from tests.serving.conftest import Platform, RunningGateway, _register, start_gateway

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("enrich") / "home"
    url = service_url("redis")
    settings = load_settings(
        home=home,
        database={"url": f"sqlite:///{home.parent}/meta.db"},
        online_store={"url": url},
    )
    services = Services.open(settings)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = services.registry.mlflow.uri
    suffix = uuid.uuid4().hex[:6]
    customers, merchants = f"customers_{suffix}", f"merchants_{suffix}"
    try:
        services.features.create_group(
            {
                "name": customers,
                "record_identifiers": [{"name": "customer_id", "type": "int"}],
                "features": [{"name": "age", "type": "float"}, {"name": "spend", "type": "float"}],
            }
        )
        services.features.create_group(
            {
                "name": merchants,
                "record_identifiers": [{"name": "merchant_id", "type": "string"}],
                "features": [{"name": "risk", "type": "float"}],
            }
        )
        now = datetime.now(UTC)
        services.features.ingest(
            customers,
            pd.DataFrame(
                {
                    "customer_id": [1, 2],
                    "age": [30.0, 60.0],
                    "spend": [10.0, 90.0],
                    "event_time": [now] * 2,
                }
            ),
        )
        services.features.ingest(
            merchants,
            pd.DataFrame({"merchant_id": ["m1"], "risk": [0.5], "event_time": [now]}),
        )
        rng = np.random.default_rng(0)
        x = pd.DataFrame(
            {name: rng.normal(size=100) for name in ("amount", "age", "spend", "risk")}
        )
        y = x["amount"] + 2 * x["age"] + 3 * x["spend"] + 4 * x["risk"]
        model = LinearRegression().fit(x, y)
        experiment = services.registry.mlflow.experiment_id("enrich", settings.artifact_root)
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=mlflow.models.infer_signature(x, y),
                pip_requirements=["scikit-learn"],
            )
        ref = _register(services, "scorer", run.info.run_id)
        yield Platform(services, {"scorer": ref, "customers": customers, "merchants": merchants})
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        client = redis.Redis.from_url(url)
        for group in (customers, merchants):
            keys = list(client.scan_iter(match=f"slipway:{group}:*"))
            if keys:
                client.delete(*keys)
        client.close()
        services.close()


@pytest.fixture(scope="module")
def gateway(platform: Platform) -> Iterator[RunningGateway]:
    running, stop = start_gateway(platform.services)
    yield running
    stop()


def _deploy(platform: Platform, name: str, on_missing: str) -> None:
    refs = platform.refs
    platform.deploy(
        {
            "name": name,
            "variants": [{"name": "main", "model": refs["scorer"]}],
            "enrichment": {
                "features": [
                    f"{refs['customers']}:age",
                    f"{refs['customers']}:spend",
                    f"{refs['merchants']}:risk",
                ],
                "entity_keys": {"shop": "merchant_id"},
                "on_missing": on_missing,
            },
            "data_capture": {"enabled": True},
        }
    )


@pytest.fixture(scope="module")
def enriched(platform: Platform, gateway: RunningGateway) -> str:
    """Endpoint ``enriched`` (on_missing=error), deployed once for the tests that use it:
    they run in any order (pytest-randomly), so none of them may deploy it for another."""
    _deploy(platform, "enriched", "error")
    return "enriched"


def test_features_are_joined_before_predicting(
    platform: Platform, gateway: RunningGateway, enriched: str
) -> None:
    body = {"dataframe_records": [{"customer_id": 1, "shop": "m1", "amount": 5.0},
                                  {"customer_id": 2, "shop": "m1", "amount": 1.0}]}  # fmt: skip
    response = httpx.post(f"{gateway.url}/endpoints/enriched/invocations", json=body)
    assert response.status_code == 200, response.text
    name, version = platform.refs["scorer"].split(":")
    model = mlflow.pyfunc.load_model(
        platform.services.registry.local_dir(
            platform.services.registry.get(name, int(version)).artifact_key
        )
    )
    expected = model.predict(
        pd.DataFrame(
            {"amount": [5.0, 1.0], "age": [30.0, 60.0], "spend": [10.0, 90.0], "risk": [0.5, 0.5]}
        )
    )
    assert np.allclose(response.json()["predictions"], expected)
    gateway.gateway.capture.flush()
    import pyarrow.dataset as ds

    root = platform.services.settings.artifact_root
    rows = ds.dataset(f"{root}/capture/endpoint=enriched", format="parquet", partitioning="hive")
    captured = rows.to_table().to_pylist()
    features = captured[0]["features"]
    assert set(features) == {"amount", "age", "spend", "risk"}  # the features the model used


def test_missing_entity(platform: Platform, gateway: RunningGateway, enriched: str) -> None:
    body = {"dataframe_records": [{"customer_id": 99, "shop": "m1", "amount": 5.0}]}
    response = httpx.post(f"{gateway.url}/endpoints/enriched/invocations", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["row"] == 0
    response = httpx.post(
        f"{gateway.url}/endpoints/enriched/invocations",
        json={"dataframe_records": [{"customer_id": 1, "amount": 5.0}]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "shop"
    # With on_missing=null the model gets nulls, which this model's signature refuses: 400.
    _deploy(platform, "lenient", "null")
    response = httpx.post(f"{gateway.url}/endpoints/lenient/invocations", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "age"


def test_a_wildcard_feature_reference_is_refused(platform: Platform) -> None:
    from slipway.core.errors import InvalidInput

    spec = {
        "name": "wildcard",
        "variants": [{"name": "main", "model": platform.refs["scorer"]}],
        "enrichment": {"features": [f"{platform.refs['customers']}:*"]},
    }
    with pytest.raises(InvalidInput) as caught:
        platform.services.endpoints.create(spec, actor="test")
    assert caught.value.field.startswith("enrichment.features")
    assert "wildcard" not in [e.name for e in platform.services.endpoints.list()]
