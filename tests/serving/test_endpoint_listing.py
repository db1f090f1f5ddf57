"""Listing endpoints describes each one as ``describe`` does, with a number of queries that
does not grow with the number of endpoints (the console's dashboard and lists describe
every endpoint on each load)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from slipway.serving.resources import Endpoint
from tests.serving.conftest import Platform, RunningGateway
from tests.waiting import eventually

NAMES = ("listed-serving", "listed-canary", "listed-new")
MORE = ("listed-more-1", "listed-more-2")


def _spec(name: str, model: str, **deployment: object) -> dict[str, object]:
    return {"name": name, "variants": [{"name": "main", "model": model}], "deployment": deployment}


@contextmanager
def _statements(platform: Platform) -> Iterator[list[str]]:
    """The SQL statements run on the platform's database meanwhile."""
    seen: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = platform.services.db.engine
    event.listen(engine, "before_cursor_execute", executed)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", executed)


def _listed(platform: Platform) -> list[Endpoint]:
    return [e for e in platform.services.endpoints.list() if e.name in NAMES]


def test_list_describes_each_endpoint_as_describe_does_in_a_fixed_number_of_queries(
    platform: Platform, gateway: RunningGateway
) -> None:
    endpoints = platform.services.endpoints
    # In service and loaded by the gateway; rolling out a canary (an active and a target
    # config, and a newer latest); just created (no active config yet).
    platform.deploy(_spec(NAMES[0], platform.refs["linear"]))
    platform.deploy(_spec(NAMES[1], platform.refs["linear"]))
    endpoints.update(
        NAMES[1],
        _spec(
            NAMES[1],
            platform.refs["linear-v2"],
            strategy="canary",
            canary_percent=10,
            baking_seconds=3600,
        ),
        actor="test",
    )
    eventually(
        lambda: (
            platform.services.deployments.tick() is not None
            and endpoints.describe(NAMES[1]).phase == 1
        ),
        what="the canary's first step",
    )
    endpoints.create(_spec(NAMES[2], platform.refs["lgbm"]), actor="test")

    def same() -> bool:
        # The gateway loads models meanwhile: compared once both reads agree.
        return _listed(platform) == [endpoints.describe(name) for name in sorted(NAMES)]

    eventually(same, what="list() and describe() agree", timeout=60)
    listed = {e.name: e for e in _listed(platform)}
    serving, canary, new = (listed[name] for name in NAMES)
    assert serving.active is not None and serving.gateways
    assert canary.active is not None and canary.target is not None
    assert canary.active.version == 1 and canary.target.version == 2
    assert canary.latest is not None and canary.latest.version == 2
    assert new.active is None and new.latest is not None and new.latest.version == 1

    with _statements(platform) as before:
        count = len(endpoints.list())
    for name in MORE:
        endpoints.create(_spec(name, platform.refs["linear"]), actor="test")
    with _statements(platform) as after:
        assert len(endpoints.list()) == count + len(MORE)
    assert len(after) == len(before), (before, after)
    for name in (*NAMES, *MORE):
        endpoints.delete(name, actor="test")
