"""Alerts over REST: channels and rules CRUD, bad input as 400s naming the field, roles,
the fired-alert history with deliveries, and test notifications to a real HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from slipway.events.tables import AlertChannelRow
from slipway.services import Services
from tests.api.conftest import bearer
from tests.events.receivers import WebhookServer, webhook_server


@pytest.fixture
def hook(services: Services) -> Iterator[WebhookServer]:
    services.alerts.settings.allowed_hosts = ["127.0.0.1"]
    with webhook_server() as server:
        yield server


def test_channels_rules_and_history_over_rest(
    client: TestClient, services: Services, tokens: dict[str, str], hook: WebhookServer
) -> None:
    editor, viewer = bearer(tokens["editor"]), bearer(tokens["viewer"])
    created = client.post(
        "/api/v1/alerts/channels",
        headers=editor,
        json={"name": "ops", "kind": "webhook", "config": {"url": hook.url("/secret/path")}},
    )
    assert created.status_code == 201, created.text
    # The path of a webhook URL is often its secret: never shown back.
    assert created.json()["config"]["url"] == f"http://127.0.0.1:{hook.port}/***"
    assert created.json()["created_by"] == "t-editor"
    listed = client.get("/api/v1/alerts/channels", headers=viewer).json()
    assert [c["name"] for c in listed] == ["ops"]
    moved = client.put(
        "/api/v1/alerts/channels/ops",
        headers=editor,
        json={"config": {"url": "http://169.254.169.254/latest/meta-data/"}},
    )
    assert moved.status_code == 400
    assert moved.json()["error"]["details"]["field"] == "config.url"
    with services.db.session() as session:  # stored whole, shown without its path
        assert session.get(AlertChannelRow, ("default", "ops")).config["url"] == hook.url(
            "/secret/path"
        )
    assert services.alerts.channel("ops").config["url"] == f"http://127.0.0.1:{hook.port}/***"
    moved = client.put(
        "/api/v1/alerts/channels/ops", headers=editor, json={"config": {"url": hook.url()}}
    )
    assert moved.status_code == 200 and moved.json()["updated_at"] >= created.json()["updated_at"]

    rule = client.post(
        "/api/v1/alerts/rules",
        headers=editor,
        json={
            "name": "rollbacks",
            "event_types": ["endpoint.rolled_back"],
            "channels": ["ops"],
            "cooldown_seconds": 60,
            "severity": "critical",
        },
    )
    assert rule.status_code == 201, rule.text
    assert rule.json()["dedup_by"] == ["resource"] and rule.json()["fired"] == 0

    services.events.append("endpoint.rolled_back", "endpoint/flight-delay", {"to": 2})
    services.alerts.process()
    fired = client.get("/api/v1/alerts/fired", headers=viewer).json()
    assert len(fired) == 1
    assert fired[0]["resource"] == "endpoint/flight-delay"
    [delivery] = fired[0]["deliveries"]
    assert delivery["state"] == "delivered" and delivery["status_code"] == 200
    assert delivery["history"][0]["outcome"] == "delivered"
    one = client.get(f"/api/v1/alerts/fired/{fired[0]['id']}", headers=viewer)
    assert one.json()["deliveries"][0]["channel"] == "ops"
    assert client.get("/api/v1/alerts/fired?rule=other", headers=viewer).json() == []
    assert client.get("/api/v1/alerts/rules/rollbacks", headers=viewer).json()["fired"] == 1

    tested = client.post("/api/v1/alerts/channels/ops/test", headers=editor)
    assert tested.json() == {"channel": "ops", "delivered": True, "status_code": 200, "error": None}
    assert hook.requests[-1].json()["alert"]["test"] is True

    disabled = client.post("/api/v1/alerts/rules/rollbacks/disable", headers=editor)
    assert (disabled.json()["name"], disabled.json()["enabled"]) == ("rollbacks", False)
    updated = client.put(
        "/api/v1/alerts/rules/rollbacks",
        headers=editor,
        json={"event_types": ["endpoint.*"], "channels": ["ops"], "enabled": False},
    )
    assert updated.status_code == 200 and updated.json()["event_types"] == ["endpoint.*"]
    assert updated.json()["fired"] == 1  # counters survive a redefinition
    in_use = client.delete("/api/v1/alerts/channels/ops", headers=editor)
    assert in_use.status_code == 409 and in_use.json()["error"]["details"]["rules"] == ["rollbacks"]
    assert client.delete("/api/v1/alerts/rules/rollbacks", headers=editor).status_code == 204
    assert client.delete("/api/v1/alerts/channels/ops", headers=editor).status_code == 204
    assert client.get("/api/v1/alerts/channels/ops", headers=viewer).status_code == 404
    audit = services.audit.list(action="/api/v1/alerts/channels")
    assert ("POST /api/v1/alerts/channels", "t-editor", 201) in [
        (r.action, r.actor, r.status_code) for r in audit
    ]


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8420/api/v1/tokens"]
)
def test_ssrf_webhooks_are_a_400_naming_the_url(
    client: TestClient, tokens: dict[str, str], url: str
) -> None:
    editor = bearer(tokens["editor"])
    refused = client.post(
        "/api/v1/alerts/channels",
        headers=editor,
        json={"name": "evil", "kind": "webhook", "config": {"url": url}},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["details"]["field"] == "config.url"
    assert client.get("/api/v1/alerts/channels", headers=editor).json() == []


def test_bad_input_names_the_field_and_writes_nothing(
    client: TestClient, tokens: dict[str, str]
) -> None:
    editor = bearer(tokens["editor"])
    cases = [
        ("/api/v1/alerts/channels", {"name": "x", "kind": "pager"}, "kind"),
        ("/api/v1/alerts/channels", {"name": "Bad Name", "kind": "log"}, "name"),
        (
            "/api/v1/alerts/channels",
            {"name": "x", "kind": "webhook", "config": {"url": "ftp://example.org/"}},
            "config.url",
        ),
        ("/api/v1/alerts/channels", {"name": "x", "kind": "webhook", "config": {}}, "config.url"),
        ("/api/v1/alerts/channels", {"name": "x", "kind": "email", "config": {}}, "config.to"),
        (
            "/api/v1/alerts/rules",
            {"name": "r", "event_types": ["x.y"], "channels": ["missing"]},
            "channels.0",
        ),
        (
            "/api/v1/alerts/rules",
            {"name": "r", "event_types": ["x.y"], "channels": ["a"], "cooldown_seconds": -1},
            "cooldown_seconds",
        ),
        (
            "/api/v1/alerts/rules",
            {"name": "r", "event_types": ["x.y"], "channels": ["a"], "severity": "panic"},
            "severity",
        ),
        (
            "/api/v1/alerts/rules",
            {"name": "r", "event_types": [], "channels": ["a"]},
            "event_types",
        ),
    ]
    for path, body, field in cases:
        response = client.post(path, headers=editor, json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["details"]["field"] == field, (body, response.text)
    assert client.get("/api/v1/alerts/channels", headers=editor).json() == []
    assert client.get("/api/v1/alerts/rules", headers=editor).json() == []
    assert client.get("/api/v1/alerts/rules/none", headers=editor).status_code == 404
    assert client.get("/api/v1/alerts/fired/12345", headers=editor).status_code == 404
    assert client.post("/api/v1/alerts/channels/none/test", headers=editor).status_code == 404


def test_viewers_read_but_cannot_change_or_send(client: TestClient, tokens: dict[str, str]) -> None:
    viewer = bearer(tokens["viewer"])
    assert client.get("/api/v1/alerts/rules", headers=viewer).status_code == 200
    denied = client.post(
        "/api/v1/alerts/channels", headers=viewer, json={"name": "x", "kind": "log"}
    )
    assert denied.status_code == 403
    assert client.get("/api/v1/alerts/rules").status_code == 401
