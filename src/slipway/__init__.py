"""Slipway: a self-hosted machine-learning platform in one install."""

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

__all__ = [
    "BackendUnavailable",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Settings",
    "SlipwayError",
    "Unauthorized",
    "__version__",
    "load_settings",
]
