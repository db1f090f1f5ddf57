"""The model dashboard's rows (placeholder until filled)."""

from __future__ import annotations

from typing import Any

from slipway.services import Services


def dashboard(services: Services) -> dict[str, Any]:
    return {}
