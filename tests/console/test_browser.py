"""The console end to end in headless Chromium, against ``slipway up`` (auth on) populated
by the platform's own services: every page, approvals, live pipelines, endpoint charts,
drift charts, rollback, and what a viewer may not do."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, expect

from slipway.pipelines.dsl import pipeline
from slipway.registry.models import ApprovalStatus
from tests.client import flows
from tests.console.browser import Screens, browser, new_context, playwright, screens, signed_in
from tests.monitoring.synthetic import HOUR, capture, write_baseline
from tests.registry.logged import register_classifier
from tests.shared_platform import SharedPlatform
from tests.waiting import eventually

__all__ = ["browser", "playwright", "screens"]  # module fixtures used below


# The page's form controls that a screen reader could not name.
UNLABELLED = """() => Array.from(
  document.querySelectorAll('input:not([type=hidden]), select, textarea, button')
).filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
  && !(e.tagName === 'BUTTON' && e.textContent.trim())).map(e => e.outerHTML)"""


@dataclass
class Scenario:
    """What the scenario put on the shared platform, and who may look at it."""

    platform: SharedPlatform
    model: str
    admin: str
    approver: str
    viewer: str


@pytest.fixture(scope="module")
def scenario(shared_platform: SharedPlatform) -> Iterator[Scenario]:
    services = shared_platform.services
    model = "console-churn"
    with pytest.MonkeyPatch.context() as patch:
        register_classifier(services, patch, model, status=ApprovalStatus.APPROVED)
        register_classifier(services, patch, model)
    tokens = services.tokens
    yield Scenario(
        platform=shared_platform,
        model=model,
        admin=shared_platform.token,
        approver=tokens.create("console-approver", "approver", created_by="tests")[1],
        viewer=tokens.create("console-viewer", "viewer", created_by="tests")[1],
    )


def test_no_token_gets_the_sign_in_page(browser: Browser, scenario: Scenario) -> None:
    page = new_context(browser, scenario.platform.url).new_page()
    page.goto(f"/models/{scenario.model}")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("API token").fill("slw_wrong_token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown API token")


def test_every_page_shows_its_key_content(
    browser: Browser, scenario: Scenario, screens: Screens
) -> None:
    page = signed_in(browser, scenario.platform.url, scenario.admin)
    expectations = {
        "/": "Model dashboard",
        "/features": "Feature groups",
        "/models": scenario.model,
        f"/models/{scenario.model}": "Versions",
        f"/models/{scenario.model}/versions/1": "Lineage",
        "/pipelines": "Pipelines",
        "/endpoints": "Endpoints",
        "/monitoring": "Monitoring",
        "/jobs": "Jobs",
        "/audit": "Audit log",
    }
    for path, text in expectations.items():
        page.goto(path)
        expect(page.locator("main")).to_contain_text(text)
        if path == "/":  # the backends' health is fetched after the page
            expect(page.locator("#health")).to_contain_text("tracking")
        assert page.evaluate(UNLABELLED) == [], f"controls without a label on {path}"
        screens.shoot(page, f"page{path}")
    page.goto("/models/no-such-model")
    expect(page.get_by_role("alert")).to_contain_text("no-such-model")
    screens.shoot(page, "not-found")


def test_approve_a_version_and_find_it_in_the_audit_log(
    browser: Browser, scenario: Scenario, screens: Screens
) -> None:
    page = signed_in(browser, scenario.platform.url, scenario.approver)
    page.goto(f"/models/{scenario.model}/versions/2")
    expect(page.locator("#approval-status")).to_contain_text("PendingManualApproval")
    page.get_by_label("Comment (optional)").fill("checked in the browser")
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#approval-status")).to_contain_text("Approved")
    screens.shoot(page, "approved")
    assert (
        scenario.platform.services.registry.get(scenario.model, 2).approval_status
        is ApprovalStatus.APPROVED
    )
    auditor = signed_in(browser, scenario.platform.url, scenario.admin)
    auditor.goto("/audit?actor=console-approver")
    expect(auditor.locator("main")).to_contain_text("model.approved")
    screens.shoot(auditor, "audit-approved")


def test_reject_without_a_reason_shows_the_error_next_to_the_control(
    browser: Browser, scenario: Scenario
) -> None:
    page = signed_in(browser, scenario.platform.url, scenario.approver)
    page.goto(f"/models/{scenario.model}/versions/1")
    reject = page.locator("form.action", has=page.get_by_role("button", name="Reject"))
    # The browser itself asks for the required reason first; bypass that as a script could.
    reject.locator("input[name=comment]").evaluate("e => e.removeAttribute('required')")
    reject.get_by_role("button", name="Reject").click()
    expect(reject.get_by_role("alert")).to_contain_text("why")


def test_a_viewer_sees_no_controls_and_a_forged_request_is_refused(
    browser: Browser, scenario: Scenario, screens: Screens
) -> None:
    page = signed_in(browser, scenario.platform.url, scenario.viewer)
    page.goto(f"/models/{scenario.model}/versions/1")
    expect(page.locator("main")).to_contain_text("Lineage")
    assert page.get_by_role("button", name=re.compile("Approve|Reject")).count() == 0
    screens.shoot(page, "viewer-version")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    forged = page.request.post(
        f"/models/{scenario.model}/versions/1/reject",
        form={"csrf_token": csrf, "comment": "forged"},
        headers={"accept": "application/json"},
    )
    assert forged.status == 403
    assert "needs approver" in forged.json()["error"]


def test_a_change_without_the_csrf_token_is_refused(browser: Browser, scenario: Scenario) -> None:
    page = signed_in(browser, scenario.platform.url, scenario.admin)
    page.goto(f"/models/{scenario.model}")
    answer = page.request.post(
        f"/models/{scenario.model}/versions/1/reject",
        form={"comment": "no token"},
        headers={"accept": "application/json"},
    )
    assert answer.status == 403
    assert "CSRF" in answer.json()["error"]
    status = scenario.platform.services.registry.get(scenario.model, 1).approval_status
    assert status is not ApprovalStatus.REJECTED


def test_a_pipeline_s_steps_reach_succeeded_without_a_reload(
    browser: Browser, scenario: Scenario, screens: Screens
) -> None:
    services = scenario.platform.services
    services.pipelines.register(pipeline(name="console-greeting")(flows.greeting))
    page = signed_in(browser, scenario.platform.url, scenario.admin)
    execution = services.pipelines.start("console-greeting", {"who": "console", "n": 2})
    page.goto(f"/pipelines/executions/{execution}")
    # A mark on the window: a reload or a navigation would drop it.
    page.evaluate("window.consoleMark = 'still here'")
    for step in ("greet", "shout"):
        expect(page.locator(f'g.node[data-step="{step}"]')).to_have_attribute(
            "data-state", "Succeeded", timeout=120_000
        )
    assert page.evaluate("window.consoleMark") == "still here"
    screens.shoot(page, "pipeline-execution-succeeded")


def test_a_drift_chart_has_one_line_per_feature_across_two_runs(
    browser: Browser, scenario: Scenario, screens: Screens, tmp_path: Path
) -> None:
    services = scenario.platform.services
    endpoint, name = "console-shop", "console-drift"
    baseline = services.baselines.create(
        "console-base",
        source={"file": write_baseline(tmp_path / "base.parquet")},
        prediction_column="score",
        actor="test",
    )
    later = HOUR + timedelta(hours=1)
    capture(services, endpoint, shift=0.2)
    capture(services, endpoint, shift=2.5, hour=later)
    services.monitoring.create(
        {"name": name, "kind": "data_quality", "endpoint": endpoint, "baseline": baseline.name},
        actor="test",
    )
    for start in (HOUR, later):
        run = services.monitoring.run(
            name, actor="test", start=start, end=start + timedelta(hours=1)
        )
        eventually(
            lambda run=run: services.monitoring.get_run(run.id).finished,
            what=f"monitor run {run.id} finished on slipway up's workers",
            timeout=120,
        )
    page = signed_in(browser, scenario.platform.url, scenario.admin)
    page.goto(f"/monitoring/{name}")
    chart = page.locator(".monitor-chart svg")
    expect(chart.locator("g.series")).to_have_count(3)  # a, b and the prediction
    for feature in ("a", "b"):
        expect(chart.locator(f'g.series[data-series="{feature}"] circle.point')).to_have_count(2)
    screens.shoot(page, "monitor-drift")
    page.locator("#runs a").first.click()
    expect(page.locator("svg.histogram").first).to_be_visible()
    screens.shoot(page, "monitor-report")


def test_an_endpoint_s_latency_chart_fills_and_it_rolls_back_from_its_history(
    browser: Browser, scenario: Scenario, screens: Screens, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = scenario.platform.services
    endpoints = services.endpoints
    monkeypatch.setenv("SLIPWAY_TOKEN", scenario.admin)  # slipway up's gateway has auth on
    name, model = "console-scoring", scenario.model

    def spec(version: int) -> dict[str, object]:
        return {"name": name, "variants": [{"name": "main", "model": f"{model}:{version}"}]}

    endpoints.create(spec(1), actor="tests")
    assert endpoints.wait(name, timeout=300).active_version == 1
    rows = pd.DataFrame({"a": [0.5, -1.0, 2.0], "b": [1.0, -2.0, 0.1]})
    for _ in range(20):
        endpoints.invoke(name, rows)

    page = signed_in(browser, scenario.platform.url, scenario.admin)
    page.goto(f"/endpoints/{name}")
    p99 = page.locator("svg.chart", has=page.locator("title", has_text="Latency p99"))
    # The gateway adds its counts to the database about once a second; the live region
    # fetches the charts every few seconds.
    expect(p99.locator('g.series[data-series="main"] circle.point').first).to_be_attached(
        timeout=60_000
    )
    screens.shoot(page, "endpoint-traffic")

    endpoints.update(name, spec(2), actor="tests")
    assert endpoints.wait(name, timeout=300).active_version == 2
    page.reload()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Roll back to config 1").click()
    expect(page.locator("main")).to_contain_text("rollback")
    rolled = endpoints.wait(name, timeout=300)
    assert rolled.active is not None and rolled.active.rollback_of == 1
    assert rolled.active.spec.variants[0].version == 1
    page.reload()
    screens.shoot(page, "endpoint-rolled-back")


def test_approving_works_with_the_keyboard_alone(
    browser: Browser, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = register_classifier(scenario.platform.services, monkeypatch, scenario.model)
    page = signed_in(browser, scenario.platform.url, scenario.approver)
    page.goto(f"/models/{scenario.model}/versions/{version}")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    approve = page.get_by_role("button", name="Approve", exact=True)
    for _ in range(100):  # Tab through the page until the control has the focus
        page.keyboard.press("Tab")
        if approve.evaluate("e => e === document.activeElement"):
            break
    expect(approve).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#approval-status")).to_contain_text("Approved")
