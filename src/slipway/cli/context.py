"""Opening the platform for a CLI command, and turning Slipway errors into exit codes.

A command reaches the platform one of two ways, with the same output: in process on the
configured backends (the default), or — with ``--url`` / ``SLIPWAY_URL`` and
``--token`` / ``SLIPWAY_TOKEN``, or a ``--profile`` / ``SLIPWAY_PROFILE`` whose settings
name a ``remote`` — through :class:`slipway.Client` against a shared control plane; an
explicit ``--url`` wins over the profile's (whose token then stays unsent). Commands that
administer the machine they run on (``up``, ``gc``, ``status``, ``db``, ``backup``...)
take :func:`local_platform`, which refuses a remote target.

The platform's modules (:mod:`slipway.services`, every capability behind it, and
:mod:`slipway.client`) are imported when a command opens it, never when the CLI loads:
``slipway --help`` and every command pay only for what they use
(tests/cli/test_cli_imports.py).

Every change a command makes names :func:`cli_actor` (``cli:<user>``) as its actor; the
service audits it in process, and remotely the server audits the token's holder instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
import yaml

from slipway.cli.output import errors
from slipway.core.errors import InvalidInput, NotFound, SlipwayError
from slipway.core.settings import Settings, load_settings
from slipway.core.workspace import DEFAULT_WORKSPACE, validate_workspace

if TYPE_CHECKING:
    from slipway.services import Services


@dataclass
class Target:
    """Where commands send their calls: ``url`` set means a remote control plane."""

    url: str | None = None
    token: str | None = None
    workspace: str | None = None
    profile: str | None = None


target = Target()


def cli_actor() -> str:
    """Who a command acts as: ``cli:<the OS user running it>``. The services record it in
    the audit log (and as ``created_by`` where a resource keeps one); a remote server
    ignores it and records the token's holder."""
    # Lazy: the audit module loads SQLAlchemy, which a remote command never needs.
    from slipway.security.audit import local_user

    return f"cli:{local_user()}"


def use_remote(
    url: str | None,
    token: str | None,
    workspace: str | None = None,
    profile: str | None = None,
) -> None:
    """Set by the root command's ``--url`` / ``--token`` / ``--workspace`` /
    ``--profile`` (or their environment variables). A profile is loaded at once, so an
    unknown one (or one whose token cannot be read) stops the command before it starts;
    its remote fills in what the flags left out."""
    target.url, target.token, target.workspace = url or None, token or None, workspace or None
    target.profile = profile or None
    if target.profile is None:
        return
    remote = settings_or_exit().remote
    if remote is None or target.url is not None:
        return
    with reported():
        target.url = remote.url
        target.token = target.token or remote.token(field=f"profiles.{target.profile}.remote")
        target.workspace = target.workspace or remote.workspace


def settings_or_exit(profile: str | None = None) -> Settings:
    """The settings with ``profile``'s overlay (default: the command's ``--profile``),
    or exit 2 saying what is wrong."""
    try:
        return load_settings(profile=profile or target.profile)
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
            yield _in_workspace(services, target.workspace)
        return
    from slipway.client import Client

    with reported(), Client(target.url, token=target.token, workspace=target.workspace) as client:
        yield client


@contextmanager
def profile_platform(profile: str, *, remote_only: bool = False) -> Iterator[Any]:
    """The platform profile ``profile`` names, whatever the command's own target: a
    :class:`slipway.Client` of its remote, else this machine's platform on its settings
    (``remote_only``: exit 2 instead). For commands that reach two platforms at once
    (``slipway models promote --from dev --to prod``)."""
    settings = settings_or_exit(profile)
    remote = settings.remote
    if remote is None:
        if remote_only:
            errors.print(
                f"[red]error:[/red] profile {profile!r} names no remote control plane"
                " (profiles.<name>.remote.url in the settings file)"
            )
            raise typer.Exit(2)
        services = _open(settings)
        try:
            yield _in_workspace(services, target.workspace)
        finally:
            services.close()
        return
    from slipway.client import Client

    with reported():
        token = remote.token(field=f"profiles.{profile}.remote")
        with Client(remote.url, token=token, workspace=remote.workspace) as client:
            yield client


def _in_workspace(services: Services, workspace: str | None) -> Services:
    """``services`` as ``workspace`` (default: the default one) sees it, or exit."""
    workspace = workspace or DEFAULT_WORKSPACE
    with reported():
        validate_workspace(workspace, field="--workspace")
        if not services.workspaces.exists(workspace):
            raise NotFound(f"workspace {workspace!r} not found")
    return services.in_workspace(workspace)


def _open(settings: Settings) -> Services:
    # Lazy, as in local_platform: the whole platform loads only when a command opens it.
    from slipway.services import Services

    with reported():
        return Services.open(settings)


@contextmanager
def local_platform(settings: Settings | None = None) -> Iterator[Services]:
    """The platform on this machine's configured backends, for one command; refuses a
    remote target (the command administers the machine it runs on)."""
    if target.url is not None:
        errors.print(
            "[red]error:[/red] this command works on the machine that runs the platform;"
            " run it there, without --url / SLIPWAY_URL (or a profile with a remote)"
        )
        raise typer.Exit(2)
    settings = settings or settings_or_exit()
    # Lazy: every capability (and SciPy, DuckDB, Delta, MLflow behind them) loads only
    # when a command opens the platform, not for `slipway --help` or a remote command.
    from slipway.services import Services

    with reported():
        services = Services.open(settings)
        try:
            yield services
        finally:
            services.close()
