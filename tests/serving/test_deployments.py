"""Deployments: canary with automatic rollback, models that fail to load, manual rollback,
and no failed request while a config changes under load."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from slipway.core.events import EventLog
from tests.serving.conftest import Platform, RunningGateway
from tests.waiting import eventually

ROW = {"dataframe_records": [{"x1": 1.0, "x2": 0.5}]}


def _spec(name: str, model: str, **deployment: object) -> dict[str, object]:
    return {
        "name": name,
        "variants": [{"name": "main", "model": model}],
        "deployment": deployment,
    }


def _events(platform: Platform, name: str) -> list[str]:
    log: EventLog = platform.services.events
    return [e.type for e in log.read(after=0, limit=10_000) if e.resource == f"endpoint/{name}"]


def test_a_canary_failing_every_request_is_rolled_back_at_its_first_step(
    platform: Platform, gateway: RunningGateway
) -> None:
    """The gateway judges the alarm after each request to the new config: the request
    that trips it is the last one the candidate gets, at the first traffic step."""
    platform.deploy(_spec("canary", platform.refs["linear"]))
    platform.services.endpoints.update(
        "canary",
        _spec(
            "canary",
            platform.refs["failing"],
            strategy="canary",
            canary_percent=10,
            baking_seconds=60,
            alarms=[
                {"name": "errors", "metric": "error_rate", "threshold": 0.1, "min_requests": 5}
            ],
        ),
        actor="test",
    )
    eventually(
        lambda: (
            platform.services.deployments.tick() is not None
            and platform.services.endpoints.describe("canary").phase == 1
        ),
        what="the canary's first step",
    )
    statuses = []
    codes: list[int] = []
    with httpx.Client() as client:

        def settled() -> bool:
            platform.services.deployments.tick()
            described = platform.services.endpoints.describe("canary")
            statuses.append(described.status)
            if described.status == "InService" and described.target_version is None:
                return True
            for _ in range(20):
                url = f"{gateway.url}/endpoints/canary/invocations"
                codes.append(client.post(url, json=ROW).status_code)
            return False

        eventually(settled, what="the canary rolled back", timeout=60, interval=0.0)
    described = platform.services.endpoints.describe("canary")
    assert "RollingBack" in statuses
    assert described.active_version == 1 and described.status == "InService"
    assert described.latest.version == 2
    assert described.latest.outcome == "rolled_back"
    reason = platform.services.endpoints.history("canary")[1].outcome_reason
    assert "error_rate" in reason and "at 10% of traffic" in reason, reason
    # Exactly min_requests requests reached the failing candidate: none after the trip.
    assert codes.count(500) == 5, codes
    assert set(codes) == {200, 500}
    eventually(
        lambda: _serves_only(gateway, "canary", described.active_version),
        what="the gateway applied the rollback",
    )
    with httpx.Client() as client:
        after = [
            client.post(f"{gateway.url}/endpoints/canary/invocations", json=ROW).status_code
            for _ in range(50)
        ]
    assert after == [200] * 50
    events = _events(platform, "canary")
    assert "endpoint.rolled_back" in events and "alert.raised" in events
    # The controller's own decision is audited under its name, beside the caller's update.
    audited = [
        (e.actor, e.action, e.details.get("config_version"))
        for e in platform.services.audit.list()
        if e.resource == "endpoint/canary" and e.action.startswith("endpoint.")
    ]
    assert audited[:2] == [
        ("deployment-controller", "endpoint.auto_rollback", 2),
        ("test", "endpoint.update", 2),
    ]


def _serves_only(gateway: RunningGateway, name: str, version: int) -> bool:
    """Whether the in-process gateway routes every request of ``name`` to config ``version``."""
    runtime = gateway.gateway.state.endpoints.get(name)
    return (
        runtime is not None
        and runtime.target is None
        and runtime.active is not None
        and runtime.active.version == version
    )


@pytest.fixture(scope="module")
def tampered(platform: Platform) -> str:
    """A registered version whose files changed after registration."""
    name, version = platform.refs["spare"].split(":")
    key = platform.services.registry.get(name, int(version)).artifact_key
    root = Path(platform.services.settings.artifact_root)
    (root / key / "extra.bin").write_bytes(b"tampered")  # digest no longer matches
    return platform.refs["spare"]


def test_model_that_fails_to_load_never_gets_traffic(
    platform: Platform, gateway: RunningGateway, tampered: str
) -> None:
    platform.deploy(_spec("guarded", platform.refs["linear"]))
    platform.services.endpoints.update("guarded", _spec("guarded", tampered), actor="t")
    variants: set[str] = set()
    with httpx.Client() as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            platform.services.deployments.tick()
            response = client.post(f"{gateway.url}/endpoints/guarded/invocations", json=ROW)
            assert response.status_code == 200
            variants.add(response.headers["x-slipway-config-version"])
            described = platform.services.endpoints.describe("guarded")
            if described.target_version is None:
                break
            time.sleep(0.1)
    assert variants == {"1"}
    assert described.status == "InService" and described.active_version == 1
    history = platform.services.endpoints.history("guarded")
    assert history[1].outcome == "failed"
    assert "digest" in history[1].outcome_reason
    assert "endpoint.deployment_failed" in _events(platform, "guarded")


def test_creation_with_a_broken_model_fails(
    platform: Platform, gateway: RunningGateway, tampered: str
) -> None:
    described = platform.deploy(_spec("broken", tampered))
    assert described.status == "Failed"
    response = httpx.post(f"{gateway.url}/endpoints/broken/invocations", json=ROW)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    # A fixed config brings it into service.
    platform.services.endpoints.update(
        "broken", _spec("broken", platform.refs["linear"]), actor="t"
    )
    assert platform.settle("broken").status == "InService"


def test_no_request_fails_during_updates_and_manual_rollback(
    platform: Platform, gateway: RunningGateway
) -> None:
    platform.deploy(_spec("steady", platform.refs["linear"]))
    failures: list[int] = []
    served = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal served
        with httpx.Client() as client:
            while not stop.is_set():
                code = client.post(
                    f"{gateway.url}/endpoints/steady/invocations", json=ROW
                ).status_code
                served += 1
                if code != 200:
                    failures.append(code)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        platform.services.endpoints.update(
            "steady",
            _spec(
                "steady",
                platform.refs["linear-v2"],
                strategy="linear",
                step_percent=50,
                interval_seconds=0.5,
            ),
            actor="test",
        )
        assert platform.settle("steady").active_version == 2
        platform.services.endpoints.rollback("steady", actor="test")
        rolled = platform.settle("steady")
        assert rolled.active_version == 3
        eventually(lambda: _serves_only(gateway, "steady", 3), what="the gateway serves v3")
        during = served
        eventually(lambda: served > during + 20, what="requests served after the rollback")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert served > 50 and failures == []
    history = platform.services.endpoints.history("steady")
    assert [h.outcome for h in history] == ["retired", "retired", "deployed"]
    assert history[2].rollback_of == 1
    assert history[2].spec.variants[0].version == history[0].spec.variants[0].version
