"""Naming user code: a ``module:qualname`` target, resolved to the function it names.

Pipeline steps, training entry points and tuning objectives are all referred to this
way (stored as text in specs, resolved in the child process that runs them), so the one
resolver lives here, below every capability that runs user code.
"""

from __future__ import annotations

import importlib
from typing import Any

# Modules that moved, by their old name: targets are stored (pipeline definitions, job
# specs), so a definition written before a move must still run after it.
MOVED = {
    "slipway.pipelines.steps": "slipway.steps",
    "slipway.explain.steps": "slipway.steps",
}


def resolve_target(target: str) -> Any:
    """The function a ``module:qualname`` target names (a step's undecorated function)."""
    module_name, _, qualname = target.partition(":")
    module_name = MOVED.get(module_name, module_name)
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)
