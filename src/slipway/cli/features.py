"""``slipway features``: feature groups from the command line.

The feature store's modules (Arrow, Delta, Kafka's client) load inside the commands that
use them: ``slipway --help`` loads none of them.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from slipway.cli.context import cli_actor, load_yaml_mapping, local_platform, platform
from slipway.cli.output import Format, OutputOption, console, emit, print_json
from slipway.core.resource import Resource
from slipway.features.micro_batches import BATCH_RECORDS, BATCH_SECONDS

if TYPE_CHECKING:
    from slipway.features.stream import StreamStats

app = typer.Typer(help="Feature groups: define, ingest, read, query.", no_args_is_help=True)


def _show(items: Sequence[Resource], kind: type[Resource], output: Format, title: str) -> None:
    """Resources as a table of their summary columns, or all their fields as JSON."""
    if output is Format.JSON:
        print_json([item.model_dump(mode="json") for item in items])
        return
    columns = kind.table_columns()
    emit([{c: getattr(item, c) for c in columns} for item in items], columns, output, title=title)


@app.command("create")
def create(
    file: Path = typer.Option(..., "--file", "-f", help="YAML definition of the group"),
) -> None:
    """Create a feature group from a YAML definition."""
    spec = load_yaml_mapping(file)
    with platform() as services:
        stored = services.features.create_group(spec, actor=cli_actor())
    console.print(f"created feature group [bold]{stored.spec.name}[/bold]")


@app.command("update")
def update(
    file: Path = typer.Option(..., "--file", "-f", help="YAML definition of the group"),
) -> None:
    """Apply a compatible change (new nullable features, metadata) to a group."""
    spec = load_yaml_mapping(file)
    with platform() as services:
        stored, added = services.features.update_group(spec, actor=cli_actor())
    console.print(
        f"updated {stored.spec.name} to revision {stored.revision}"
        + (f"; added {', '.join(added)}" if added else "")
    )


@app.command("list")
def list_groups(output: OutputOption = Format.TABLE) -> None:
    """List feature groups."""
    from slipway.features.resources import StoredGroup  # lazy: module docstring

    with platform() as services:
        groups = services.features.list_groups()
    _show(groups, StoredGroup, output, "feature groups")


@app.command("describe")
def describe(name: str, output: OutputOption = Format.TABLE) -> None:
    """Show a group's definition, storage state and latest ingestions."""
    from slipway.features.resources import Ingest  # lazy: module docstring

    with platform() as services:
        stored = services.features.describe(name)
        ingests = services.features.ingests(name, limit=5)
    if output is Format.JSON:
        print_json(
            stored.model_dump(mode="json")
            | {"ingests": [i.model_dump(mode="json") for i in ingests]}
        )
        return
    version, online = stored.offline_version, stored.online_records
    spec = stored.spec
    console.print(f"[bold]{spec.name}[/bold] (revision {stored.revision}) {spec.description}")
    console.print(
        f"  keys {', '.join(spec.key_columns)}; event time {spec.event_time};"
        f" ttl {spec.ttl or '-'}; owner {spec.owner or '-'}"
    )
    console.print(
        f"  offline version {version if version is not None else '-'};"
        f" online records {online if online is not None else '-'}"
    )
    emit(
        [f.model_dump(mode="json") for f in spec.features],
        ["name", "type", "length", "nullable", "description"],
        Format.TABLE,
        title="features",
    )
    _show(ingests, Ingest, Format.TABLE, "latest ingestions")


@app.command("delete")
def delete(name: str, yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Delete a group's definition and online records (offline history stays)."""
    if not yes:
        typer.confirm(f"delete feature group {name}?", abort=True)
    with platform() as services:
        services.features.delete_group(name, actor=cli_actor())
    console.print(f"deleted {name}")


@app.command("ingest")
def ingest(
    name: str,
    path: str = typer.Argument(..., help="Parquet or CSV file; any fsspec URI"),
    timezone: str | None = typer.Option(None, help="time zone of naive event times"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Validate a whole file, then write it (all or nothing), with a progress bar."""
    with (
        platform() as services,
        Progress(
            TextColumn("[bold]ingest[/bold] {task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} rows"),
            TimeElapsedColumn(),
            console=console,
            disable=output is Format.JSON,
        ) as progress,
    ):
        task = progress.add_task(name, total=None)
        result = services.features.ingest_file(
            name,
            path,
            timezone=timezone,
            on_progress=lambda n: progress.advance(task, n),
            actor=cli_actor(),
        )
    if output is Format.JSON:
        print_json(result.model_dump(mode="json"))
        return
    console.print(
        f"ingested {result.rows:,} rows into {name}: offline version"
        f" {result.offline_version}, {result.online_applied} applied online"
    )


def _keys(values: list[str]) -> list[list[Any]]:
    keys = []
    for value in values:
        parsed = json.loads(value) if value.startswith("[") else [value]
        keys.append(parsed if isinstance(parsed, list) else [parsed])
    return keys


@app.command("get")
def get(
    name: str,
    keys: list[str] = typer.Argument(..., help="record ids; JSON arrays for composite ids"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Read records from the online store."""
    with platform() as services:
        records = services.features.get_records(name, _keys(keys))
    rows = [
        {
            "key": json.dumps(list(r.key.values())),
            "event_time": r.event_time,
            "stale": r.stale,
            **r.values,
        }
        if r
        else {"key": k, "event_time": None}
        for k, r in zip(keys, records, strict=True)
    ]
    columns = ["key", "event_time", "stale"]
    columns += [c for c in (rows[0].keys() if rows else []) if c not in columns]
    emit(rows, columns, output)


@app.command("materialize")
def materialize(
    name: str,
    start: datetime | None = typer.Option(None, help="from this event time (UTC)"),
    end: datetime | None = typer.Option(None, help="until this event time (UTC)"),
) -> None:
    """Copy the latest offline record per key into the online store (idempotent)."""

    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    with platform() as services:
        counts = services.features.materialize(
            name, start=aware(start), end=aware(end), actor=cli_actor()
        )
    console.print(f"materialized {counts.records:,} records; {counts.applied:,} applied")


@app.command("delete-records")
def delete_records(name: str, keys: list[str] = typer.Argument(...)) -> None:
    """Delete records by id from the online and the offline store (audited)."""
    with platform() as services:
        counts = services.features.delete_records(name, _keys(keys), actor=cli_actor())
    console.print(
        f"deleted {counts.online_deleted} online records and"
        f" {counts.offline_rows_deleted} offline rows"
    )


@app.command("query")
def query(
    sql: str,
    limit: int = typer.Option(50, min=1, help="rows to print"),
    output: OutputOption = Format.TABLE,
) -> None:
    """SQL over the groups' offline data: SELECT ... FROM "group-name"."""
    with platform() as services:
        table = services.features.query(sql)
    emit(
        table.slice(0, limit).to_pylist(),
        table.column_names,
        output,
        title=f"{table.num_rows:,} rows",
    )


def _stream_line(stats: StreamStats) -> str:
    lag = "?" if stats.lag is None else f"{stats.lag:,}"
    return (
        f"consumed {stats.consumed:,} · ingested {stats.ingested:,}"
        f" · dead-lettered {stats.dead_lettered:,} · lag {lag}"
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM end the stream cleanly: the pending micro-batch is written and
    committed before the command returns."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command("stream")
def stream(
    name: str,
    topic: str = typer.Option(..., help="Kafka topic of JSON records"),
    group_id: str | None = typer.Option(
        None, help="consumer group id (default slipway-features-NAME)"
    ),
    dead_letter_topic: str | None = typer.Option(
        None, help="topic for invalid records (default TOPIC.dlq)"
    ),
    max_records: int | None = typer.Option(None, min=1, help="stop after this many records"),
    timeout: float | None = typer.Option(
        None, min=0, help="stop after this many seconds without a record"
    ),
    batch_records: int = typer.Option(BATCH_RECORDS, min=1, help="records per micro-batch"),
    batch_seconds: float = typer.Option(
        BATCH_SECONDS, min=0.001, help="longest wait before writing a micro-batch"
    ),
    timezone: str | None = typer.Option(None, help="time zone of naive event times"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Ingest JSON records from a Kafka topic until Ctrl-C (or --max-records / --timeout).

    Invalid records go to the dead-letter topic with the reason; offsets are committed
    only after the records are written."""
    from slipway.features.stream import StreamIngestor  # lazy: module docstring

    stop = threading.Event()
    people = output is Format.TABLE
    # A consumer beside the platform's Kafka and stores (it commits offsets only once its
    # records are written, which a remote ingest cannot tell it): refused with --url.
    with local_platform() as services:
        ingestor = StreamIngestor(
            services.features,
            services.settings.kafka,
            name,
            topic=topic,
            group_id=group_id,
            dead_letter_topic=dead_letter_topic,
            batch_records=batch_records,
            batch_seconds=batch_seconds,
            timezone=timezone,
            actor=cli_actor(),
        )
        with ingestor, _stop_on_signals(stop):
            if people:
                console.print(
                    f"streaming [bold]{topic}[/bold] into [bold]{name}[/bold]"
                    f" (group {ingestor.group_id}, dead letters to"
                    f" {ingestor.dead_letter_topic}); Ctrl-C to stop"
                )
            final = ingestor.run(
                stop=stop,
                max_records=max_records,
                idle_timeout=timeout,
                on_progress=(lambda stats: console.print(_stream_line(stats))) if people else None,
                progress_seconds=1.0 if console.is_terminal else 5.0,
            )
    if output is Format.JSON:
        print_json(final.to_dict())
