"""The tracking URI handed to users (``Services.tracking_uri``, ``GET /api/v1/tracking``):
the server's http URL as the caller reaches it, never the database's, never credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.core.errors import NotFound
from slipway.core.settings import Settings, load_settings
from slipway.tracking.config import public_tracking_uri


def _settings(tmp_path: Path, **tracking: object) -> Settings:
    return load_settings(home=tmp_path / "home", tracking=tracking)


def test_the_configured_server_as_the_caller_reaches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert public_tracking_uri(_settings(tmp_path, port=9001)) == "http://127.0.0.1:9001"
    everywhere = _settings(tmp_path, host="0.0.0.0", port=9001)
    assert public_tracking_uri(everywhere) == "http://127.0.0.1:9001"
    assert public_tracking_uri(everywhere, reached_at="ml.example") == "http://ml.example:9001"
    assert public_tracking_uri(everywhere, reached_at="fd00::1") == "http://[fd00::1]:9001"
    # A server bound to loopback is reachable only there, whatever host the caller used.
    loopback = _settings(tmp_path, port=9001)
    assert public_tracking_uri(loopback, reached_at="ml.example") == "http://127.0.0.1:9001"


def test_an_http_environment_uri_wins_without_its_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://bob:secret@mlflow.example/")
    assert public_tracking_uri(_settings(tmp_path)) == "https://mlflow.example"
    # The metadata database's URI (what in-process code may use) is never handed out.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql+psycopg://u:p@db/slipway")
    assert public_tracking_uri(_settings(tmp_path, port=9002)) == "http://127.0.0.1:9002"


def test_no_tracking_server_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(NotFound, match=r"tracking\.enabled"):
        public_tracking_uri(_settings(tmp_path, enabled=False))
