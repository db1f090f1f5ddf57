"""A second real Slipway for promotion tests: ``slipway up`` on a home and a port of its
own, auth on, started once per test session (per xdist worker) beside the shared one
(tests/shared_platform.py), which plays the source. Only its control plane runs (no
MLflow server, gateway or workers): promotion needs nothing else, and the start stays
short. Its embedded twin — the same settings in process — loads what arrives, to score it.

Test modules take the fixture by importing it (``from tests.registry.second_platform
import prod_platform``), so the registry and the CLI tests share one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from slipway.client import Client
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.shared_platform import _free_port, start_up, stop_up


@dataclass
class Platform:
    """``slipway up`` on ``home``, its embedded twin, and tokens by role."""

    url: str
    home: Path
    services: Services
    tokens: dict[str, str]

    def client(self, role: str = "admin") -> Client:
        return Client(self.url, token=self.tokens[role])


@pytest.fixture(scope="session")
def prod_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("prod") / "home"
    home.mkdir()
    port = _free_port()
    config = home / "slipway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"port": port, "auth": True},
                "tracking": {"enabled": False, "port": _free_port()},
                "serving": {"enabled": False, "port": _free_port()},
                "workers": {"processes": 0},
            }
        )
    )
    # The twin reads the same settings as the process, without this test's environment.
    saved = {k: v for k, v in os.environ.items() if k.startswith("SLIPWAY_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({"SLIPWAY_HOME": str(home), "SLIPWAY_CONFIG": str(config)})
    try:
        settings = load_settings()
    finally:
        for key in ("SLIPWAY_HOME", "SLIPWAY_CONFIG"):
            del os.environ[key]
        os.environ.update(saved)
    services = Services.open(settings)
    # MLflow's tables, made before the server starts: both making them at once would race.
    services.registry.mlflow.experiment_id("warm-up", settings.artifact_root)
    tokens = {
        role: services.tokens.create(f"prod-{role}", role, created_by="tests")[1]
        for role in ("admin", "editor", "viewer")
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env |= {"SLIPWAY_HOME": str(home), "SLIPWAY_CONFIG": str(config)}
    url = f"http://127.0.0.1:{port}"
    process = start_up(home, env, {"control plane": f"{url}/api/v1/health/live"})
    try:
        yield Platform(url=url, home=home, services=services, tokens=tokens)
    finally:
        stop_up(process)
        services.close()
