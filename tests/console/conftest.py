"""The console on an embedded control plane (TestClient): auth off (loopback, local admin)
and auth on (signed in with a token's cookie)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.settings import load_settings
from slipway.services import Services

_CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def open_services(tmp_path: Path, *, auth: bool) -> Services:
    settings = load_settings(
        home=tmp_path / "home", server={"auth": auth}, data={"allowed_roots": [str(tmp_path)]}
    )
    return Services.open(settings)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = open_services(tmp_path, auth=False)
    yield opened
    opened.close()


@pytest.fixture
def console(services: Services) -> Iterator[TestClient]:
    """A browser on the console with auth off."""
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def auth_services(tmp_path: Path) -> Iterator[Services]:
    opened = open_services(tmp_path / "auth", auth=True)
    yield opened
    opened.close()


@pytest.fixture
def auth_console(auth_services: Services) -> Iterator[TestClient]:
    """A browser on a console with auth on, not signed in."""
    with TestClient(create_app(auth_services), raise_server_exceptions=False) as client:
        yield client


def csrf_of(client: TestClient, path: str = "/") -> str:
    """The CSRF token a page of ``path`` gives this browser (and its seed cookie)."""
    page = client.get(path)
    found = _CSRF.search(page.text)
    assert found, f"no CSRF token on {path}: {page.status_code} {page.text[:200]}"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> None:
    """Sign ``client`` in with ``token`` as a person would, through the sign-in form."""
    csrf = csrf_of(client, "/sign-in")
    answer = client.post(
        "/sign-in", data={"token": token, "csrf_token": csrf, "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def act(client: TestClient, path: str, **fields: str) -> object:
    """Send a console action as its script does (JSON answer), with the page's CSRF token."""
    csrf = csrf_of(client, fields.pop("_page", "/"))
    return client.post(
        path, data={"csrf_token": csrf, **fields}, headers={"accept": "application/json"}
    )
