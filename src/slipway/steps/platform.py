"""The platform, as seen from inside a built-in step.

A step runs in a process of its own on a worker, which hands it its settings through the
environment (``SLIPWAY_*``, the same as its own); the built-in steps open the platform
with them through :meth:`Services.open <slipway.services.Services.open>`, the one place it
is assembled, without migrating (the worker that runs the step already has).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from slipway.core.settings import load_settings
from slipway.core.workspace import DEFAULT_WORKSPACE, WORKSPACE_ENV, validate_workspace
from slipway.services import Services


@contextmanager
def platform() -> Iterator[Services]:
    """The assembled platform for the length of a step's call, closed after it: the
    workspace the step's execution belongs to (``SLIPWAY_WORKSPACE``, which the worker
    sets), so a step reads and registers that workspace's features, models and
    endpoints and no other's."""
    services = Services.open(load_settings(), migrate=False)
    workspace = validate_workspace(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE)
    try:
        yield services.in_workspace(workspace)
    finally:
        services.close()
