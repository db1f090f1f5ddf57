"""Turning a pipeline function into the definition the platform stores.

This runs next to the code — in the SDK, the CLI or a notebook — never in the control
plane: it imports the pipeline's module, traces the function into its graph, digests
each step's source (so a changed step misses the cache) and notes the ``sys.path``
folders the code was imported from (so workers can import it too). The result is plain
data (:class:`~slipway.pipelines.resources.PipelineDefinition`), which the embedded
service stores as is and the remote client sends to ``PUT /pipelines/{name}``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from pathlib import Path

from slipway.core.errors import InvalidInput
from slipway.core.specs import parse_spec
from slipway.pipelines.dsl import PipelineFunction
from slipway.pipelines.resources import PipelineDefinition
from slipway.runtime.targets import resolve_target


def _code_path(module_name: str) -> str | None:
    """The sys.path entry a module was imported from (so workers can import it too)."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve().parent
    for _ in range(module_name.count(".")):
        path = path.parent
    if Path(file).name == "__init__.py":
        path = path.parent
    return str(path)


def load_pipeline(target: str) -> PipelineFunction:
    """The :class:`PipelineFunction` a ``module:attribute`` target names."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot import pipeline {target!r}: {exc}", field="target") from None
    if not isinstance(obj, PipelineFunction):
        raise InvalidInput(f"{target!r} is not a @pipeline function", field="target")
    return obj


def define(pipeline: PipelineFunction | str) -> PipelineDefinition:
    """The definition of ``pipeline`` (or of the ``module:attribute`` it names)."""
    if isinstance(pipeline, str):
        pipeline = load_pipeline(pipeline)
    graph = pipeline.graph()
    paths = {_code_path(pipeline.fn.__module__)}
    for node in graph["steps"].values():
        fn = resolve_target(node["function"])
        node["code_digest"] = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
        paths.add(_code_path(node["function"].partition(":")[0]))
    graph["code_paths"] = sorted(p for p in paths if p)
    return parse_spec(
        PipelineDefinition, {"name": pipeline.name, "target": pipeline.target, "graph": graph}
    )
