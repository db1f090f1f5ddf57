"""Mounting the console on the control plane: its pages at ``/``, its script and stylesheet
at ``/static``. The API keeps ``/api/v1``; the console's routes never shadow it."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from slipway.console.pages import (
    audit,
    endpoints,
    features,
    jobs,
    models,
    monitoring,
    overview,
    pipelines,
    signin,
)
from slipway.console.session import new_secret

# In order; the overview's catch-all (a 404 page for any other path) comes last.
ROUTERS = (
    signin.router,
    features.router,
    models.router,
    pipelines.router,
    endpoints.router,
    monitoring.router,
    jobs.router,
    audit.router,
    overview.router,
)


def install(app: FastAPI) -> None:
    """Add the console to the control plane ``app`` (whose state holds the services)."""
    app.state.console_secret = new_secret()
    static = files("slipway.console").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="console-static")
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
