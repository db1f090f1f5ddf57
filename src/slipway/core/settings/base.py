"""What every settings area shares: the base model that refuses unknown keys and
checks assignments, and how a list setting is read from the environment."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict


class Area(BaseModel):
    """One area of :class:`~slipway.core.settings.Settings` (``database``, ``server`` ...)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def comma_list(value: Any) -> Any:
    """A list setting from the environment's comma-separated text (or a JSON array)."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part for part in (p.strip() for p in value.split(",")) if part]
    return value
