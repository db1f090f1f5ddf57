"""The one resource-name validator."""

from __future__ import annotations

import pytest

from slipway.core.errors import InvalidInput
from slipway.core.names import is_valid_name, validate_name


@pytest.mark.parametrize("name", ["a", "flight-delay", "weather_v2", "a" * 63, "x1-2_3"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "1abc", "-a", "_a", "a" * 64, "a b", "a.b", "a/b", "ä", "a\x00", "../a", 7, None],
)
def test_invalid_names_raise_naming_the_field(name: object) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_name(name, field="endpoint")
    assert info.value.field == "endpoint"
    assert "endpoint" in info.value.message
    assert not is_valid_name(name)
