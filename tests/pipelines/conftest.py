"""A platform on an embedded workspace with short leases, for the pipeline tests (modules
that need another database or settings define their own ``services``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.core.settings import load_settings
from slipway.services import Services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        home=tmp_path / "home", workers={"lease_seconds": 5, "poll_seconds": 0.05}
    )
    opened = Services.open(settings)
    yield opened
    opened.close()
