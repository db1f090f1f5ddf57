"""The SSRF guard on its own: which URLs are refused, the allow-list, and the check made
again when connecting (so DNS that changes after the check gains nothing)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from slipway.core.errors import InvalidInput
from slipway.core.settings import AlertSettings, load_settings
from slipway.events import urls
from slipway.events.channels import (
    DeliveryError,
    Notification,
    check_config,
    open_channel,
    redacted,
)
from slipway.events.urls import UnsafeUrl, UrlGuard
from tests.events.receivers import webhook_server

NOTE = Notification(
    rule="r",
    severity="info",
    event_type="x.y",
    resource="r/x",
    payload={},
    time=datetime(2026, 1, 1, tzinfo=UTC),
    dedup_key="k",
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("http://[fd00:ec2::254]/", "cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://127.0.0.1:8420/api/v1/tokens", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("http://169.254.10.10/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0:8420/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("file:///etc/passwd", "scheme must be http or https"),
        ("gopher://example.org/", "scheme must be http or https"),
        ("http:///nohost", "names no host"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_unsafe_urls_are_refused_naming_the_field(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        UrlGuard().check_url(url, field="config.url")
    assert caught.value.field == "config.url"
    assert reason in caught.value.message


@pytest.mark.parametrize("url", ["http://10.1.2.3/hook", "https://192.168.1.20:8443/x"])
def test_private_addresses_are_allowed_only_by_host(url: str) -> None:
    # Refused by default since issue 20 (tests/events/test_webhook_ranges.py has the rest).
    with pytest.raises(UnsafeUrl, match="a private address"):
        UrlGuard().check_url(url, field="url")
    host = url.split("/")[2].split(":")[0]
    assert UrlGuard([host]).check_url(url, field="url") == url


def test_an_allowed_host_passes_whatever_it_resolves_to() -> None:
    guard = UrlGuard(["LOCALHOST.", "127.0.0.1", "169.254.169.254"])
    for url in ("http://localhost:9/", "http://127.0.0.1/x", "http://169.254.169.254/"):
        assert guard.check_url(url, field="url") == url
    with pytest.raises(UnsafeUrl):
        guard.check_url("http://[::1]/", field="url")  # only the hosts named


def test_the_allow_list_reads_a_comma_separated_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLIPWAY_ALERTS__ALLOWED_HOSTS", "hooks.internal, 127.0.0.1")
    assert load_settings().alerts.allowed_hosts == ["hooks.internal", "127.0.0.1"]
    monkeypatch.setenv("SLIPWAY_ALERTS__ALLOWED_HOSTS", '["Chat.Example.org."]')
    assert load_settings().alerts.allowed_hosts == ["chat.example.org"]
    monkeypatch.setenv("SLIPWAY_ALERTS__SMTP__PASSWORD", "s3cret")
    assert load_settings().masked()["alerts"]["smtp"]["password"] == "***"


def test_an_address_that_changes_after_the_check_is_refused_when_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name resolves to a public address for the check, then to
    loopback for the connection. The connection resolves and checks again."""
    real = socket.getaddrinfo
    answers = ["93.184.215.14", "127.0.0.1"]

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.org":
            return real(answers.pop(0) if len(answers) > 1 else answers[0], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    with webhook_server() as hook:
        monkeypatch.setattr(urls.socket, "getaddrinfo", rebinding)
        channel = open_channel(
            "webhook", {"url": f"http://hooks.example.org:{hook.port}/hook"}, AlertSettings()
        )
        with pytest.raises(DeliveryError) as caught:
            channel.send(NOTE)
        assert not caught.value.retryable
        assert "loopback" in caught.value.message
        assert hook.requests == []


def test_webhook_urls_are_shown_without_their_secret_part() -> None:
    url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    assert redacted("webhook", {"url": url, "format": "slack"}) == {
        "url": "https://hooks.slack.com/***",
        "format": "slack",
    }
    assert redacted("webhook", {"url": "http://user:pw@[::1]:8080/"})["url"] == "http://[::1]:8080"
    assert redacted("email", {"to": ["a@b.c"]}) == {"to": ["a@b.c"]}


def test_a_config_with_unknown_fields_names_them() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_config("webhook", {"url": "http://10.0.0.1/", "secret": "x"}, AlertSettings())
    assert caught.value.field == "config.secret"
    with pytest.raises(InvalidInput) as kind:
        check_config("pager", {}, AlertSettings())
    assert kind.value.field == "kind"
