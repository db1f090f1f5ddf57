"""A control plane with auth on, on an embedded SQLite workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.settings import load_settings
from slipway.services import Services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    # Requests may name files in the test's folder (not only the artifact root).
    settings = load_settings(
        home=tmp_path / "home", server={"auth": True}, data={"allowed_roots": [str(tmp_path)]}
    )
    opened = Services.open(settings)
    yield opened
    opened.close()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def tokens(services: Services) -> dict[str, str]:
    """One secret per role, plus a revoked admin token."""
    made = {
        role: services.tokens.create(f"t-{role}", role, created_by="test")[1]
        for role in ("viewer", "editor", "admin")
    }
    revoked_token, made["revoked"] = services.tokens.create("t-gone", "admin", created_by="t")
    services.tokens.revoke(revoked_token.id)
    return made


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
