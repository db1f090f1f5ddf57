"""The built-in steps live in slipway.steps; pipelines stored under their old module names
(before the steps moved above the capabilities) still resolve to the same functions."""

from __future__ import annotations

import pytest

import slipway.steps
from slipway.runtime.targets import resolve_target


@pytest.mark.parametrize(
    ("stored", "name"),
    [
        ("slipway.pipelines.steps:evaluate", "evaluate"),
        ("slipway.pipelines.steps:register_model", "register_model"),
        ("slipway.pipelines.steps:training_job", "training_job"),
        ("slipway.pipelines.steps:labelled_traffic", "labelled_traffic"),
        ("slipway.explain.steps:explain_global", "explain_global"),
    ],
)
def test_an_old_stored_reference_resolves_to_the_moved_step(stored: str, name: str) -> None:
    assert resolve_target(stored) is getattr(slipway.steps, name).fn


def test_a_step_records_its_new_home() -> None:
    assert slipway.steps.evaluate.fn.__module__ == "slipway.steps.evaluation"
    assert resolve_target("slipway.steps.evaluation:evaluate") is slipway.steps.evaluate.fn


def test_an_unknown_module_is_still_an_import_error() -> None:
    with pytest.raises(ImportError):
        resolve_target("slipway.pipelines.nowhere:evaluate")
