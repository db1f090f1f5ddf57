"""The console's endpoints pages on an embedded control plane: the list, an endpoint's
variants, rollout, gateways, capture and history, its live traffic charts, and rolling back
— with real registered models. No gateway runs: what a gateway writes (its heartbeat, its
load state, its traffic counters) is written here as a gateway worker writes it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from slipway.console.pages.endpoints import requests_per_second
from slipway.core.clock import utcnow
from slipway.services import Services
from slipway.serving.gateway.metrics import Recorder
from slipway.serving.stats import TrafficWindow
from slipway.serving.tables import GatewayModelRow, GatewayRow
from tests.console.conftest import act, csrf_of, sign_in
from tests.registry.logged import register_classifier

SERIES = re.compile(r'<g class="series" data-series="([^"]+)">(.*?)</g>', re.S)


def spec(name: str = "churn", **extra: Any) -> dict[str, Any]:
    """Two production variants (3:1), a shadow mirroring 20%, capture of half the requests."""
    return {
        "name": name,
        "description": "who leaves",
        "variants": [
            {"name": "main", "model": "churn:1", "weight": 3},
            {"name": "side", "model": "churn:1", "weight": 1},
        ],
        "shadow_variants": [{"name": "shadow", "model": "churn:1", "sampling_percent": 20}],
        "data_capture": {"enabled": True, "sampling_percent": 50},
        **extra,
    }


def gateway_reports(
    services: Services, endpoint: str, version: int, state: str = "ready", error: str = ""
) -> None:
    """What a live gateway worker writes once it has tried to load a config: its heartbeat
    and the config's load state."""
    now = utcnow()
    with services.db.write() as session:
        gateway = session.get(GatewayRow, "g1") or GatewayRow(
            gateway_id="g1", host="test", pid=1, started_at=now, in_flight=0
        )
        gateway.heartbeat_at = gateway.refreshed_at = now
        session.add(gateway)
        session.add(
            GatewayModelRow(
                gateway_id="g1",
                endpoint=endpoint,
                config_version=version,
                state=state,
                error=error,
                updated_at=now,
            )
        )


def serve_traffic(services: Services, endpoint: str, version: int) -> None:
    """Requests counted as a gateway worker counts them (its Recorder, flushed to the
    stats table): main 40 in 1..40 ms with 2 errors, side 10 at 100 ms, the shadow 8."""
    recorder = Recorder(services.db, "g1")
    for ms in range(1, 41):
        recorder.counters(endpoint, version, "main").observe(float(ms), ms / 2, error=ms > 38)
    for _ in range(10):
        recorder.counters(endpoint, version, "side").observe(100.0, 90.0, error=False)
    for _ in range(8):
        recorder.counters(endpoint, version, "shadow").observe(5.0, 4.0, error=False)
    recorder.flush()


def points_per_series(html: str) -> dict[str, list[int]]:
    """Per variant, the number of ``circle.point`` of each chart it appears in."""
    found: dict[str, list[int]] = {}
    for name, body in SERIES.findall(html):
        found.setdefault(name, []).append(body.count('<circle class="point"'))
    return found


def row_of(html: str, attribute: str) -> str:
    """The table row carrying ``attribute`` (e.g. ``data-config="3"``)."""
    found = re.search(rf"<tr[^>]*{re.escape(attribute)}[^>]*>(.*?)</tr>", html, re.S)
    assert found, f"no row with {attribute}"
    return found.group(1)


@pytest.fixture
def churn(services: Services, monkeypatch: pytest.MonkeyPatch) -> Services:
    """A registered model ``churn`` (version 1) to deploy."""
    register_classifier(services, monkeypatch, "churn")
    return services


def test_empty_state_says_how_to_create_one(console: TestClient, services: Services) -> None:
    page = console.get("/endpoints")
    assert page.status_code == 200, page.text
    assert "<h1>Endpoints</h1>" in page.text
    assert "No endpoints in this workspace yet" in page.text
    assert "<code>slipway endpoints create endpoint.yaml</code>" in page.text
    services.workspaces.create("fraud", actor="test")
    other = console.get("/endpoints", params={"ws": "fraud"})
    assert "slipway --workspace fraud endpoints create endpoint.yaml" in other.text


def test_list_detail_rollout_charts_and_rollback(console: TestClient, churn: Services) -> None:
    services = churn
    services.endpoints.create(spec(), actor="test")
    listed = console.get("/endpoints")
    assert listed.status_code == 200, listed.text
    row = row_of(listed.text, 'data-endpoint="churn"')
    for text in ('href="/endpoints/churn"', "Creating", "main", "churn:1", "75%", "side", "25%"):
        assert text in row, text
    assert "shadow" in row and "mirrors 20%" in row and "on · 50%" in row

    gateway_reports(services, "churn", 1)
    services.deployments.tick()
    assert services.endpoints.describe("churn").status == "InService"
    serve_traffic(services, "churn", 1)
    row = row_of(console.get("/endpoints").text, 'data-endpoint="churn"')
    assert "InService" in row and '<td class="num" data-value="50">50</td>' in row  # no shadow

    # A canary of config 2 (one variant) at its first phase: 10% of the traffic.
    canary = {"strategy": "canary", "canary_percent": 10, "baking_seconds": 0}
    services.endpoints.update(
        "churn",
        spec(variants=[{"name": "main", "model": "churn:1"}], deployment=canary),
        actor="test",
    )
    gateway_reports(services, "churn", 2)
    services.deployments.tick()
    page = console.get("/endpoints/churn")
    assert page.status_code == 200, page.text
    html = page.text
    assert "<h1>Endpoint churn</h1>" in html and 'href="/endpoints"' in html
    assert "who leaves" in html and "Updating" in html
    assert "67.5%" in row_of(html, 'data-variant="main" data-config="1"')
    assert "22.5%" in row_of(html, 'data-variant="side" data-config="1"')
    assert "10.0%" in row_of(html, 'data-variant="main" data-config="2"')
    assert "20%" in row_of(html, 'data-shadow="shadow"')
    rollout = re.search(r'data-rollout="2">(.*?)</dl>', html, re.S)
    assert rollout, html
    for text in ("canary 10% → 100%, bake 0 s", "1 of 2", "10%", "phase 1 of 2, baking"):
        assert text in rollout.group(1), text
    assert "g1" in html and "ready" in html  # the gateway's load state
    assert "capture/endpoint=churn" in html and "50% of requests" in html
    assert 'data-live="/endpoints/churn/live" data-every="3000"' in html
    pending = row_of(html, 'data-history="2"')
    assert "pending" in pending and "phase 1 of 2, baking" in pending  # the bake state

    # Live charts: four charts with a line of points per variant that served.
    live = console.get("/endpoints/churn/live")
    assert live.status_code == 200, live.text
    assert "<html" not in live.text  # a fragment for the live region
    points = points_per_series(live.text)
    assert set(points) == {"main", "side", "shadow"}
    for name, counts in points.items():
        assert len(counts) == 4 and all(c >= 1 for c in counts), (name, counts)
    totals = row_of(live.text, 'data-variant="main"')
    assert ">40<" in totals and ">2<" in totals and "5.00%" in totals
    assert points_per_series(html) == points  # the page starts with the same region

    services.deployments.tick()  # phase 2: 100%
    services.deployments.tick()  # baked: config 2 serves, config 1 retired
    page = console.get("/endpoints/churn").text
    assert "retired" in row_of(page, 'data-history="1"') and "No rollout under way" in page
    assert "Roll back to config 1" in page and "Roll back to config 2" not in page

    answer = act(console, "/endpoints/churn/rollback", to_version="1", _page="/endpoints/churn")
    assert answer.status_code == 200, answer.text
    assert answer.json()["location"] == "/endpoints/churn"
    history = services.endpoints.history("churn")
    assert [(d.version, d.rollback_of, d.created_by) for d in history][-1] == (3, 1, "anonymous")
    page = console.get("/endpoints/churn").text
    newest = row_of(page, 'data-history="3"')
    assert "rollback to config 1" in newest and "all at once" in newest and "pending" in newest
    assert "Roll back to config" not in page  # Updating: no rollback until it settles
    assert "once the endpoint is InService" in page
    busy = act(console, "/endpoints/churn/rollback", to_version="1", _page="/endpoints/churn")
    assert busy.status_code == 409 and "InService" in busy.json()["error"]
    for wrong in ("x", "0", "²", "9" * 5000):
        bad = act(console, "/endpoints/churn/rollback", to_version=wrong, _page="/endpoints")
        assert bad.status_code == 400 and "to_version" in bad.json()["error"], wrong


def test_unknown_endpoint_is_a_404_page(console: TestClient) -> None:
    for path in ("/endpoints/nope", "/endpoints/nope/live"):
        page = console.get(path)
        assert page.status_code == 404, path
        assert "<h1>Not found</h1>" in page.text and "nope" in page.text
    refused = act(console, "/endpoints/nope/rollback", to_version="1", _page="/endpoints")
    assert refused.status_code == 404 and "nope" in refused.json()["error"]


def test_live_region_before_any_traffic(console: TestClient, churn: Services) -> None:
    churn.endpoints.create(spec(), actor="test")
    live = console.get("/endpoints/churn/live")
    assert live.status_code == 200, live.text
    assert "no traffic in the last 15 minutes" in live.text
    assert points_per_series(live.text) == {}
    assert "No live gateway has loaded this endpoint" in console.get("/endpoints/churn").text


def test_the_list_is_paged(console: TestClient, churn: Services) -> None:
    for index in range(52):
        churn.endpoints.create(spec(f"e{index:02d}"), actor="test")
    first = console.get("/endpoints").text
    assert "1-50 of 52" in first and 'href="/endpoints/e00"' in first
    assert 'href="/endpoints?page=2"' in first and 'href="/endpoints/e50"' not in first
    second = console.get("/endpoints", params={"page": 2}).text
    assert "51-52 of 52" in second and 'href="/endpoints/e51"' in second
    assert console.get("/endpoints", params={"page": "x"}).status_code == 400


def test_rollback_needs_a_deployer_and_a_csrf_token(
    auth_console: TestClient, auth_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_classifier(auth_services, monkeypatch, "churn")
    auth_services.endpoints.create(spec(), actor="test")
    gateway_reports(auth_services, "churn", 1)
    auth_services.deployments.tick()
    auth_services.endpoints.update("churn", spec(description="v2"), actor="test")
    gateway_reports(auth_services, "churn", 2)
    auth_services.deployments.tick()  # loaded: 100% on config 2
    auth_services.deployments.tick()  # baked: config 2 serves
    assert auth_services.endpoints.describe("churn").active_version == 2

    viewer = auth_services.tokens.create("watcher", "viewer", created_by="test")[1]
    deployer = auth_services.tokens.create("shipper", "deployer", created_by="test")[1]
    sign_in(auth_console, viewer)
    page = auth_console.get("/endpoints/churn")
    assert page.status_code == 200 and "Roll back to config" not in page.text
    refused = act(auth_console, "/endpoints/churn/rollback", to_version="1", _page="/endpoints")
    assert refused.status_code == 403, refused.text

    sign_in(auth_console, deployer)
    assert "Roll back to config 1" in auth_console.get("/endpoints/churn").text
    csrf_of(auth_console, "/endpoints/churn")  # the seed cookie is set, the token not sent
    forged = auth_console.post(
        "/endpoints/churn/rollback",
        data={"to_version": "1"},
        headers={"accept": "application/json"},
    )
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
    assert [d.version for d in auth_services.endpoints.history("churn")] == [1, 2]

    done = act(auth_console, "/endpoints/churn/rollback", to_version="1", _page="/endpoints")
    assert done.status_code == 200, done.text
    last = auth_services.endpoints.history("churn")[-1]
    assert (last.version, last.rollback_of, last.created_by) == (3, 1, "shipper")
    audit = auth_services.audit.list()
    assert any(
        (e.action, e.actor, e.details) == ("endpoint.update", "shipper", {"config_version": 3})
        for e in audit
    ), audit


def test_pages_keep_the_workspace(
    console: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.workspaces.create("fraud", actor="test")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", services.registry.mlflow.uri)
    fraud = services.in_workspace("fraud")
    registry = fraud.registry
    experiment = registry.mlflow.experiment_id("faces", services.settings.artifact_root)
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    model = LogisticRegression().fit(x, (x["a"] > 0).astype(int))
    with registry.mlflow.scope(), mlflow.start_run(experiment_id=experiment) as run:
        mlflow.sklearn.log_model(
            model, name="model", input_example=x.head(2), pip_requirements=["scikit-learn"]
        )
    registry.register("churn", f"runs:/{run.info.run_id}/model", actor="test")
    fraud.endpoints.create(spec(), actor="test")
    assert "No endpoints in this workspace yet" in console.get("/endpoints").text
    listed = console.get("/endpoints", params={"ws": "fraud"}).text
    assert 'href="/endpoints/churn?ws=fraud"' in listed
    page = console.get("/endpoints/churn", params={"ws": "fraud"})
    assert page.status_code == 200, page.text
    assert 'data-live="/endpoints/churn/live?ws=fraud"' in page.text
    assert "workspaces/fraud/capture/endpoint=churn" in page.text
    assert console.get("/endpoints/churn").status_code == 404  # not in the default workspace
    assert console.get("/endpoints/churn/live", params={"ws": "fraud"}).status_code == 200


def test_requests_drop_to_zero_where_no_gateway_counted() -> None:
    """A window without rows served nothing: the line goes to 0 at the edges of each quiet
    stretch and at the span's ends, with no point for every quiet window."""
    start = datetime(2030, 1, 1, 12, tzinfo=UTC)

    def at(k: int) -> datetime:
        return start + timedelta(seconds=5 * k)

    windows = [TrafficWindow(at(k), 10 * k, 0, 1.0, 2.0) for k in (3, 4, 9)]
    points = requests_per_second(windows, at(0), at(12))
    assert points == [
        (at(0), 0.0),
        (at(2), 0.0),
        (at(3), 6.0),
        (at(4), 8.0),
        (at(5), 0.0),
        (at(8), 0.0),
        (at(9), 18.0),
        (at(10), 0.0),
        (at(12), 0.0),
    ]
