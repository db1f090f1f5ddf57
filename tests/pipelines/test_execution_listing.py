"""Reading executions a page at a time, and each pipeline's newest one: what the console's
lists show without reading every execution."""

from __future__ import annotations

from slipway.services import Services
from tests.pipelines import sample


def test_execution_pages_newest_first_with_the_total(services: Services) -> None:
    services.pipelines.register(sample.fan)
    services.pipelines.register(sample.retrying)
    fans = [services.pipelines.start("fan", {"n": n}) for n in range(5)]
    other = services.pipelines.start("retrying")
    newest_first = [other, *reversed(fans)]

    first, total = services.pipelines.execution_page(limit=4)
    assert total == 6
    assert [e.id for e in first] == newest_first[:4]
    rest, total = services.pipelines.execution_page(offset=4, limit=4)
    assert total == 6 and [e.id for e in rest] == newest_first[4:]
    past, total = services.pipelines.execution_page(offset=10, limit=4)
    assert past == [] and total == 6

    only, total = services.pipelines.execution_page("fan", offset=1, limit=2)
    assert total == 5 and [e.id for e in only] == [fans[3], fans[2]]
    assert all(not e.steps for e in only)  # a listing, not a description
    assert services.pipelines.execution_page("nothing-like-it") == ([], 0)


def test_latest_execution_of_each_pipeline(services: Services) -> None:
    services.pipelines.register(sample.fan)
    services.pipelines.register(sample.retrying)
    services.pipelines.register(sample.slow)
    assert services.pipelines.latest_executions() == {}
    services.pipelines.start("fan", {"n": 1})
    newest_fan = services.pipelines.start("fan", {"n": 2})
    retrying = services.pipelines.start("retrying")
    latest = services.pipelines.latest_executions()
    assert {name: e.id for name, e in latest.items()} == {
        "fan": newest_fan,
        "retrying": retrying,
    }
    assert latest["fan"].parameters["n"] == 2


def test_another_workspaces_executions_are_not_listed(services: Services) -> None:
    services.workspaces.create("team-b", actor="test")
    team = services.in_workspace("team-b")
    services.pipelines.register(sample.fan)
    team.pipelines.register(sample.fan)
    ours = services.pipelines.start("fan")
    theirs = team.pipelines.start("fan")
    page, total = services.pipelines.execution_page()
    assert [e.id for e in page] == [ours] and total == 1
    assert team.pipelines.latest_executions()["fan"].id == theirs
    assert services.pipelines.latest_executions()["fan"].id == ours
