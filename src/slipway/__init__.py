"""Slipway: a self-hosted machine-learning platform in one install.

The user-facing API, in one place::

    import slipway

    platform = slipway.connect()  # slipway.Client(SLIPWAY_URL) when set, else in process
    platform.features.create_group(slipway.FeatureGroup(...))

    @slipway.step
    def train(data): ...

    @slipway.pipeline()
    def nightly(): ...

Everything else under ``slipway.*`` is the implementation. The names load on first use,
so ``import slipway`` stays light (a notebook's or a CI job's first line should not pay
for pandas, SQLAlchemy and MLflow), and the package root imports no layer below it at
import time (each layer may import ``slipway`` without depending on all the others).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from slipway.core.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SlipwayError,
    Unauthorized,
)
from slipway.core.settings import Settings, load_settings

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    # the platform, in process or remote
    "Client": "slipway.client",
    "connect": "slipway.client",
    "Services": "slipway.services",
    # defining things
    "Feature": "slipway.features.definitions",
    "FeatureGroup": "slipway.features.definitions",
    "RecordIdentifier": "slipway.features.definitions",
    "condition": "slipway.pipelines.dsl",
    "pipeline": "slipway.pipelines.dsl",
    "step": "slipway.pipelines.dsl",
    # what the platform hands back
    "Listing": "slipway.core.resource",
    "Resource": "slipway.core.resource",
}

if TYPE_CHECKING:
    from slipway.client import Client, connect
    from slipway.core.resource import Listing, Resource
    from slipway.features.definitions import Feature, FeatureGroup, RecordIdentifier
    from slipway.pipelines.dsl import condition, pipeline, step
    from slipway.services import Services


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'slipway' has no attribute {name!r}")
    # By name at run time: the package root stays below every layer that imports it.
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "BackendUnavailable",
    "Client",
    "Conflict",
    "Feature",
    "FeatureGroup",
    "Forbidden",
    "InvalidInput",
    "Listing",
    "NotFound",
    "RecordIdentifier",
    "Resource",
    "Services",
    "Settings",
    "SlipwayError",
    "Unauthorized",
    "__version__",
    "condition",
    "connect",
    "load_settings",
    "pipeline",
    "step",
]
