"""``slipway``'s public names: each one resolves to the object its module defines, and
``import slipway`` alone loads none of the heavy layers (a notebook's first line)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import slipway


@pytest.mark.parametrize("name", slipway.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(slipway, name)
    module = slipway._LAZY.get(name)
    if module is not None:
        assert value is getattr(importlib.import_module(module), name)
    assert name in dir(slipway)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = slipway.nothing  # type: ignore[attr-defined]


def test_importing_slipway_loads_no_heavy_layer() -> None:
    probe = (
        "import sys, slipway; "
        "heavy = [m for m in ('pandas', 'sqlalchemy', 'mlflow', 'pyarrow', 'httpx',"
        " 'slipway.services', 'slipway.client') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_the_dsl_and_definitions_are_reachable_from_the_root() -> None:
    group = slipway.FeatureGroup(
        name="trips",
        record_identifiers=[slipway.RecordIdentifier(name="trip_id")],
        event_time="at",
        features=[slipway.Feature(name="km", type="float")],
    )
    assert group.features[0].name == "km"

    @slipway.step
    def double(x: int) -> int:
        return 2 * x

    assert double.fn(2) == 4
