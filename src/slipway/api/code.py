"""Code a remote caller makes the workers run, confined (no editor-as-shell).

A training job, a tuning job or a pipeline names code — a ``source_dir``, ``code_paths``,
an entry point (``module``, ``function``, ``trial``, each step's ``function``) — that the
workers import with the platform's permissions. From a REST caller every such reference
must be one of:

- a code bundle the caller uploaded (``bundle:sha256:...``, :mod:`slipway.runtime.bundles`):
  what runs is what was uploaded, and its digest is in the job's spec;
- a host folder under ``code.allowed_roots``, which the admin declared;
- for an entry point, a module the job's own code provides (the top-level names of its
  bundles and folders) or one under ``code.allowed_modules`` (the built-in steps, packages
  the admin installed on the workers) — never ``os:system``.

A training job's ``channels`` are data the job reads, so they are confined to the data
roots like a batch job's files. Routes call one function here before the service runs:
a refusal is a 400 naming the field, and nothing is written. In-process callers (the
SDK, the CLI without ``--url``) are the machine's own users and are not confined.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from slipway.api.paths import confine_path
from slipway.core.artifacts import ArtifactStore
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.roots import RootSetting, confine
from slipway.core.settings import Settings
from slipway.core.workspace import DEFAULT_WORKSPACE
from slipway.features.views.spec import FeatureViewSpec
from slipway.pipelines.resources import PipelineDefinition
from slipway.runtime import bundles
from slipway.training.spec import TrainingJobSpec
from slipway.tuning.spec import TuningJobSpec

CODE_ROOTS = RootSetting("code roots", "code.allowed_roots", "SLIPWAY_CODE__ALLOWED_ROOTS")


def _names(settings: Settings, entry: str, field: str) -> list[str]:
    """The importable top-level names one ``source_dir`` / ``code_paths`` entry provides,
    after checking that it is a stored bundle or a folder under the code roots."""
    if bundles.is_bundle(entry):
        try:
            found = bundles.describe(ArtifactStore(settings.artifact_root), entry, field=field)
        except NotFound:
            raise InvalidInput(
                f"{field}: no code bundle {entry} on this server; upload it first"
                " (POST /api/v1/code-bundles)",
                field=field,
            ) from None
        return found.top_level
    confine(entry, settings.code.allowed_roots, field=field, setting=CODE_ROOTS)
    try:
        listed = os.listdir(entry)
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read {entry!r}: {exc.strerror}", field=field) from None
    return sorted(
        {name.removesuffix(".py") for name in listed if name.removesuffix(".py").isidentifier()}
    )


def _entry_point(settings: Settings, provided: Sequence[str], target: str, field: str) -> None:
    """``target`` must come from the job's own code or from an allowed module."""
    module = target.partition(":")[0]
    if bundles.provides(provided, target):
        return
    if any(module == m or module.startswith(f"{m}.") for m in settings.code.allowed_modules):
        return
    shipped = ", ".join(provided) or "nothing"
    allowed = ", ".join(settings.code.allowed_modules) or "none"
    raise InvalidInput(
        f"{field}: {target!r} is neither in the job's own code (which provides {shipped})"
        f" nor under the modules this server allows ({allowed}); ship it in a code bundle,"
        " or an admin can add its package to the setting code.allowed_modules"
        " (SLIPWAY_CODE__ALLOWED_MODULES)",
        field=field,
        details={"allowed_modules": list(settings.code.allowed_modules)},
    )


def _provided(settings: Settings, entries: Sequence[str], field: str) -> list[str]:
    names: set[str] = set()
    for i, entry in enumerate(entries):
        names.update(_names(settings, entry, f"{field}[{i}]"))
    return sorted(names)


def confine_training_job(
    settings: Settings, spec: TrainingJobSpec, workspace: str = DEFAULT_WORKSPACE
) -> None:
    """A training job's code (``source_dir``, ``module``/``function``) and channels (in
    ``workspace``'s share of the artifact root, when they lie in it)."""
    provided = _names(settings, spec.source_dir, "source_dir") if spec.source_dir else []
    if spec.module:
        _entry_point(settings, provided, spec.module, "module")
    if spec.function:
        _entry_point(settings, provided, spec.function, "function")
    for channel, path in spec.channels.items():
        confine_path(settings, path, workspace, field=f"channels.{channel}")


def confine_tuning_job(settings: Settings, spec: TuningJobSpec) -> None:
    """A tuning job's ``code_paths`` and its ``trial`` function."""
    provided = _provided(settings, spec.code_paths, "code_paths")
    _entry_point(settings, provided, spec.trial, "trial")


def confine_pipeline(settings: Settings, definition: PipelineDefinition) -> None:
    """A pipeline's ``code_paths`` and the function of each of its steps."""
    graph = definition.graph
    provided = _provided(settings, graph.code_paths, "graph.code_paths")
    for step, node in graph.steps.items():
        _entry_point(settings, provided, node.function, f"graph.steps.{step}.function")


def confine_feature_view(settings: Settings, spec: FeatureViewSpec) -> None:
    """A feature view's Python transformations: each function from a module the server
    allows (a view ships no code of its own, and its functions run in the gateway)."""
    for index, transformation in enumerate(spec.transformations):
        if transformation.python is not None:
            _entry_point(settings, [], transformation.python, f"transformations.{index}.python")
