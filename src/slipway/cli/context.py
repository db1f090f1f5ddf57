"""Opening the platform for a CLI command, and turning Slipway errors into exit codes.

A command reaches the platform one of two ways, with the same output: in process on the
configured backends (the default), or — with ``--url`` / ``SLIPWAY_URL`` and
``--token`` / ``SLIPWAY_TOKEN`` — through :class:`slipway.Client` against a shared control
plane. Commands that administer the machine they run on (``up``, ``gc``, ``status``,
``db``, ``backup``...) take :func:`local_platform`, which refuses a remote target.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from slipway.cli.output import errors
from slipway.core.errors import InvalidInput, SlipwayError
from slipway.core.settings import Settings, load_settings
from slipway.services import Services


@dataclass
class Target:
    """Where commands send their calls: ``url`` set means a remote control plane."""

    url: str | None = None
    token: str | None = None


target = Target()


def use_remote(url: str | None, token: str | None) -> None:
    """Set by the root command's ``--url`` / ``--token`` (or their environment variables)."""
    target.url, target.token = url or None, token or None


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
def platform() -> Iterator[Any]:
    """The platform for one command: a :class:`slipway.Client` of the remote control plane
    when a URL is set, else the platform on the configured backends. Both have the same
    capability attributes, methods and return types (tests/cli/test_remote_cli.py)."""
    if target.url is None:
        with local_platform() as services:
            yield services
        return
    from slipway.client import Client

    with reported(), Client(target.url, token=target.token) as client:
        yield client


def record_action(platform: Any, action: str, resource: str, **details: Any) -> None:
    """Audit an administrative action the CLI made in process, as the control plane audits
    each mutation a caller makes over HTTP. Remotely there is nothing to do here: the
    server has already recorded the call, with the token's holder as its actor."""
    if target.url is not None:
        return
    platform.audit.record(
        actor=f"cli:{getpass.getuser()}",
        action=action,
        resource=resource,
        outcome="success",
        details=details,
    )


@contextmanager
def local_platform(settings: Settings | None = None) -> Iterator[Services]:
    """The platform on this machine's configured backends, for one command; refuses a
    remote target (the command administers the machine it runs on)."""
    if target.url is not None:
        errors.print(
            "[red]error:[/red] this command works on the machine that runs the platform;"
            " run it there, without --url / SLIPWAY_URL"
        )
        raise typer.Exit(2)
    settings = settings or settings_or_exit()
    with reported():
        services = Services.open(settings)
        try:
            yield services
        finally:
            services.close()
