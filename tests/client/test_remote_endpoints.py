"""Serving endpoints through slipway.Client over HTTP, against the embedded API: the same
tests run on both (a parametrized fixture) on one ``slipway up``, whose deployment
controller moves the rollouts and whose gateway answers the invocations.

The models are registered with the embedded registry of the same platform (setup, not
what is tested here).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.monitoring.resources import ABReport
from slipway.serving.resources import (
    Deployment,
    Endpoint,
    EndpointStats,
    Prediction,
    VariantStats,
)
from tests.client.models import registered
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually

ROWS = pd.DataFrame({"a": [0.5, -1.0, 2.0], "b": [1.0, -2.0, 0.1]})


@pytest.fixture(autouse=True)
def _gateway_token(shared_platform: SharedPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    """``slipway up`` runs with auth on: the embedded SDK calls its gateway with the token
    in ``SLIPWAY_TOKEN`` (the remote client sends its own)."""
    monkeypatch.setenv("SLIPWAY_TOKEN", shared_platform.token)


def _spec(name: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "variants": [{"name": "main", "model": model}], **extra}


def _served_by(platform: Any, name: str, model: str) -> bool:
    return bool(platform.endpoints.invoke(name, ROWS).model == model)


def test_create_invoke_update_roll_back_and_delete(
    platform: Any, shared_platform: SharedPlatform, side: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = platform.endpoints
    model, name = f"clf-{side}", f"scoring-{side}"
    first = registered(shared_platform, monkeypatch, model)
    second = registered(shared_platform, monkeypatch, model)

    created = endpoints.create(_spec(name, f"{model}:{first}"), actor="tests")
    assert isinstance(created, Endpoint)
    assert (created.status, created.target_version, created.active_version) == ("Creating", 1, None)
    assert created.target is not None and created.target.spec.variants[0].version == first
    assert created.url.endswith(f"/endpoints/{name}/invocations")
    live = endpoints.wait(name, timeout=300)
    assert (live.status, live.active_version, live.traffic) == ("InService", 1, {"main": 1.0})
    assert name in [e.name for e in endpoints.list()]
    assert isinstance(endpoints.list(), Listing)

    scored = endpoints.invoke(name, ROWS)
    assert isinstance(scored, Prediction)
    assert len(scored.predictions) == 3 and set(scored.predictions) <= {0, 1}  # labels
    assert (scored.variant, scored.model, scored.config_version) == ("main", f"{model}:{first}", 1)
    with pytest.raises(InvalidInput) as bad_rows:
        endpoints.invoke(name, {"dataframe_split": {"columns": ["a"], "data": [[1.0, 2.0]]}})
    assert bad_rows.value.field == "dataframe_split.data"

    canary = {"strategy": "canary", "canary_percent": 50, "baking_seconds": 0}
    updated = endpoints.update(
        name, _spec(name, f"{model}:{second}", deployment=canary), actor="tests"
    )
    assert (updated.status, updated.target_version) == ("Updating", 2)
    with pytest.raises(Conflict):  # one rollout at a time
        endpoints.update(name, _spec(name, f"{model}:{first}"), actor="tests")
    assert endpoints.wait(name, timeout=300).active_version == 2
    eventually(lambda: _served_by(platform, name, f"{model}:{second}"), what="v2 serves")

    rolled = endpoints.rollback(name, actor="tests")
    assert (rolled.status, rolled.target_version) == ("Updating", 3)
    assert endpoints.wait(name, timeout=300).active_version == 3
    eventually(lambda: _served_by(platform, name, f"{model}:{first}"), what="v1 serves again")

    history = endpoints.history(name)
    assert isinstance(history, Listing) and all(isinstance(d, Deployment) for d in history)
    assert [(d.version, d.outcome, d.rollback_of) for d in history] == [
        (1, "retired", None),
        (2, "retired", None),
        (3, "deployed", 1),
    ]
    assert [d.spec.variants[0].version for d in history] == [first, second, first]
    assert history[1].spec.deployment.strategy == "canary"
    assert endpoints.describe(name).latest == history[2]

    endpoints.delete(name, actor="tests")
    assert endpoints.describe(name).status == "Deleting"

    def gone() -> bool:
        try:
            endpoints.describe(name)
        except NotFound:
            return True
        return False

    eventually(gone, what="the endpoint is deleted", timeout=120, interval=0.5)


def test_bad_input_is_the_same_typed_error_naming_the_field(platform: Any, side: str) -> None:
    endpoints = platform.endpoints
    name = f"bad-{side}"
    negative = {"name": name, "variants": [{"name": "main", "model": "m:1", "weight": -1}]}
    for body, field in [
        (negative, "variants.0.weight"),
        (_spec(name, "m:1") | {"replicas": 3}, "replicas"),
        (_spec(name, "unpinned"), "variants.0.model"),
        (_spec("Not A Name", "m:1"), "name"),
        (_spec(name, "m:1", deployment={"strategy": "yolo"}), "deployment.strategy"),
    ]:
        with pytest.raises(InvalidInput) as bad:
            endpoints.create(body, actor="tests")
        assert bad.value.field == field, (body, bad.value.message)
    with pytest.raises(NotFound) as missing:
        endpoints.create(_spec(name, f"nobody-{side}:1"), actor="tests")
    assert f"nobody-{side}" in missing.value.message
    assert name not in [e.name for e in endpoints.list()]  # nothing stored
    for call in (
        lambda: endpoints.describe(name),
        lambda: endpoints.history(name),
        lambda: endpoints.rollback(name, actor="tests"),
        lambda: endpoints.invoke(name, ROWS),
    ):
        with pytest.raises(NotFound):
            call()
    with pytest.raises(InvalidInput) as bad_name:
        endpoints.describe("Not A Name")
    assert bad_name.value.field == "endpoint"
    with pytest.raises(InvalidInput) as bad_payload:
        endpoints.invoke(name, 42)
    assert bad_payload.value.field == "payload"


def test_traffic_stats_and_the_ab_report_read_what_the_endpoint_served(
    platform: Any, shared_platform: SharedPlatform, side: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints, monitoring = platform.endpoints, platform.monitoring
    model, name = f"stats-clf-{side}", f"stats-{side}"
    version = registered(shared_platform, monkeypatch, model)
    since = datetime.now(UTC) - timedelta(minutes=1)
    spec = _spec(name, f"{model}:{version}", data_capture={"enabled": True})
    endpoints.create(spec, actor="tests")
    endpoints.wait(name, timeout=300)
    served = [endpoints.invoke(name, ROWS) for _ in range(3)]

    def counted() -> EndpointStats | None:
        # Gateways add their counts to the database about once a second.
        stats = endpoints.stats(name)
        main = stats.variants.get("main")
        return stats if main is not None and main.requests == len(served) else None

    stats = eventually(counted, what="the gateway counted the requests", timeout=60)
    assert isinstance(stats, EndpointStats) and stats.endpoint == name
    assert (stats.since, stats.config_version) == (None, None)
    main = stats.variants["main"]
    assert isinstance(main, VariantStats)
    assert (main.errors, main.error_rate) == (0, 0.0)
    assert main.p50_ms is not None and main.model_p99_ms is not None
    recent = endpoints.stats(name, since=since, config_version=1)
    assert (recent.since, recent.config_version) == (since, 1)
    assert recent.variants["main"].requests == len(served)
    assert endpoints.stats(name, config_version=2).variants == {}
    with pytest.raises(NotFound):
        endpoints.stats(f"nobody-{side}")

    # Before any ground truth: a report with no samples, nothing decided.
    early = monitoring.ab_test(name, since=since, metric="accuracy", min_samples=1)
    assert isinstance(early, ABReport) and early.labelled_rows == 0
    assert (early.reference, early.variants["main"]["samples"]) == ("main", 0)
    assert early.comparisons == []
    with pytest.raises(NotFound):
        monitoring.ab_test(f"nobody-{side}", since=since)
    with pytest.raises(InvalidInput) as backwards:
        monitoring.ab_test(name, since=since, until=since - timedelta(seconds=1))
    assert backwards.value.field == "until"

    labels = [
        {"inference_id": p.inference_id, "row": row, "label": label}
        for p in served
        for row, label in enumerate(p.predictions)
    ]
    monitoring.put_ground_truth(name, labels)

    def labelled() -> ABReport | None:
        # Labelled once the gateway has written what it captured.
        report = monitoring.ab_test(name, since=since, metric="accuracy", min_samples=1)
        return report if report.labelled_rows == len(labels) else None

    report = eventually(labelled, what="the captured rows joined their labels", timeout=60)
    assert isinstance(report, ABReport)
    assert (report.endpoint, report.since, report.reference) == (name, since, "main")
    assert report.until > report.since and report.captured_rows == len(labels)
    assert (report.metric, report.rule["min_samples"]) == ("accuracy", 1)
    figures = report.variants["main"]
    assert (figures["samples"], figures["rows"]) == (len(served), len(labels))
    assert figures["accuracy"] == 1.0  # the labels are what it served
    assert figures["traffic"]["requests"] == len(served)
    assert report.comparisons == []  # one variant: nothing to compare it with
    endpoints.delete(name, actor="tests")
