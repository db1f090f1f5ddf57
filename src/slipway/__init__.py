"""Slipway: a self-hosted machine-learning platform in one install."""

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

if TYPE_CHECKING:
    from slipway.client import Client, connect


def __getattr__(name: str) -> Any:
    """``Client`` and ``connect`` on first use: ``import slipway`` stays light (the client
    brings httpx and the feature store's types)."""
    if name in ("Client", "connect"):
        # By name at run time: the package root stays below every layer that imports it
        # (an import statement here would make each of them depend on the client).
        return getattr(importlib.import_module("slipway.client"), name)
    raise AttributeError(f"module 'slipway' has no attribute {name!r}")


__all__ = [
    "BackendUnavailable",
    "Client",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Settings",
    "SlipwayError",
    "Unauthorized",
    "__version__",
    "connect",
    "load_settings",
]
