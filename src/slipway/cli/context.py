"""Opening the platform for a CLI command, and turning Slipway errors into exit codes.

A command reaches the platform one of two ways, with the same output: in process on the
configured backends (the default), or — with ``--url`` / ``SLIPWAY_URL`` and
``--token`` / ``SLIPWAY_TOKEN`` — through :class:`slipway.Client` against a shared control
plane. Commands that administer the machine they run on (``up``, ``gc``, ``status``,
``db``, ``backup``...) take :func:`local_platform`, which refuses a remote target.

Every change a command makes names :func:`cli_actor` (``cli:<user>``) as its actor; the
service audits it in process, and remotely the server audits the token's holder instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from slipway.cli.output import errors
from slipway.core.errors import InvalidInput, NotFound, SlipwayError
from slipway.core.settings import Settings, load_settings
from slipway.core.workspace import DEFAULT_WORKSPACE, validate_workspace
from slipway.security.audit import local_user
from slipway.services import Services


@dataclass
class Target:
    """Where commands send their calls: ``url`` set means a remote control plane."""

    url: str | None = None
    token: str | None = None
    workspace: str | None = None


target = Target()


def cli_actor() -> str:
    """Who a command acts as: ``cli:<the OS user running it>``. The services record it in
    the audit log (and as ``created_by`` where a resource keeps one); a remote server
    ignores it and records the token's holder."""
    return f"cli:{local_user()}"


def use_remote(url: str | None, token: str | None, workspace: str | None = None) -> None:
    """Set by the root command's ``--url`` / ``--token`` / ``--workspace`` (or their
    environment variables)."""
    target.url, target.token, target.workspace = url or None, token or None, workspace or None


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
        workspace = target.workspace or DEFAULT_WORKSPACE
        with local_platform() as services:
            with reported():
                validate_workspace(workspace, field="--workspace")
                if not services.workspaces.exists(workspace):
                    raise NotFound(f"workspace {workspace!r} not found")
            yield services.in_workspace(workspace)
        return
    from slipway.client import Client

    with reported(), Client(target.url, token=target.token, workspace=target.workspace) as client:
        yield client


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
