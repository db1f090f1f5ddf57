"""One real platform, reached two ways: the embedded API and ``slipway.Client`` over HTTP.

``shared_platform`` (tests/shared_platform.py) is ``slipway up`` as a real process and its
embedded twin on the same settings.

``platform`` is the parametrized fixture the shared tests take: the test runs once with
the embedded :class:`~slipway.services.Services` and once with a
:class:`~slipway.client.Client` holding an admin's token. Each side has the same
capability attributes (``features``, ``registry``, ``pipelines``, ``endpoints``...) with
the same methods and return types — which is what the tests check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.shared_platform import SharedPlatform


@pytest.fixture(params=["embedded", "remote"])
def platform(request: pytest.FixtureRequest, shared_platform: SharedPlatform) -> Iterator[Any]:
    """The embedded platform or a remote client of it: the same API, tested twice."""
    if request.param == "embedded":
        yield shared_platform.services
        return
    with shared_platform.client() as client:
        yield client


@pytest.fixture
def side(request: pytest.FixtureRequest) -> str:
    """``"embedded"`` or ``"remote"``: a suffix that keeps the two runs' names apart."""
    callspec = getattr(request.node, "callspec", None)
    return str(callspec.params.get("platform", "x")) if callspec else "x"
