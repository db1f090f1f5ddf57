"""The ``slipway`` command: one group per area, every command with ``--help``."""

from __future__ import annotations

import typer

from slipway import __version__
from slipway.cli import (
    alerts,
    batch,
    config,
    db,
    endpoints,
    feature_views,
    features,
    jobs,
    models,
    monitors,
    pipelines,
    tokens,
    workspaces,
)
from slipway.cli.apply import apply, export, init, plan
from slipway.cli.audit import audit
from slipway.cli.backup import backup, restore
from slipway.cli.context import use_remote
from slipway.cli.demo import demo
from slipway.cli.doctor import doctor
from slipway.cli.gc import gc
from slipway.cli.status import status
from slipway.cli.up import mlflow, scheduler, serve, server, up, worker

app = typer.Typer(
    name="slipway",
    help="Slipway: a self-hosted machine-learning platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _target(
    url: str | None = typer.Option(
        None,
        "--url",
        envvar="SLIPWAY_URL",
        help="a remote control plane (http(s)://host:port); default: this machine's platform",
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="SLIPWAY_TOKEN", help="API token for --url", show_default=False
    ),
    workspace: str | None = typer.Option(
        None,
        "--workspace",
        "-w",
        envvar="SLIPWAY_WORKSPACE",
        help="the workspace commands act in; default: the default workspace",
        show_default=False,
    ),
    profile: str | None = typer.Option(
        None,
        "--profile",
        envvar="SLIPWAY_PROFILE",
        help="a profile of slipway.yaml (dev, prod ...): its settings, and its remote"
        " control plane unless --url is given",
        show_default=False,
    ),
) -> None:
    """Slipway: a self-hosted machine-learning platform."""
    use_remote(url, token, workspace, profile)


app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(tokens.app, name="tokens")
app.add_typer(workspaces.app, name="workspaces")
app.add_typer(features.app, name="features")
app.add_typer(feature_views.app, name="feature-views")
app.add_typer(models.app, name="models")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(jobs.jobs, name="jobs")
app.add_typer(jobs.tuning, name="tuning")
app.add_typer(jobs.schedules, name="schedules")
app.add_typer(jobs.triggers, name="triggers")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(batch.app, name="batch")
app.add_typer(monitors.app, name="monitors")
app.add_typer(alerts.app, name="alerts")
app.command()(up)
app.command()(server)
app.command()(worker)
app.command()(serve)
app.command()(scheduler)
app.command()(mlflow)
app.command()(doctor)
app.command()(audit)
app.command()(demo)
app.command()(gc)
app.command()(status)
app.command()(backup)
app.command()(restore)
app.command()(plan)
app.command()(apply)
app.command()(export)
app.command()(init)


@app.command()
def version() -> None:
    """Print Slipway's version."""
    typer.echo(__version__)
