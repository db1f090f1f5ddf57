"""``slipway pipelines``: register, run, watch, retry and cancel pipelines.

Commands call only methods the embedded service and the remote client share, and print
the resources' fields (:mod:`slipway.pipelines.resources`)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from slipway.cli.context import cli_actor, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, print_json
from slipway.core.errors import InvalidInput
from slipway.pipelines.resources import Execution, Pipeline
from slipway.pipelines.states import TERMINAL_EXECUTIONS

app = typer.Typer(
    help="Pipelines: register, run, describe, logs, retry, cancel.", no_args_is_help=True
)

_COLOURS = {
    "Succeeded": "green",
    "Cached": "cyan",
    "Failed": "red",
    "Running": "yellow",
    "Skipped": "dim",
    "Cancelled": "magenta",
    "Pending": "white",
}


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            with reported():
                raise InvalidInput(f"parameter {pair!r} must look like name=value", field="param")
        params[key] = value
    return params


def _step_table(described: Execution) -> Table:
    table = Table(title=f"{described.pipeline} {described.id[:12]}: {described.state}")
    for column in ("step", "state", "attempts", "after", "error"):
        table.add_column(column)
    for step in described.steps:
        colour = _COLOURS.get(step.state, "white")
        error = (step.error or "").strip().splitlines()
        table.add_row(
            step.name,
            f"[{colour}]{step.state}[/]",
            str(step.attempts),
            ", ".join(step.depends_on) or "-",
            error[-1] if error else "",
        )
    return table


@app.command("register")
def register(
    target: str = typer.Argument(..., help="module:pipeline, e.g. flows.train:train"),
) -> None:
    """Register (or update) a pipeline defined in importable Python code."""
    sys.path.insert(0, os.getcwd())
    with platform() as services:
        registered = services.pipelines.register(target, actor=cli_actor())
    graph = registered.graph
    console.print(
        f"registered [bold]{registered.name}[/bold]: {len(graph.steps)} steps,"
        f" {len(graph.conditions)} conditions, digest {registered.digest[:12]}"
    )


@app.command("list")
def list_pipelines(output: OutputOption = Format.TABLE) -> None:
    """Registered pipelines."""
    with platform() as services:
        found = services.pipelines.pipelines()
    if output is Format.JSON:
        print_json([p.model_dump(mode="json") for p in found])
        return
    rows = [
        p.model_dump(include=set(Pipeline.table_columns()))
        | {"steps": len(p.graph.steps), "parameters": ", ".join(p.graph.parameters)}
        for p in found
    ]
    emit(rows, ["name", "target", "steps", "parameters", "updated_at"], output)


@app.command("run")
def run(
    name: str,
    param: list[str] = typer.Option([], "--param", "-p", help="name=value, repeatable"),
    wait: bool = typer.Option(False, "--wait", help="follow the execution until it ends"),
) -> None:
    """Start an execution (workers run it; `slipway up` starts some)."""
    with platform() as services:
        execution_id = services.pipelines.start(name, _parse_params(param), actor=cli_actor())
        console.print(f"started execution {execution_id}")
        if wait:
            _watch(services, execution_id)


def _watch(services: Any, execution_id: str) -> None:
    with Live(console=console, refresh_per_second=4) as live:
        done = services.pipelines.wait(
            execution_id,
            timeout=float("inf"),
            progress=lambda current: live.update(_step_table(current)),
        )
    if done.state != "Succeeded":
        raise typer.Exit(1)


@app.command("executions")
def executions(
    name: str | None = typer.Argument(None), output: OutputOption = Format.TABLE
) -> None:
    """Recent executions, newest first."""
    with platform() as services:
        found = services.pipelines.executions(name)
    rows = [e.model_dump(mode="json", exclude={"steps"}) for e in found]
    if output is Format.TABLE:
        for row in rows:
            row["trigger"] = row["trigger"].get("type")
    emit(rows, ["id", "pipeline", "state", "trigger", "created_at", "finished_at"], output)


@app.command("describe")
def describe(execution_id: str, output: OutputOption = Format.TABLE) -> None:
    """An execution's steps with their states."""
    with platform() as services:
        described = services.pipelines.describe(execution_id)
    if output is Format.JSON:
        print_json(described.model_dump(mode="json"))
        return
    console.print(_step_table(described))


@app.command("logs")
def logs(
    execution_id: str,
    step: str | None = typer.Option(None, help="only this step"),
    follow: bool = typer.Option(False, "--follow", "-f", help="keep printing until it ends"),
) -> None:
    """Print the steps' captured output."""
    with platform() as services:
        position = 0
        while True:
            finished = not follow or (
                services.pipelines.describe(execution_id).state in TERMINAL_EXECUTIONS
            )
            # Read after deciding: what was logged before the end is all printed.
            for line in services.pipelines.logs(execution_id, step, position):
                position = line.id
                for text in line.text.splitlines():
                    typer.echo(f"[{line.step}#{line.attempt}] {text}")
            if finished:
                return
            time.sleep(0.5)


@app.command("retry")
def retry(execution_id: str) -> None:
    """Run a failed execution again from its failed steps."""
    with platform() as services:
        services.pipelines.retry(execution_id, actor=cli_actor())
    console.print(f"retrying {execution_id}")


@app.command("cancel")
def cancel(execution_id: str) -> None:
    """Cancel an execution; running steps are stopped."""
    with platform() as services:
        services.pipelines.cancel(execution_id, actor=cli_actor())
    console.print(f"cancelled {execution_id}")
