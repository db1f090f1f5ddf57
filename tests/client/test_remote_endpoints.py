"""Serving endpoints through slipway.Client over HTTP, against the embedded API: the same
tests run on both (a parametrized fixture) on one ``slipway up``, whose deployment
controller moves the rollouts and whose gateway answers the invocations.

The models are registered with the embedded registry of the same platform (setup, not
what is tested here).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.resource import Listing
from slipway.serving.resources import Deployment, Endpoint, Prediction
from tests.client.models import registered
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually

ROWS = pd.DataFrame({"a": [0.5, -1.0, 2.0], "b": [1.0, -2.0, 0.1]})


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
