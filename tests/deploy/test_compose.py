"""deploy/compose.yaml: valid against the Compose Specification's schema (the one Docker
Compose validates with), and wired as the platform needs: every backend, each Slipway
process, two gateways, healthchecks that gate the start order, settings Slipway accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from slipway.core.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yaml"
# ${NAME:-default} and ${NAME-default}: what Compose substitutes from the environment.
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}")


def interpolated(text: str) -> str:
    """``text`` as Compose reads it with none of its variables set: each takes its default.
    A variable without one would be an empty value on a machine that does not set it, so
    it fails the test instead."""

    def default(match: re.Match[str]) -> str:
        if match.group(2) is None:
            raise AssertionError(f"${{{match.group(1)}}} has no default")
        return match.group(3)

    return _VARIABLE.sub(default, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolated(COMPOSE.read_text()))
    return loaded


@pytest.fixture(scope="module")
def validator(compose_schema: Path) -> jsonschema.Draft202012Validator:
    schema = json.loads(compose_schema.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_refuses_a_misspelt_key(
    compose: dict[str, Any], validator: jsonschema.Draft202012Validator
) -> None:
    """The check above has teeth: a typo in a service is an error naming the key."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["gateway-1"]["helthcheck"] = broken["services"]["gateway-1"]["healthcheck"]
    errors = [e.message for e in validator.iter_errors(broken)]
    assert errors and "helthcheck" in errors[0]


def test_backends_and_every_slipway_process_with_two_gateways(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "kafka", "s3"} <= set(services)
    commands = {
        name: service["command"][0]
        for name, service in services.items()
        if service.get("image") == "slipway:dev" and "entrypoint" not in service
    }
    assert commands == {
        "migrate": "db",
        "control-plane": "server",
        "tracking": "mlflow",
        "scheduler": "scheduler",
        "worker": "worker",
        "gateway-1": "serve",
        "gateway-2": "serve",
    }
    gateways = [name for name, command in commands.items() if command == "serve"]
    assert len(gateways) == 2
    published = {services[name]["ports"][0] for name in gateways}
    assert published == {"8422:8422", "8423:8422"}
    assert services["worker"]["deploy"]["replicas"] == 2
    # The image is built once, from the repository's Dockerfile.
    builds = [name for name, service in services.items() if "build" in service]
    assert builds == ["migrate"]
    assert services["migrate"]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert (COMPOSE.parent / ".." / "Dockerfile").resolve().is_file()


def test_healthchecks_gate_the_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "kafka", "s3", "control-plane", "tracking"):
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    probes = {
        "control-plane": "http://127.0.0.1:8420/api/v1/health/live",
        "tracking": "http://127.0.0.1:8421/health",
        "gateway-1": "http://127.0.0.1:8422/ping",
        "gateway-2": "http://127.0.0.1:8422/ping",
    }
    for name, url in probes.items():
        assert url in services[name]["healthcheck"]["test"][-1], name
    ready = {
        "migrate": "service_completed_successfully",
        "s3-init": "service_completed_successfully",
        "redis": "service_healthy",
        "kafka": "service_healthy",
    }
    for name in ("control-plane", "tracking", "scheduler", "worker", "gateway-1", "gateway-2"):
        conditions = {dep: c["condition"] for dep, c in services[name]["depends_on"].items()}
        assert conditions == ready, name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["s3-init"]["depends_on"] == {"s3": {"condition": "service_healthy"}}


def test_slipway_containers_are_locked_down(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("image") != "slipway:dev":
            continue
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert set(service["tmpfs"]) == {"/tmp", "/var/lib/slipway"}, name


def test_the_environment_is_settings_slipway_accepts(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every SLIPWAY_ variable the containers get is a setting (a misspelt one would be
    silently ignored by a process, so the test reads them as Slipway does)."""
    env = compose["services"]["control-plane"]["environment"]
    for name, value in env.items():
        if name.startswith("SLIPWAY_"):
            monkeypatch.setenv(name, str(value))
    settings = load_settings()
    assert settings.database_url == "postgresql://slipway:slipway@postgres:5432/slipway"
    assert settings.online_store.url == "redis://redis:6379/0"
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.artifacts.root == "s3://slipway/artifacts"
    assert settings.server.auth is True
    known = {
        f"SLIPWAY_{area.upper()}__{key.upper()}"
        for area, values in settings.model_dump().items()
        if isinstance(values, dict)
        for key in values
    }
    assert {name for name in env if name.startswith("SLIPWAY_")} <= known
    # The object store's settings are the ones s3fs, delta-rs and MLflow read.
    assert env["AWS_ENDPOINT_URL"] == "http://s3:9000"
    assert env["AWS_ALLOW_HTTP"] == "true"
    assert env["AWS_ACCESS_KEY_ID"] == compose["services"]["s3"]["environment"]["RUSTFS_ACCESS_KEY"]


def test_an_unset_variable_without_a_default_is_refused() -> None:
    assert interpolated("a ${A:-x} ${B-y} ${C:-}") == "a x y "
    with pytest.raises(AssertionError, match=r"\$\{D\} has no default"):
        interpolated("${D}")
