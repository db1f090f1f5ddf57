"""Serverless (unload when idle, load on the next request) and multi-model (load on demand,
evict least recently used within the memory budget)."""

from __future__ import annotations

import time

import httpx

from slipway.registry.predict import load_model
from tests.serving.conftest import Platform, RunningGateway

ROW = {"dataframe_records": [{"x1": 1.0, "x2": 0.5}]}


def _variant(gateway: RunningGateway, endpoint: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 5
    while (runtime := gateway.gateway.state.endpoints[endpoint]).active is None:
        assert time.monotonic() < deadline, "the gateway never applied the InService config"
        time.sleep(0.05)
    return runtime.active.variants[0]


def test_serverless_unloads_when_idle_and_reloads(
    platform: Platform, gateway: RunningGateway
) -> None:
    platform.deploy(
        {
            "name": "lazy",
            "variants": [{"name": "main", "model": platform.refs["lgbm"]}],
            "serverless": {"idle_timeout_seconds": 1.0},
        }
    )
    url = f"{gateway.url}/endpoints/lazy/invocations"
    first = httpx.post(url, json=ROW)
    assert first.status_code == 200
    deadline = time.monotonic() + 10
    while _variant(gateway, "lazy").model is not None:
        assert time.monotonic() < deadline, "the idle model was never unloaded"
        time.sleep(0.2)
    started = time.perf_counter()
    again = httpx.post(url, json=ROW)
    cold_ms = (time.perf_counter() - started) * 1000
    assert again.status_code == 200
    assert again.json() == first.json()
    assert _variant(gateway, "lazy").model is not None
    gateway.gateway.recorder.flush()
    gateway.gateway.recorder._scrapes.clear()
    metrics = httpx.get(f"{gateway.url}/metrics").text
    line = next(
        x for x in metrics.splitlines() if x.startswith('slipway_cold_starts_total{endpoint="lazy"')
    )
    assert float(line.split()[-1]) >= 1
    assert cold_ms < 10_000


def test_multi_model_loads_on_demand_and_evicts_lru(
    platform: Platform, gateway: RunningGateway
) -> None:
    registry = platform.services.registry
    sizes = {}
    for short in ("linear", "lgbm", "xgb"):
        name, version = platform.refs[short].split(":")
        sizes[short] = load_model(registry, name, int(version)).size_bytes
    budget = (sizes["linear"] + sizes["lgbm"] + sizes["xgb"] - 1) / 1024 / 1024  # not all three
    platform.deploy(
        {
            "name": "many",
            "variants": [{"name": "main", "model": platform.refs["linear"]}],
            "multi_model": {"memory_budget_mb": budget, "models": ["linear", "lgbm", "xgb"]},
        }
    )
    url = f"{gateway.url}/endpoints/many/invocations"
    answers = {}
    for short in ("linear", "lgbm", "xgb"):
        response = httpx.post(
            url, json=ROW, headers={"X-Slipway-Target-Model": platform.refs[short]}
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-slipway-model-version"] == platform.refs[short]
        answers[short] = response.json()["predictions"][0]
    cache = _variant(gateway, "many").multi
    assert cache is not None
    resident = [name for name, _ in cache.models]
    assert resident == ["lgbm", "xgb"]  # linear was least recently used
    assert cache.evictions == 1 and cache.used_bytes() <= budget * 1024 * 1024
    # Aliases resolve; a model the endpoint does not list is a 404 naming the header.
    name = platform.refs["linear"].split(":")[0]
    registry.set_alias(name, "champion", int(platform.refs["linear"].split(":")[1]), actor="t")
    response = httpx.post(url, json=ROW, headers={"X-Slipway-Target-Model": "linear@champion"})
    assert response.status_code == 200
    assert response.json()["predictions"][0] == answers["linear"]
    response = httpx.post(url, json=ROW, headers={"X-Slipway-Target-Model": "hgb:1"})
    assert response.status_code == 404
    assert response.json()["error"]["details"]["field"] == "X-Slipway-Target-Model"
    response = httpx.post(url, json=ROW, headers={"X-Slipway-Target-Model": "linear"})
    assert response.status_code == 400
