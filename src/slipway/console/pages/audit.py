"""The console's audit pages."""

from __future__ import annotations

from fastapi import APIRouter

from slipway.console.routing import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)
