"""Settings profiles (dev / stage / prod) and ``slipway models promote`` from the command
line: a profile's overlay and its remote control plane, how one is selected, what is
refused (unknown or badly named profiles, tokens written in clear or readable by
others), and a version promoted between the shared platform and a second one.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from slipway.cli.main import app
from slipway.core.errors import InvalidInput
from slipway.core.settings import load_settings
from tests.client.models import registered
from tests.registry.second_platform import Platform
from tests.shared_platform import SharedPlatform

runner = CliRunner()


def _config(tmp_path: Path, profiles: dict[str, Any], **top: Any) -> dict[str, str]:
    """A settings file with ``profiles``, and the environment commands run in."""
    path = tmp_path / "slipway.yaml"
    path.write_text(yaml.safe_dump({**top, "profiles": profiles}))
    return {
        "SLIPWAY_CONFIG": str(path),
        "SLIPWAY_HOME": str(tmp_path / "home"),
        "SLIPWAY_URL": "",
        "SLIPWAY_TOKEN": "",
        "SLIPWAY_PROFILE": "",
        "COLUMNS": "250",
    }


def _run(args: list[str], env: dict[str, str], code: int = 0) -> Result:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == code, result.output
    return result


def _shown(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(_run([*args, "config", "show", "-o", "json"], env).stdout)
    return shown


def test_a_profiles_overlay_is_merged_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _config(
        tmp_path,
        {
            "dev": {"registry": {"sandbox_environments": ["dev"]}, "serving": {"workers": 3}},
            "prod": {"registry": {"promotion_status": "Approved"}},
        },
        serving={"workers": 2, "max_workers": 4},
        registry={"sandbox_environments": ["staging"]},
    )
    plain = _shown([], env)
    assert plain["serving"]["workers"] == 2 and plain["profile"] is None
    dev = _shown(["--profile", "dev"], env)
    assert dev["profile"] == "dev"
    assert dev["registry"]["sandbox_environments"] == ["dev"]
    assert dev["serving"] == plain["serving"] | {"workers": 3}  # merged, not replaced
    assert dev["registry"]["promotion_status"] == "PendingManualApproval"
    # SLIPWAY_PROFILE selects one too; --profile wins over it.
    assert _shown([], env | {"SLIPWAY_PROFILE": "prod"})["registry"]["promotion_status"] == (
        "Approved"
    )
    assert _shown(["--profile", "dev"], env | {"SLIPWAY_PROFILE": "prod"})["profile"] == "dev"
    # The environment still wins over a profile, as over the file.
    overridden = _shown(["--profile", "dev"], env | {"SLIPWAY_SERVING__WORKERS": "5"})
    assert overridden["serving"]["workers"] == 5
    # In Python: the same, and processes Slipway starts inherit the profile.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(profile="dev")
    assert settings.serving.workers == 3 and settings.as_env()["SLIPWAY_PROFILE"] == "dev"
    assert load_settings().profile is None and "SLIPWAY_PROFILE" not in load_settings().as_env()


def test_unknown_and_badly_named_profiles_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _config(tmp_path, {"dev": {}, "prod": {}})
    result = _run(["--profile", "qa", "models", "list"], env, code=2)
    assert "unknown profile 'qa'" in result.output and "dev, prod" in result.output
    result = _run(["models", "list"], env | {"SLIPWAY_PROFILE": "qa"}, code=2)
    assert "unknown profile 'qa'" in result.output
    result = _run(["--profile", "Prod!", "models", "list"], env, code=2)
    assert "profile 'Prod!' is not a valid name" in result.output

    bad = _config(tmp_path, {"Prod": {}})
    result = _run(["models", "list"], bad, code=2)
    assert "profiles" in result.output and "'Prod' is not a valid name" in result.output
    for key, value in bad.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(InvalidInput) as info:
        load_settings()
    assert info.value.field == "profiles"

    typo = _config(tmp_path, {"dev": {"regsitry": {"promotion_status": "Approved"}}})
    result = _run(["models", "list"], typo, code=2)
    assert "'regsitry', which is not a settings area" in result.output
    wrong = _config(tmp_path, {"dev": {"registry": {"promotion_status": "Yes"}}})
    result = _run(["--profile", "dev", "models", "list"], wrong, code=2)
    assert "registry.promotion_status" in result.output
    # Without a settings file no profile exists.
    missing = _config(tmp_path, {}) | {"SLIPWAY_CONFIG": str(tmp_path / "none.yaml")}
    result = _run(["--profile", "dev", "models", "list"], missing, code=2)
    assert "unknown profile 'dev'" in result.output


def test_tokens_are_never_in_clear(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    clear = _config(tmp_path, {"prod": {"remote": {"url": url, "token": "s3cret"}}})
    result = _run(["models", "list"], clear, code=2)
    assert "never written in the settings file" in result.output and "s3cret" not in result.output

    unset = _config(tmp_path, {"prod": {"remote": {"url": url, "token_env": "PROD_TOKEN"}}})
    result = _run(["--profile", "prod", "models", "list"], unset | {"PROD_TOKEN": ""}, code=2)
    assert "PROD_TOKEN" in result.output and "not set" in result.output

    token = tmp_path / "prod.token"
    token.write_text("s3cret\n")
    token.chmod(0o644)
    readable = _config(tmp_path, {"prod": {"remote": {"url": url, "token_file": str(token)}}})
    result = _run(["--profile", "prod", "models", "list"], readable, code=2)
    assert "chmod 600" in result.output and "s3cret" not in result.output
    absent = _config(
        tmp_path, {"prod": {"remote": {"url": url, "token_file": str(tmp_path / "no")}}}
    )
    assert "cannot read" in _run(["--profile", "prod", "models", "list"], absent, code=2).output
    both = _config(
        tmp_path,
        {"prod": {"remote": {"url": url, "token_env": "T", "token_file": str(token)}}},
    )
    assert "not both" in _run(["models", "list"], both, code=2).output
    creds = _config(tmp_path, {"prod": {"remote": {"url": "http://u:p@127.0.0.1:9"}}})
    assert "no credentials" in _run(["models", "list"], creds, code=2).output


@pytest.fixture
def profiles(
    tmp_path: Path, shared_platform: SharedPlatform, prod_platform: Platform
) -> dict[str, str]:
    """dev: the shared platform (token in a variable); prod: the second one (token in a
    file only its owner reads); local: this machine, no remote."""
    token = tmp_path / "prod.token"
    token.write_text(prod_platform.tokens["admin"] + "\n")
    token.chmod(0o600)
    return _config(
        tmp_path,
        {
            "dev": {"remote": {"url": shared_platform.url, "token_env": "DEV_TOKEN"}},
            "prod": {"remote": {"url": prod_platform.url, "token_file": str(token)}},
            "broken": {"remote": {"url": "http://127.0.0.1:9", "token_env": "DEV_TOKEN"}},
            "local": {"serving": {"workers": 1}},
        },
    ) | {"DEV_TOKEN": shared_platform.token}


def test_a_remote_profile_is_where_commands_go(
    shared_platform: SharedPlatform, profiles: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"prof_{uuid.uuid4().hex[:8]}"
    registered(shared_platform, monkeypatch, name)
    assert name in _run(["--profile", "dev", "models", "list"], profiles).stdout
    # An explicit --url wins over the profile's remote (and its token stays unsent).
    explicit = ["--url", shared_platform.url, "--token", shared_platform.token]
    result = _run(["--profile", "broken", *explicit, "models", "list"], profiles)
    assert name in result.stdout
    # Commands that administer this machine refuse a remote profile as they refuse --url.
    assert "without --url" in _run(["--profile", "dev", "gc"], profiles, code=2).output


def test_promote_between_profiles(
    shared_platform: SharedPlatform,
    prod_platform: Platform,
    profiles: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"cli_{uuid.uuid4().hex[:8]}"
    version = registered(shared_platform, monkeypatch, name)
    digest = shared_platform.services.registry.get(name, version).digest
    args = ["models", "promote", name, str(version), "--to", "prod"]
    out = _run(["--profile", "dev", *args], profiles).stdout
    assert f"promoted {name} version {version} to {prod_platform.url} (prod)" in out
    assert "(PendingManualApproval)" in out and digest[:12] in out
    again = _run([*args, "--from", "dev"], profiles).stdout
    assert "before" in again and "nothing changed" in again
    answer = json.loads(_run([*args, "--from", "dev", "-o", "json"], profiles).stdout)
    assert answer["created"] is False and answer["version"]["digest"] == digest
    with prod_platform.client() as prod:
        arrived = prod.registry.versions(name)
    assert [v.digest for v in arrived] == [digest]
    assert arrived[0].lineage["promoted_from"]["platform"] == shared_platform.url

    assert "names no remote" in _run([*args[:-1], "local", "--from", "dev"], profiles, 2).output
    assert "unknown profile 'qa'" in _run([*args[:-1], "qa", "--from", "dev"], profiles, 2).output
    same = _run(["--profile", "dev", *args[:-1], "dev"], profiles, code=2).output
    assert "is the platform the version comes from" in same
    missing = ["models", "promote", name, "99", "--to", "prod", "--from", "dev"]
    assert f"model {name!r} has no version 99" in _run(missing, profiles, code=1).output
