"""Spec sets written by the tests, and an embedded platform to plan and apply them on."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.apply.execute import apply
from slipway.apply.plan import plan
from slipway.apply.resources import Plan
from slipway.apply.specset import load_spec_set
from slipway.core.settings import load_settings
from slipway.services import Services


def write(folder: Path, name: str, text: str) -> Path:
    """``text`` (dedented) as ``folder/name``, folders made."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def applied(specs: Path, services: Services, *, prune: bool = False) -> Plan:
    """Plan and apply ``specs``; the plan that was applied."""
    spec_set = load_spec_set(specs)
    planned = plan(spec_set, services, prune=prune)
    result = apply(planned, spec_set, services, actor="tests")
    assert result.ok, result.error
    return planned


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """An embedded platform of the test's own (SQLite, local files)."""
    opened = Services.open(load_settings(home=tmp_path / "home"))
    yield opened
    opened.close()


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    """An empty spec directory named ``ops`` (the spec set's default name)."""
    folder = tmp_path / "ops"
    folder.mkdir()
    return folder
