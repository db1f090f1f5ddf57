"""``slipway jobs``, ``slipway tuning``, ``slipway schedules``, ``slipway triggers``.

The trigger resource loads inside the command that uses it (its module brings the event
log and SQLAlchemy): ``slipway --help`` loads none of it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer

from slipway.cli.context import cli_actor, load_yaml_mapping, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, print_json
from slipway.core.errors import InvalidInput
from slipway.pipelines.resources import Schedule
from slipway.training.resources import TrainingJob
from slipway.training.spec import TERMINAL
from slipway.tuning.resources import Trial

jobs = typer.Typer(help="Training jobs (SageMaker script mode).", no_args_is_help=True)
tuning = typer.Typer(help="Hyperparameter tuning jobs on Optuna.", no_args_is_help=True)
schedules = typer.Typer(help="Cron schedules that start pipelines.", no_args_is_help=True)
triggers = typer.Typer(help="Event triggers that start pipelines.", no_args_is_help=True)


def _pairs(values: list[str], field: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            with reported():
                raise InvalidInput(f"{value!r} must look like key=value", field=field)
        out[key] = rest
    return out


@jobs.command("submit")
def submit_job(
    file: Path = typer.Option(..., "--file", "-f"), wait: bool = typer.Option(False, "--wait")
) -> None:
    """Submit a training job from a YAML spec."""
    spec = load_yaml_mapping(file)
    if spec.get("source_dir"):
        spec["source_dir"] = str((file.parent / spec["source_dir"]).resolve())
    with platform() as services:
        submitted = services.training.submit(spec, actor=cli_actor())
        console.print(f"submitted training job [bold]{submitted.name}[/bold]")
        if wait:
            position = 0
            while True:
                job = services.training.get(submitted.name)
                for log in services.training.logs(submitted.name, position):
                    position = log.id
                    typer.echo(log.text, nl=False)
                if job.state in TERMINAL:
                    console.print(f"{job.name}: {job.state} {job.error or ''}")
                    if job.state != "Succeeded":
                        raise typer.Exit(1)
                    return
                time.sleep(0.5)


@jobs.command("list")
def list_jobs(output: OutputOption = Format.TABLE) -> None:
    """Training jobs, newest first."""
    with platform() as services:
        found = services.training.jobs()
    emit([j.model_dump(mode="json") for j in found], TrainingJob.table_columns(), output)


@jobs.command("logs")
def job_logs(name: str) -> None:
    """A job's captured output."""
    with platform() as services:
        for log in services.training.logs(name):
            typer.echo(log.text, nl=False)


@jobs.command("stop")
def stop_job(name: str) -> None:
    """Stop a job (its process is killed)."""
    with platform() as services:
        services.training.stop(name, actor=cli_actor())
    console.print(f"stopping {name}")


@tuning.command("submit")
def submit_tuning(file: Path = typer.Option(..., "--file", "-f")) -> None:
    """Submit a tuning job from a YAML spec."""
    spec = load_yaml_mapping(file)
    spec.setdefault("code_paths", [os.getcwd()])
    with platform() as services:
        submitted = services.tuning.submit(spec, actor=cli_actor())
    console.print(f"submitted tuning job [bold]{submitted.name}[/bold]")


@tuning.command("list")
def list_tuning(output: OutputOption = Format.TABLE) -> None:
    """Tuning jobs with their best trial."""
    with platform() as services:
        found = services.tuning.jobs()
    rows = [j.model_dump(mode="json") for j in found]
    if output is Format.TABLE:
        for row in rows:
            best = row.pop("best") or {}
            row["best_value"], row["best_params"] = best.get("value"), best.get("params")
    emit(rows, ["name", "state", "best_value", "best_params", "created_at"], output)


@tuning.command("describe")
def describe_tuning(name: str, output: OutputOption = Format.TABLE) -> None:
    """A tuning job's trials."""
    with platform() as services:
        job = services.tuning.get(name)
        trials = services.tuning.trials(name)
    if output is Format.JSON:
        print_json(
            job.model_dump(mode="json") | {"trials": [t.model_dump(mode="json") for t in trials]}
        )
        return
    best = job.best.model_dump(mode="json") if job.best else None
    console.print(f"[bold]{name}[/bold] {job.state}; best {best}")
    emit([t.model_dump(mode="json") for t in trials], Trial.table_columns(), Format.TABLE)


@tuning.command("stop")
def stop_tuning(name: str) -> None:
    with platform() as services:
        services.tuning.stop(name, actor=cli_actor())
    console.print(f"stopping {name}")


@schedules.command("create")
def create_schedule(
    name: str,
    pipeline: str = typer.Option(..., "--pipeline"),
    cron: str = typer.Option(..., "--cron", help="e.g. '0 2 * * *'"),
    timezone: str = typer.Option("UTC", "--timezone"),
    param: list[str] = typer.Option([], "--param", "-p"),
    catchup: str = typer.Option("latest", help="none, latest or all"),
) -> None:
    """Start PIPELINE on a cron schedule."""
    with platform() as services:
        created = services.schedules.create(
            name,
            pipeline,
            cron,
            timezone=timezone,
            parameters=_pairs(param, "param"),
            catchup=catchup,  # checked by Schedules.create
            actor=cli_actor(),
        )
    console.print(f"schedule {created.name}: next at {created.next_fire_at.isoformat()}")


@schedules.command("list")
def list_schedules(output: OutputOption = Format.TABLE) -> None:
    with platform() as services:
        found = services.schedules.all()
    emit([s.model_dump(mode="json") for s in found], Schedule.table_columns(), output)


@schedules.command("enable")
def enable_schedule(name: str) -> None:
    """Resume a schedule: it fires next at its next tick from now."""
    with platform() as services:
        changed = services.schedules.set_enabled(name, True, actor=cli_actor())
    console.print(f"enabled {name}: next at {changed.next_fire_at.isoformat()}")


@schedules.command("disable")
def disable_schedule(name: str) -> None:
    """Pause a schedule."""
    with platform() as services:
        services.schedules.set_enabled(name, False, actor=cli_actor())
    console.print(f"disabled {name}")


@schedules.command("delete")
def delete_schedule(name: str) -> None:
    with platform() as services:
        services.schedules.delete(name, actor=cli_actor())
    console.print(f"deleted {name}")


@triggers.command("create")
def create_trigger(
    name: str,
    pipeline: str = typer.Option(..., "--pipeline"),
    event: str = typer.Option(..., "--event", help="event type, e.g. monitor.violations"),
    filter: list[str] = typer.Option([], "--filter", help="path=value, e.g. resource=..."),
    map: list[str] = typer.Option([], "--map", help="parameter=path, e.g. n=payload.rows"),
    debounce: float = typer.Option(0.0, "--debounce", help="seconds"),
) -> None:
    """Start PIPELINE when a matching event arrives."""
    with platform() as services:
        services.triggers.create(
            name,
            pipeline,
            event,
            filters=_pairs(filter, "filter"),
            parameter_mapping=_pairs(map, "map"),
            debounce_seconds=debounce,
            actor=cli_actor(),
        )
    console.print(f"trigger {name}: {event} -> {pipeline}")


@triggers.command("list")
def list_triggers(output: OutputOption = Format.TABLE) -> None:
    from slipway.events.resources import Trigger  # lazy: module docstring

    with platform() as services:
        found = services.triggers.all()
    emit([t.model_dump(mode="json") for t in found], Trigger.table_columns(), output)


@triggers.command("enable")
def enable_trigger(name: str) -> None:
    """Resume a trigger: events appended from now on can fire it."""
    with platform() as services:
        services.triggers.set_enabled(name, True, actor=cli_actor())
    console.print(f"enabled {name}")


@triggers.command("disable")
def disable_trigger(name: str) -> None:
    """Pause a trigger: events appended while it is paused never fire it."""
    with platform() as services:
        services.triggers.set_enabled(name, False, actor=cli_actor())
    console.print(f"disabled {name}")


@triggers.command("delete")
def delete_trigger(name: str) -> None:
    with platform() as services:
        services.triggers.delete(name, actor=cli_actor())
    console.print(f"deleted {name}")
