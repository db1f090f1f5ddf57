"""Settings: environment > slipway.yaml > defaults, workspace-relative defaults, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings, mask_url


def test_defaults_live_in_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    settings = load_settings()
    assert settings.home == tmp_path / "ws"
    assert settings.database_url == f"sqlite:///{tmp_path / 'ws' / 'slipway.db'}"
    assert settings.artifact_root == str(tmp_path / "ws" / "artifacts")
    assert settings.online_store_url == f"sqlite:///{tmp_path / 'ws' / 'online.db'}"
    assert settings.server.host == "127.0.0.1"
    assert settings.server.auth is False
    assert settings.kafka.bootstrap_servers is None
    assert settings.ray.address is None


def test_environment_beats_yaml_beats_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "slipway.yaml"
    config.write_text(
        "server:\n  port: 9000\n  auth: true\n"
        "online_store:\n  url: redis://127.0.0.1:6380/1\n"
        "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n"
    )
    monkeypatch.setenv("SLIPWAY_CONFIG", str(config))
    monkeypatch.setenv("SLIPWAY_SERVER__PORT", "9100")
    settings = load_settings()
    assert settings.server.port == 9100  # environment wins
    assert settings.server.auth is True  # from the file
    assert settings.online_store_url == "redis://127.0.0.1:6380/1"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.workers.processes == 2  # default


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_SERVER__PORT", "not-a-port")
    with pytest.raises(InvalidInput) as info:
        load_settings()
    assert info.value.field == "server.port"


@pytest.mark.parametrize(
    ("area", "value"),
    [("database", {"url": "mysql://x"}), ("online_store", {"url": "memcached://x"})],
)
def test_unknown_backends_are_refused(area: str, value: dict[str, str]) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(**{area: value})
    assert info.value.field == f"{area}.url"


@pytest.mark.parametrize(
    "address", ["ray://10.0.0.5:10001", "10.0.0.5:6379", "[::1]:6379", "head.internal:6379"]
)
def test_ray_addresses_are_host_and_port(address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_WORKERS__EXECUTOR", "ray")
    settings = load_settings(ray={"address": address})
    assert (settings.ray.address, settings.workers.executor) == (address, "ray")
    assert settings.workers.ray_max_in_flight is None


@pytest.mark.parametrize(
    "address",
    ["http://10.0.0.5:8265", "ray://10.0.0.5", "10.0.0.5", "ray://u:p@h:1", "h:0", "h:1/x"],
)
def test_bad_ray_addresses_name_the_setting(address: str) -> None:
    with pytest.raises(InvalidInput, match="ray://host:port") as info:
        load_settings(ray={"address": address})
    assert info.value.field == "ray.address"


def test_unknown_keys_in_the_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "slipway.yaml"
    config.write_text("server:\n  prot: 1\n")
    monkeypatch.setenv("SLIPWAY_CONFIG", str(config))
    with pytest.raises(InvalidInput, match=r"server\.prot"):
        load_settings()


def test_secrets_are_masked(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path,
        database={"url": "postgresql://slipway:hunter2@db:5432/meta"},
        online_store={"url": "redis://:s3cret@cache:6379/0"},
        kafka={"sasl_password": "kafka-pw"},
    )
    shown = str(settings.masked())
    assert "hunter2" not in shown and "s3cret" not in shown and "kafka-pw" not in shown
    assert settings.masked()["database"]["url"] == "postgresql://slipway:***@db:5432/meta"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sandbox_environments_come_comma_separated_and_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLIPWAY_REGISTRY__SANDBOX_ENVIRONMENTS", "staging, dev-eu")
    assert load_settings().registry.sandbox_environments == ["staging", "dev-eu"]
    monkeypatch.setenv("SLIPWAY_REGISTRY__SANDBOX_ENVIRONMENTS", "Prod Sandbox")
    with pytest.raises(InvalidInput) as info:
        load_settings()
    assert info.value.field == "registry.sandbox_environments"
