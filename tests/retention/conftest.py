"""A platform on each database engine, and a garbage collector over it with chosen ages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.core.settings import RetentionSettings, load_settings
from slipway.retention import GarbageCollector
from slipway.services import Services


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(home=tmp_path / "home", database={"url": database_url})
    opened = Services.open(settings)
    yield opened
    opened.close()


def collector_for(services: Services, **ages: Any) -> GarbageCollector:
    """A collector over ``services`` with every age unset except ``ages``."""
    unset = {name: None for name in RetentionSettings.model_fields if name != "batch_size"}
    return GarbageCollector(
        retention=RetentionSettings(**(unset | ages)),
        db=services.db,
        artifacts=services.artifacts,
        artifact_root=services.settings.artifact_root,
        offline=services.features.offline,
        mlflow=services.registry.mlflow,
    )


@pytest.fixture
def collector(services: Services) -> Callable[..., GarbageCollector]:
    return lambda **ages: collector_for(services, **ages)
