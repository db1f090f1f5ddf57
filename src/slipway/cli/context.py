"""Opening the platform for a CLI command, and turning Slipway errors into exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
import yaml

from slipway.cli.output import errors
from slipway.core.errors import InvalidInput, SlipwayError
from slipway.core.settings import Settings, load_settings
from slipway.services import Services


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SlipwayError as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None


@contextmanager
def reported() -> Iterator[None]:
    """Print a Slipway error as one red line and exit 1 (2 for bad input)."""
    try:
        yield
    except SlipwayError as exc:
        errors.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2 if exc.status_code == 400 else 1) from None


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file holding one mapping (a feature group, a job spec), or exit 2 saying why."""
    with reported():
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"cannot read {path}: {exc}", field="file") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"{path} must hold one mapping", field="file")
        return data


@contextmanager
def platform(settings: Settings | None = None) -> Iterator[Services]:
    """The platform on the configured backends, for the duration of one command."""
    settings = settings or settings_or_exit()
    with reported():
        services = Services.open(settings)
        try:
            yield services
        finally:
            services.close()
