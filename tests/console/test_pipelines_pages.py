"""The pipelines pages: definitions with their schedules, triggers and last execution; a
definition's DAG; an execution followed live to its end; a step's log; retry and cancel as
an editor (refused for a viewer and without a CSRF token)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from slipway.console.pages.pipelines import duration
from slipway.console.paging import PAGE_SIZE
from slipway.security.tokens import Role
from slipway.services import Services
from tests.console.conftest import act, sign_in
from tests.pipelines import sample

_EXECUTION_LINK = re.compile(r'href="/pipelines/executions/([0-9a-f]{32})"')


def test_empty_state_names_the_commands(console: TestClient) -> None:
    page = console.get("/pipelines")
    assert page.status_code == 200
    assert "<h1>Pipelines</h1>" in page.text
    assert "No pipeline is registered" in page.text
    assert "slipway pipelines register flows.train:train" in page.text
    assert "slipway schedules create" in page.text and "slipway triggers create" in page.text


def test_pages_of_a_succeeded_and_a_failed_execution(
    console: TestClient, services: Services, workers: None, tmp_path: Path
) -> None:
    services.pipelines.register(sample.fan)
    services.pipelines.register(sample.broken)
    services.schedules.create("nightly", "fan", "0 2 * * *", actor="test")
    services.triggers.create("on-drift", "fan", "monitor.violations", actor="test")
    succeeded = services.pipelines.wait(services.pipelines.start("fan", {"n": 4}), timeout=120)
    assert succeeded.state == "Succeeded"
    failed = services.pipelines.wait(
        services.pipelines.start("broken", {"marker": str(tmp_path / "m")}), timeout=120
    )
    assert failed.state == "Failed"

    listing = console.get("/pipelines")
    assert listing.status_code == 200
    text = listing.text
    assert 'data-pipeline="fan"' in text and 'data-pipeline="broken"' in text
    fan_row = text.split('data-pipeline="fan"')[1].split("</tr>")[0]
    assert '<td class="num">7</td>' in fan_row  # its steps
    assert f'href="/pipelines/executions/{succeeded.id}"' in fan_row  # its last execution
    assert "status-succeeded" in fan_row
    schedule_row = text.split('data-schedule="nightly"')[1].split("</tr>")[0]
    assert "0 2 * * *" in schedule_row and "UTC" in schedule_row and "yes" in schedule_row
    next_fire = services.schedules.get("nightly").next_fire_at
    assert next_fire.strftime("%Y-%m-%d %H:%M") in schedule_row
    trigger_row = text.split('data-trigger="on-drift"')[1].split("</tr>")[0]
    assert "monitor.violations" in trigger_row and 'href="/pipelines/fan"' in trigger_row
    recent = _EXECUTION_LINK.findall(text.split('id="recent"')[1])
    assert recent == [failed.id, succeeded.id]  # newest first

    definition = console.get("/pipelines/fan")
    assert definition.status_code == 200
    assert "<h1>Pipeline fan</h1>" in definition.text
    assert '<svg class="chart dag"' in definition.text
    for step in ("numbers", "scale_3", "total", "publish_2", "condition-1"):
        assert f'data-step="{step}"' in definition.text
    assert (
        'data-parameter="n"' in definition.text and 'data-parameter="threshold"' in definition.text
    )
    assert "nightly" in definition.text and "on-drift" in definition.text
    assert f"/pipelines/executions/{succeeded.id}" in definition.text
    assert failed.id not in definition.text  # another pipeline's execution

    page = console.get(f"/pipelines/executions/{succeeded.id}")
    assert page.status_code == 200
    assert f'data-live="/pipelines/executions/{succeeded.id}/live"' in page.text
    assert '<svg class="chart dag"' in page.text and '<svg class="chart timeline"' in page.text
    assert 'data-step="total" data-state="Succeeded"' in page.text
    assert 'data-step="publish_2" data-state="Skipped"' in page.text
    assert f'href="/pipelines/executions/{succeeded.id}/steps/numbers/log"' in page.text
    assert "Retry from failed steps" not in page.text and "Cancel execution" not in page.text

    fragment = console.get(f"/pipelines/executions/{succeeded.id}/live")
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<h1>" not in fragment.text
    assert "data-final" in fragment.text
    assert 'data-step="numbers" data-state="Succeeded"' in fragment.text

    log = console.get(f"/pipelines/executions/{succeeded.id}/steps/numbers/log")
    assert log.status_code == 200
    assert "making 4 numbers" in log.text and "Attempt 1" in log.text

    broken = console.get(f"/pipelines/executions/{failed.id}")
    assert 'data-step="boom" data-state="Failed"' in broken.text
    assert "ValueError: bad value 1" in broken.text
    assert "Retry from failed steps" in broken.text and "Cancel execution" not in broken.text
    boom_log = console.get(f"/pipelines/executions/{failed.id}/steps/boom/log")
    assert "ValueError: bad value 1" in boom_log.text  # the step's error under its output

    # Retry from the console: the execution runs again (and fails again at boom).
    answer = act(
        console,
        f"/pipelines/executions/{failed.id}/retry",
        _page=f"/pipelines/executions/{failed.id}",
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["location"] == f"/pipelines/executions/{failed.id}"
    retried = services.audit.list(action="pipeline.retry", limit=5)
    assert [(e.actor, e.resource) for e in retried] == [("anonymous", f"execution/{failed.id}")]
    again = services.pipelines.wait(failed.id, timeout=120)
    assert again.state == "Failed"
    assert again.step("boom").finished_at > failed.step("boom").finished_at  # it ran again


def test_live_region_follows_an_execution_until_cancelled(
    console: TestClient, services: Services
) -> None:
    """No worker runs here: the execution runs, its first step queued, until the console
    cancels it."""
    services.pipelines.register(sample.fan)
    execution = services.pipelines.start("fan", {"n": 2})
    page = f"/pipelines/executions/{execution}"
    live = f"{page}/live"
    pending = console.get(live)
    assert pending.status_code == 200
    assert "data-final" not in pending.text and "status-running" in pending.text
    assert 'data-step="numbers" data-state="Pending"' in pending.text
    assert "Cancel execution" in pending.text and "Retry from failed steps" not in pending.text

    answer = act(console, f"{page}/cancel", _page=page)
    assert answer.status_code == 200, answer.text
    assert services.pipelines.describe(execution).state == "Cancelled"
    cancelled = console.get(live)
    assert "data-final" in cancelled.text  # the console's script stops polling
    assert 'data-step="numbers" data-state="Cancelled"' in cancelled.text
    assert "Retry from failed steps" in cancelled.text and "Cancel execution" not in cancelled.text
    again = act(console, f"{page}/cancel", _page=page)
    assert again.status_code == 409  # already ended: the service's conflict, as JSON
    assert "already Cancelled" in again.json()["error"]


def test_retry_and_cancel_need_an_editor_and_a_csrf_token(
    auth_console: TestClient, auth_services: Services
) -> None:
    viewer_token = auth_services.tokens.create("vera", Role.VIEWER, created_by="test")[1]
    editor_token = auth_services.tokens.create("eddie", Role.EDITOR, created_by="test")[1]
    auth_services.pipelines.register(sample.fan)
    execution = auth_services.pipelines.start("fan", {"n": 2})
    page = f"/pipelines/executions/{execution}"

    sign_in(auth_console, viewer_token)
    seen = auth_console.get(page)
    assert seen.status_code == 200 and 'data-step="numbers" data-state="Pending"' in seen.text
    assert "Cancel execution" not in seen.text  # a viewer is not offered the action
    refused = act(auth_console, f"{page}/cancel", _page=page)
    assert refused.status_code == 403
    assert auth_services.pipelines.describe(execution).state == "Running"

    sign_in(auth_console, editor_token)
    assert "Cancel execution" in auth_console.get(page).text
    forged = auth_console.post(f"{page}/cancel", headers={"accept": "application/json"})
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
    wrong = auth_console.post(
        f"{page}/cancel", data={"csrf_token": "0" * 64}, headers={"accept": "application/json"}
    )
    assert wrong.status_code == 403
    assert auth_services.pipelines.describe(execution).state == "Running"
    cancelled = act(auth_console, f"{page}/cancel", _page=page)
    assert cancelled.status_code == 200, cancelled.text
    assert auth_services.pipelines.describe(execution).state == "Cancelled"

    forged_retry = auth_console.post(f"{page}/retry", headers={"accept": "application/json"})
    assert forged_retry.status_code == 403
    sign_in(auth_console, viewer_token)
    assert act(auth_console, f"{page}/retry", _page=page).status_code == 403
    assert auth_services.pipelines.describe(execution).state == "Cancelled"
    sign_in(auth_console, editor_token)
    retried = act(auth_console, f"{page}/retry", _page=page)
    assert retried.status_code == 200, retried.text
    assert auth_services.pipelines.describe(execution).state == "Running"

    actors = {
        (e.action, e.actor)
        for e in auth_services.audit.list(limit=20)
        if e.action in ("pipeline.cancel", "pipeline.retry")
    }
    assert actors == {("pipeline.cancel", "eddie"), ("pipeline.retry", "eddie")}


def test_unknown_pipeline_execution_and_step_are_404_pages(
    console: TestClient, services: Services
) -> None:
    services.pipelines.register(sample.fan)
    execution = services.pipelines.start("fan")
    for path in (
        "/pipelines/nope",
        "/pipelines/executions/0123456789abcdef0123456789abcdef",
        "/pipelines/executions/nope/live",
        f"/pipelines/executions/{execution}/steps/nope/log",
        "/pipelines/executions/nope/steps/numbers/log",
    ):
        missing = console.get(path)
        assert missing.status_code == 404, path
        assert "text/html" in missing.headers["content-type"]
        assert "Traceback" not in missing.text
    assert "not registered" in console.get("/pipelines/nope").text
    unknown = act(console, "/pipelines/executions/nope/retry")
    assert unknown.status_code == 404
    assert console.get("/pipelines", params={"page": "zero"}).status_code == 400


def test_executions_are_paged_newest_first(console: TestClient, services: Services) -> None:
    services.pipelines.register(sample.fan)
    services.pipelines.register(sample.retrying)
    started = [services.pipelines.start("fan", {"n": n}) for n in range(PAGE_SIZE + 3)]
    other = services.pipelines.start("retrying")
    first = console.get("/pipelines")
    ids = _EXECUTION_LINK.findall(first.text.split('id="recent"')[1])
    assert ids == [other, *reversed(started)][:PAGE_SIZE]
    assert 'href="/pipelines?page=2" rel="next"' in first.text
    second = console.get("/pipelines", params={"page": 2})
    assert _EXECUTION_LINK.findall(second.text.split('id="recent"')[1]) == started[3::-1]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text

    definition = console.get("/pipelines/fan", params={"page": 2})
    assert definition.status_code == 200
    assert _EXECUTION_LINK.findall(definition.text.split('id="runs"')[1]) == started[2::-1]
    assert 'href="/pipelines/fan?page=1" rel="prev"' in definition.text


def test_pages_stay_in_their_workspace(console: TestClient, services: Services) -> None:
    services.workspaces.create("team-b", actor="test")
    team = services.in_workspace("team-b")
    team.pipelines.register(sample.fan)
    theirs = team.pipelines.start("fan")
    assert "No pipeline is registered" in console.get("/pipelines").text
    assert console.get(f"/pipelines/executions/{theirs}").status_code == 404
    listing = console.get("/pipelines", params={"ws": "team-b"})
    assert 'href="/pipelines/fan?ws=team-b"' in listing.text
    assert f'href="/pipelines/executions/{theirs}?ws=team-b"' in listing.text
    page = console.get(f"/pipelines/executions/{theirs}", params={"ws": "team-b"})
    assert f'data-live="/pipelines/executions/{theirs}/live?ws=team-b"' in page.text
    assert f'action="/pipelines/executions/{theirs}/cancel?ws=team-b"' in page.text


def test_duration_reads_as_a_person_would_say_it() -> None:
    assert duration(None) == "—"
    assert duration(0.42) == "0.4 s"
    assert duration(42.7) == "42 s"
    assert duration(184) == "3 min 4 s"
    assert duration(7500) == "2 h 5 min"
