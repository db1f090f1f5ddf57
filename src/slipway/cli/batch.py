"""``slipway batch``: batch transform jobs from the command line.

A submit checks the spec, model and input, then queues the job's chunks and returns;
workers (``slipway up`` or ``slipway worker``) score them. ``--wait`` (and ``slipway batch
wait``) follows the job with a progress bar and exits 1 unless it Completes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from slipway.batch.resources import BatchJob
from slipway.batch.spec import TERMINAL
from slipway.cli.context import cli_actor, load_yaml_mapping, platform
from slipway.cli.output import Format, OutputOption, console, emit, errors, print_json
from slipway.core.waiting import wait_until_final

app = typer.Typer(help="Batch transform jobs: score files with a model.", no_args_is_help=True)

SpecFile = Annotated[
    Path,
    typer.Option(..., "--file", "-f", help="YAML batch job spec (name, model, input, output, ...)"),
]
Wait = Annotated[bool, typer.Option("--wait", help="follow the job until it ends")]
Timeout = Annotated[
    float, typer.Option("--timeout", min=0, help="with --wait, give up after S seconds")
]

_COLOURS = {
    "Pending": "yellow",
    "Running": "cyan",
    "Completed": "green",
    "Failed": "red",
    "Stopped": "magenta",
    "pending": "yellow",
    "running": "cyan",
    "done": "green",
    "failed": "red",
}


def _coloured(value: str) -> str:
    return f"[{_COLOURS.get(value, 'white')}]{value}[/]"


def _local_paths(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative local paths in the spec, resolved against the spec file's folder (as a
    training job's ``source_dir`` is): workers do not share the CLI's working folder."""
    for section, kind, key in (
        ("input", "files", "path"),
        ("input", "training_set", "entities"),
        ("output", "files", "path"),
    ):
        outer = spec.get(section)
        part = outer.get(kind) if isinstance(outer, dict) else None
        value = part.get(key) if isinstance(part, dict) else None
        if not isinstance(part, dict) or not isinstance(value, str) or not value:
            continue
        # '..' is left for the service to refuse; resolving it here would hide it.
        if "://" not in value and ".." not in value and not Path(value).is_absolute():
            part[key] = str((base / value).resolve())
    return spec


def _json(job: BatchJob) -> None:
    print_json(job.model_dump(mode="json"))


def _follow(services: Any, name: str, timeout: float, output: Format) -> BatchJob:
    """Poll the job with a progress bar until it ends; exit 1 unless it Completed.
    ``services`` is the embedded platform or a remote client: both have ``batch.get``."""
    with Progress(
        TextColumn("[bold]{task.description}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks, {task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=errors if output is Format.JSON else console,
        transient=output is Format.JSON,
    ) as progress:
        task = progress.add_task(name, total=None, rows=0)

        def fetch() -> BatchJob:
            job: BatchJob = services.batch.get(name)
            progress.update(
                task,
                total=job.chunks_total,
                completed=job.chunks_done,
                rows=job.rows_done,
                description=f"{name} {job.state}",
            )
            return job

        job: BatchJob | None = None
        timed_out = ""
        try:
            job = wait_until_final(
                fetch,
                lambda j: j.state,
                TERMINAL,
                what=f"batch job {name}",
                timeout=timeout,
                interval=0.5,
            )
        except TimeoutError as exc:
            timed_out = str(exc)
    if job is None:
        errors.print(f"[red]error:[/red] {timed_out}")
        raise typer.Exit(1)
    if output is Format.JSON:
        _json(job)
    if job.state != "Completed":
        reason = f": {job.error}" if job.error else ""
        errors.print(f"[red]error:[/red] batch job {name} ended {job.state}{reason}")
        raise typer.Exit(1)
    if output is Format.TABLE:
        console.print(
            f"{name} Completed: {job.rows_done:,} rows in {job.chunks_total} chunks"
            + (f", {job.delivered:,} messages delivered" if job.delivered else "")
        )
    return job


@app.command("submit")
def submit(
    file: SpecFile,
    wait: Wait = False,
    timeout: Timeout = 86_400.0,
    output: OutputOption = Format.TABLE,
) -> None:
    """Submit a batch job from a YAML spec (checked first: model, input columns, output)."""
    spec = _local_paths(load_yaml_mapping(file), file.parent)
    with platform() as services:
        row = services.batch.submit(spec, actor=cli_actor())
        if wait:
            console_or_err = errors if output is Format.JSON else console
            console_or_err.print(
                f"submitted batch job [bold]{row.name}[/bold]: {row.chunks_total} chunks"
            )
            _follow(services, row.name, timeout, output)
            return
    if output is Format.JSON:
        _json(row)
        return
    console.print(
        f"submitted batch job [bold]{row.name}[/bold] ({_coloured(row.state)},"
        f" {row.chunks_total} chunks); follow it with `slipway batch wait {row.name}`"
    )


@app.command("describe")
def describe(name: str, output: OutputOption = Format.TABLE) -> None:
    """A batch job: its model, progress, error and chunk states."""
    with platform() as services:
        job = services.batch.get(name)
    states = job.chunk_states
    if output is Format.JSON:
        _json(job)
        return
    console.print(
        f"[bold]{job.name}[/bold] {_coloured(job.state)}: model"
        f" {job.model_name}:{job.model_version}, {job.chunks_done}/{job.chunks_total} chunks,"
        f" {job.rows_done:,} rows"
    )
    if job.delivered or job.failed:
        console.print(f"kafka: {job.delivered:,} delivered, {job.failed:,} failed")
    console.print("chunks: " + ", ".join(f"{k} {v}" for k, v in sorted(states.items())))
    if job.error:
        console.print(f"[red]error:[/red] {job.error}")
    files = job.spec.output.files
    if job.manifest and files:
        console.print(f"manifest: {files.path.rstrip('/')}/_manifest.json")


@app.command("list")
def list_jobs(
    limit: int = typer.Option(50, "--limit", min=1, max=500),
    output: OutputOption = Format.TABLE,
) -> None:
    """Batch jobs, newest first."""
    with platform() as services:
        jobs = services.batch.list(limit)
    if output is Format.JSON:
        print_json([j.model_dump(mode="json") for j in jobs])
        return
    rows = [
        j.model_dump()
        | {
            "state": _coloured(j.state),
            "model": f"{j.model_name}:{j.model_version}",
            "chunks": f"{j.chunks_done}/{j.chunks_total}",
        }
        for j in jobs
    ]
    emit(
        rows,
        ["name", "state", "model", "chunks", "rows_done", "created_by", "created_at"],
        output,
        title="batch jobs",
    )


@app.command("chunks")
def chunks(name: str, output: OutputOption = Format.TABLE) -> None:
    """A batch job's chunks: what each reads, its state, rows and time."""
    with platform() as services:
        chunks = services.batch.chunks(name)  # an unknown job is an error, not an empty table
    if output is Format.JSON:
        print_json([c.model_dump(mode="json") for c in chunks])
        return
    rows = [
        c.model_dump()
        | {
            "state": _coloured(c.state),
            "source": c.source.get("path"),
            "planned": c.source.get("rows"),
            "seconds": f"{c.seconds:.1f}",
        }
        for c in chunks
    ]
    emit(
        rows,
        ["index", "state", "source", "planned", "rows", "delivered", "failed", "seconds", "error"],
        output,
        title=f"{name}: chunks",
    )


@app.command("wait")
def wait(
    name: str,
    timeout: float = typer.Option(3600.0, "--timeout", min=0, help="give up after S seconds"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Follow a batch job until it ends; exits 1 unless it Completed (or on timeout)."""
    with platform() as services:
        _follow(services, name, timeout, output)


@app.command("stop")
def stop(name: str) -> None:
    """Stop a batch job: queued chunks are cancelled; resume it later."""
    with platform() as services:
        services.batch.stop(name, actor=cli_actor())
    console.print(f"stopped {name}; `slipway batch resume {name}` runs its unfinished chunks")


@app.command("resume")
def resume(
    name: str,
    wait: Wait = False,
    timeout: Timeout = 86_400.0,
    output: OutputOption = Format.TABLE,
) -> None:
    """Run a Failed or Stopped job's unfinished chunks again (finished ones are kept)."""
    with platform() as services:
        row = services.batch.resume(name, actor=cli_actor())
        if wait:
            _follow(services, name, timeout, output)
            return
    if output is Format.JSON:
        _json(row)
        return
    console.print(f"resumed {name}: {row.chunks_total - row.chunks_done} chunks queued")
