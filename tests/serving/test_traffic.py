"""Traffic: weighted variants, the target-variant header, shadows, and data capture."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pyarrow.dataset as ds
import pytest

from tests.serving.conftest import Platform, RunningGateway
from tests.waiting import eventually

ROW = {"dataframe_records": [{"x1": 1.0, "x2": 0.5}]}


def _invoke(gateway: RunningGateway, name: str, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{gateway.url}/endpoints/{name}/invocations", json=ROW, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ab(platform: Platform) -> str:
    """An endpoint with two weighted variants, shared by the tests of this module."""
    platform.deploy(
        {
            "name": "ab",
            "variants": [
                {"name": "a", "model": platform.refs["linear"], "weight": 80},
                {"name": "b", "model": platform.refs["linear-v2"], "weight": 20},
            ],
        }
    )
    return "ab"


def test_weights_are_honoured(platform: Platform, gateway: RunningGateway, ab: str) -> None:
    seen: Counter[str] = Counter()
    with httpx.Client() as client:
        for _ in range(600):
            response = client.post(f"{gateway.url}/endpoints/ab/invocations", json=ROW)
            assert response.status_code == 200
            seen[response.headers["x-slipway-variant"]] += 1
    # Binomial(600, 0.2): mean 120, sd ~9.8; 5 sd either side never fails by chance.
    assert 71 <= seen["b"] <= 169, seen
    described = platform.services.endpoints.describe("ab")
    assert described.traffic == {"a": 0.8, "b": 0.2}


def test_target_variant_header(platform: Platform, gateway: RunningGateway, ab: str) -> None:
    for header in ("X-Slipway-Target-Variant", "X-Amzn-SageMaker-Target-Variant"):
        answers = {
            _invoke(gateway, "ab", headers={header: "b"}).json()["predictions"][0]
            for _ in range(20)
        }
        assert len(answers) == 1  # always variant b's model
    response = _invoke(gateway, "ab", headers={"X-Slipway-Target-Variant": "nope"})
    assert response.status_code == 404
    assert response.json()["error"]["details"]["field"] == "X-Slipway-Target-Variant"


def test_shadow_is_captured_and_never_returned(platform: Platform, gateway: RunningGateway) -> None:
    platform.deploy(
        {
            "name": "shadowed",
            "variants": [{"name": "prod", "model": platform.refs["linear"]}],
            "shadow_variants": [
                {"name": "shadow", "model": platform.refs["failing"], "sampling_percent": 100},
                {"name": "candidate", "model": platform.refs["linear-v2"]},
            ],
        }
    )
    ids = []
    for _ in range(10):
        response = _invoke(gateway, "shadowed")
        assert response.status_code == 200  # the failing shadow never affects the answer
        assert response.headers["x-slipway-variant"] == "prod"
        ids.append(response.headers["x-slipway-inference-id"])
    production = response.json()["predictions"][0]
    root = platform.services.settings.artifact_root

    def captured() -> list[dict[str, Any]] | None:
        gateway.gateway.capture.flush()  # shadows run off the request path: wait for them
        table = ds.dataset(
            f"{root}/capture/endpoint=shadowed", format="parquet", partitioning="hive"
        ).to_table()
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows if sum(r["variant"] == "candidate" for r in rows) >= 10 else None

    rows = eventually(captured, what="the candidate shadow's answers are captured")
    kinds = Counter((r["variant"], r["kind"]) for r in rows)
    assert kinds[("prod", "production")] == 10
    assert kinds[("candidate", "shadow")] == 10
    assert ("shadow", "shadow") not in kinds  # it failed: nothing captured, nothing returned
    candidate = {r["inference_id"]: r["prediction"] for r in rows if r["variant"] == "candidate"}
    assert set(candidate) == set(ids)
    assert all(value != production for value in candidate.values())


@pytest.mark.parametrize("percent", [100])
def test_data_capture_files_hold_what_was_served(
    platform: Platform, gateway: RunningGateway, percent: int
) -> None:
    platform.deploy(
        {
            "name": "captured",
            "variants": [{"name": "main", "model": platform.refs["linear"]}],
            "data_capture": {"enabled": True, "sampling_percent": percent},
        }
    )
    served = {}
    for index in range(5):
        body = {"dataframe_records": [{"x1": float(index), "x2": 1.0}, {"x1": -1.0, "x2": 2.0}]}
        response = httpx.post(
            f"{gateway.url}/endpoints/captured/invocations",
            json=body,
            headers={"X-Slipway-Inference-Id": f"req-{index}"},
        )
        assert response.status_code == 200
        served[f"req-{index}"] = (body["dataframe_records"], response.json()["predictions"])
    gateway.gateway.capture.flush()
    root = platform.services.settings.artifact_root
    rows = (
        ds.dataset(f"{root}/capture/endpoint=captured", format="parquet", partitioning="hive")
        .to_table()
        .to_pylist()
    )
    assert len(rows) == 10
    for row in rows:
        inputs, outputs = served[row["inference_id"]]
        assert row["features"] == inputs[row["row"]]
        assert row["prediction"] == outputs[row["row"]]
        assert row["model_name"] == "linear" and row["kind"] == "production"
        assert row["time"] is not None


def test_capture_drops_under_pressure_are_counted(
    platform: Platform, gateway: RunningGateway
) -> None:
    platform.deploy(
        {
            "name": "pressured",
            "variants": [{"name": "main", "model": platform.refs["linear"]}],
            "data_capture": {"enabled": True, "sampling_percent": 100},
        }
    )
    assert _invoke(gateway, "pressured").status_code == 200  # loaded before the buffer fills
    writer = gateway.gateway.capture
    writer.flush()
    capacity, writer.capacity = writer.capacity, 0  # a full buffer
    try:
        for _ in range(5):
            assert _invoke(gateway, "pressured").status_code == 200  # never fails a request
    finally:
        writer.capacity = capacity
    gateway.gateway.recorder.flush()
    gateway.gateway.recorder._scrapes.clear()
    metrics = httpx.get(f"{gateway.url}/metrics").text
    line = next(
        x
        for x in metrics.splitlines()
        if x.startswith('slipway_capture_dropped_total{endpoint="pressured",variant="main"}')
    )
    assert float(line.split()[-1]) == 5
