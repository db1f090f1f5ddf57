"""Webhooks to private networks (issue 20): private, link-local, metadata, shared (CGNAT),
multicast and unspecified ranges refused when a channel is created and again when it
sends; loopback only while the control plane listens on loopback (never on the platform's
own ports); anything else only by host in ``alerts.allowed_hosts``.

No DNS server is reachable here, so names are resolved by a stand-in for the resolver of
the guard's module only (``slipway.events.urls``). No test sends traffic to a refused
address: a tripwire refuses any connection leaving loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from slipway.core.db import Database
from slipway.core.errors import InvalidInput
from slipway.core.events import EventLog
from slipway.core.settings import AlertSettings, Settings, load_settings
from slipway.events import urls
from slipway.events.alerts import Alerts
from slipway.events.tables import AlertChannelRow
from tests.events.receivers import WebhookServer, webhook_server

PUBLIC = "93.184.215.14"  # resolved to, never connected to
NAME = "hooks.example.test"


class Resolver:
    """What ``NAME`` resolves to, for the guard's module only; other names as usual."""

    def __init__(self) -> None:
        self.answers = [PUBLIC]

    def getaddrinfo(self, host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host.rstrip(".").lower() != NAME:
            return socket.getaddrinfo(host, port, *args, **kwargs)
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in self.answers
        ]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver()
    module = SimpleNamespace(getaddrinfo=fake.getaddrinfo, SOCK_STREAM=socket.SOCK_STREAM)
    monkeypatch.setattr(urls, "socket", module)
    return fake


@pytest.fixture(autouse=True)
def tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly, before any packet, if anything connects off loopback."""
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a test connected to {host}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with webhook_server() as server:
        yield server


def _settings(tmp_path: Path, host: str = "127.0.0.1", **alerts: Any) -> Settings:
    return load_settings(home=tmp_path / "home", server={"host": host}, alerts=alerts)


def _alerts(db: Database, settings: AlertSettings) -> Alerts:
    return Alerts(settings, db, EventLog(db))


def _saved(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(AlertChannelRow)) or 0)


def _refused(alerts: Alerts, url: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        alerts.create_channel("evil", "webhook", {"url": url}, actor="t")
    assert caught.value.status_code == 400
    assert caught.value.field == "config.url"
    return caught.value


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/", "a private address"),
        ("http://192.168.1.1/hook", "a private address"),
        ("http://172.16.0.1:8080/", "a private address"),
        ("http://172.31.255.254/", "a private address"),
        ("http://[fd00::1]/", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://100.127.255.254/", "carrier-grade NAT"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        # IPv6 spellings of a private IPv4 address: mapped, 6to4 and NAT64.
        ("http://[::ffff:10.0.0.1]/", "a private address"),
        ("http://[2002:a00:1::]/", "a private address"),
        ("http://[64:ff9b::a00:1]/", "a private address"),
        ("http://167772161/", "a private address"),  # 10.0.0.1 as one number
    ],
)
def test_a_private_or_reserved_webhook_is_refused_at_creation_and_nothing_is_saved(
    db: Database, tmp_path: Path, url: str, reason: str
) -> None:
    alerts = _alerts(db, _settings(tmp_path).alerts)  # the server on loopback: no matter
    refused = _refused(alerts, url)
    assert reason in refused.message and "alerts.allowed_hosts" in refused.message
    assert _saved(db) == 0


@pytest.mark.parametrize(
    "answers", [["10.0.0.7"], ["192.168.4.4"], [PUBLIC, "10.0.0.7"], ["fd12::7", PUBLIC]]
)
def test_a_name_resolving_to_a_private_address_is_refused(
    db: Database, tmp_path: Path, resolver: Resolver, answers: list[str]
) -> None:
    """Every address a name resolves to is checked, not only the first."""
    resolver.answers = answers
    alerts = _alerts(db, _settings(tmp_path).alerts)
    refused = _refused(alerts, f"http://{NAME}/hook")
    assert "a private address" in refused.message
    assert refused.details["host"] == NAME
    assert _saved(db) == 0


def test_loopback_is_allowed_only_while_the_server_listens_on_loopback(
    db: Database, tmp_path: Path, hook: WebhookServer
) -> None:
    on_loopback = _alerts(db, _settings(tmp_path, "127.0.0.1").alerts)
    for url in (hook.url(), hook.url(host="localhost")):
        on_loopback.create_channel("mine", "webhook", {"url": url}, actor="t")
        assert on_loopback.test("mine").delivered
        on_loopback.delete_channel("mine")
    assert len(hook.requests) == 2

    exposed = _alerts(db, _settings(tmp_path / "x", "0.0.0.0").alerts)
    for url in (hook.url(), hook.url(host="localhost"), "http://[::1]:9/"):
        refused = _refused(exposed, url)
        assert "a loopback address" in refused.message
        assert "only while the control plane listens on loopback" in refused.message
    assert _saved(db) == 0 and len(hook.requests) == 2


def test_loopback_never_reaches_the_platform_own_ports(
    db: Database, tmp_path: Path, hook: WebhookServer
) -> None:
    for area in ("server", "tracking", "serving"):
        areas: dict[str, dict[str, Any]] = {"server": {"host": "127.0.0.1"}}
        areas[area] = areas.get(area, {}) | {"port": hook.port}
        settings = load_settings(home=tmp_path / area, **areas)
        refused = _refused(_alerts(db, settings.alerts), hook.url("/api/v1/tokens"))
        assert "one of the platform's own servers" in refused.message
    assert _saved(db) == 0 and hook.requests == []


def test_the_send_time_check_follows_where_the_server_listens(
    db: Database, tmp_path: Path, hook: WebhookServer
) -> None:
    """Saved while the server listened on loopback; `slipway server --host 0.0.0.0` sets
    the host after loading: the next send is refused, nothing is sent."""
    settings = _settings(tmp_path, "127.0.0.1")
    alerts = _alerts(db, settings.alerts)
    alerts.create_channel("ops", "webhook", {"url": hook.url()}, actor="t")
    settings.server.host = "0.0.0.0"
    result = alerts.test("ops")
    assert not result.delivered
    assert result.error is not None and "a loopback address" in result.error
    assert hook.requests == []


def test_the_server_host_reaches_processes_slipway_starts(tmp_path: Path) -> None:
    """The scheduler delivering alerts is another process: it must know the host that
    `slipway up --host` set, not the default."""
    settings = _settings(tmp_path, "127.0.0.1")
    settings.server.host = "0.0.0.0"
    assert settings.as_env()["SLIPWAY_SERVER__HOST"] == "0.0.0.0"
    assert AlertSettings().loopback_allowed is False  # on its own: not known, refused


@pytest.mark.parametrize("server_host", ["127.0.0.1", "0.0.0.0"])
def test_an_allow_listed_host_is_accepted(
    db: Database, tmp_path: Path, resolver: Resolver, server_host: str
) -> None:
    resolver.answers = ["10.0.0.7"]
    alerts = _alerts(
        db, _settings(tmp_path, server_host, allowed_hosts=["10.0.0.1", NAME.upper()]).alerts
    )
    alerts.create_channel("lan", "webhook", {"url": "http://10.0.0.1/hook"}, actor="t")
    alerts.create_channel("named", "webhook", {"url": f"http://{NAME}/hook"}, actor="t")
    assert _saved(db) == 2
    _refused(alerts, "http://10.0.0.2/hook")  # only the hosts named
    assert _saved(db) == 2


def test_the_send_time_check_refuses_a_name_that_now_resolves_privately(
    db: Database, tmp_path: Path, resolver: Resolver
) -> None:
    """DNS changed after the channel was saved: the send resolves again, checks every
    address, and refuses without connecting anywhere."""
    alerts = _alerts(db, _settings(tmp_path).alerts)
    alerts.create_channel("ops", "webhook", {"url": f"http://{NAME}:8080/hook"}, actor="t")
    for answers in (["10.0.0.7"], [PUBLIC, "10.0.0.7"], ["169.254.169.254"]):
        resolver.answers = answers
        result = alerts.test("ops")
        assert not result.delivered
        assert result.error is not None and NAME in result.error
        assert "private" in result.error or "metadata" in result.error


def test_the_connection_goes_to_the_address_that_was_checked(
    db: Database, tmp_path: Path, resolver: Resolver, hook: WebhookServer
) -> None:
    """The guard resolves the name once per connection and connects to the address it
    checked: the HTTP client never resolves the name itself (it could not here — only
    the guard's module knows the name)."""
    resolver.answers = ["127.0.0.1"]
    alerts = _alerts(db, _settings(tmp_path, "127.0.0.1").alerts)
    alerts.create_channel("ops", "webhook", {"url": f"http://{NAME}:{hook.port}/h"}, actor="t")
    assert alerts.test("ops").delivered
    [received] = hook.requests
    assert received.headers["host"] == f"{NAME}:{hook.port}"
