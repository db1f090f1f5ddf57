"""``slipway feature-views``: feature views from the command line — define them from a
file, read their versions, compute them online for a few rows, and write a training set.

Every command works in process and, with ``--url``, through :class:`slipway.Client`
with the same output. ``training-set`` reads the entity rows from a Parquet or CSV file
here (remotely: sent to the server as an Arrow stream) and writes the result as Parquet
here; both paths are checked as every path a spec names is (a local path or an
object-store URI, no ``..``, no other scheme), and the output appears whole or not at all.

Arrow and the file readers load inside the commands that use them: ``slipway --help``
loads neither.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from slipway.cli.context import cli_actor, load_yaml_mapping, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, emit_resources, print_json
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.uris import check_uri
from slipway.features.views.spec import format_duration

if TYPE_CHECKING:
    import pyarrow as pa

    from slipway.features.views.resources import FeatureView

app = typer.Typer(
    help="Feature views: versioned features and transformations, online and offline.",
    no_args_is_help=True,
)

_COLUMNS = ["name", "version", "entity_keys", "columns", "created_by", "created_at"]


def _summary(view: FeatureView) -> dict[str, Any]:
    return view.model_dump() | {"columns": ", ".join(view.columns)}


@app.command("list")
def list_views(output: OutputOption = Format.TABLE) -> None:
    """The latest version of every feature view."""
    with platform() as services:
        views = services.feature_views.list()
    if output is Format.JSON:
        emit_resources(views, _COLUMNS, output)
        return
    emit([_summary(v) for v in views], _COLUMNS, output, title="feature views")


def _source(view: FeatureView, column: str) -> str:
    """Where a view's column comes from, for people."""
    for transformation in view.spec.transformations:
        if column not in transformation.output_names:
            continue
        window = transformation.window
        if window is not None:
            what = window.function + (f"({window.column})" if window.column else "")
            return f"window {what} over {window.group}, {format_duration(window.duration)}"
        if transformation.expression is not None:
            return f"expression {transformation.expression}"
        return f"python {transformation.python}"
    for ref in view.spec.features:
        group, _, feature = ref.partition(":")
        if feature in (column, "*"):
            return f"feature {group}:{column}"
    return "-"


@app.command("get")
def get(
    name: str,
    version: int | None = typer.Option(None, "--version", min=1, help="default: the latest"),
    output: OutputOption = Format.TABLE,
) -> None:
    """A view's definition: its keys, request fields and columns with their sources."""
    with platform() as services:
        view = services.feature_views.get(name, version)
    if output is Format.JSON:
        print_json(view.model_dump(mode="json"))
        return
    spec = view.spec
    console.print(
        f"[bold]{view.name}[/bold] version {view.version} (digest {view.digest[:12]})"
        + (f" {spec.description}" if spec.description else "")
    )
    fields = ", ".join(f"{k} ({t})" for k, t in spec.request_fields.items()) or "-"
    console.print(f"  entity keys {', '.join(view.entity_keys) or '-'}; request fields {fields}")
    console.print(f"  created by {view.created_by} at {view.created_at:%Y-%m-%d %H:%M:%S}")
    rows = [{"column": c, "type": t, "from": _source(view, c)} for c, t in view.columns.items()]
    emit(rows, ["column", "type", "from"], Format.TABLE, title="columns")


@app.command("versions")
def versions(name: str, output: OutputOption = Format.TABLE) -> None:
    """Every version of a view, oldest first (models stay bound to the one they used)."""
    with platform() as services:
        found = services.feature_views.versions(name)
    columns = ["version", "digest", "columns", "created_by", "created_at"]
    if output is Format.JSON:
        emit_resources(found, columns, output)
        return
    rows = [_summary(v) | {"digest": v.digest[:12]} for v in found]
    emit(rows, columns, output, title=f"versions of {name}")


@app.command("apply")
def apply(
    file: Path = typer.Option(..., "--file", "-f", help="the view's definition, YAML or JSON"),
    output: OutputOption = Format.TABLE,
) -> None:
    """Define a view, or store a changed definition as its next version (the same
    definition again changes nothing)."""
    spec = load_yaml_mapping(file)  # JSON is YAML; read safely either way
    with platform() as services:
        before = None
        if isinstance(spec.get("name"), str):
            with reported():
                try:
                    before = services.feature_views.get(spec["name"]).version
                except (NotFound, InvalidInput):
                    before = None  # a new view, or a bad name the apply below names
        view = services.feature_views.apply(spec, actor=cli_actor())
    if output is Format.JSON:
        print_json(view.model_dump(mode="json") | {"changed": view.version != before})
        return
    if view.version == before:
        console.print(f"feature view [bold]{view.name}[/bold] unchanged (version {view.version})")
    else:
        console.print(f"feature view [bold]{view.name}[/bold]: version {view.version}")


@app.command("delete")
def delete(name: str, yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Delete every version of a view (models trained on it keep its digest)."""
    if not yes:
        typer.confirm(f"delete feature view {name} and all its versions?", abort=True)
    with platform() as services:
        services.feature_views.delete(name, actor=cli_actor())
    console.print(f"deleted {name}")


def _rows(values: list[str]) -> list[dict[str, Any]]:
    rows = []
    for index, value in enumerate(values):
        try:
            row = json.loads(value)
        except ValueError:
            raise InvalidInput(f"--row {index + 1} is not JSON: {value!r}", field="row") from None
        if not isinstance(row, dict):
            raise InvalidInput(f"--row {index + 1} must be a JSON object", field="row")
        rows.append(row)
    return rows


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--at {value!r} is not an ISO 8601 time", field="at") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"--at {value!r} needs a time zone (e.g. {value}Z)", field="at")
    return moment


@app.command("online")
def online(
    name: str,
    row: list[str] = typer.Option(
        ..., "--row", help='an entity row as JSON: keys and request fields, e.g. {"id": "a"}'
    ),
    version: int | None = typer.Option(None, "--version", min=1, help="default: the latest"),
    at: str | None = typer.Option(None, "--at", help="windows end here (ISO 8601); default now"),
    output: OutputOption = Format.TABLE,
) -> None:
    """The view's columns for each row, computed from the online store as the gateway
    serves them."""
    with reported():
        rows, moment = _rows(row), _moment(at)
    with platform() as services:
        values = services.feature_views.get_online(name, rows, version=version, at=moment)
    if output is Format.JSON:
        print_json(values)
        return
    shown = [given | computed for given, computed in zip(rows, values, strict=True)]
    columns = list(dict.fromkeys(c for r in shown for c in r))
    emit(shown, columns, output, title=name)


def _entities(path: str, format: str | None) -> pa.Table:
    """The entity rows of a Parquet or CSV file (a local path or object-store URI)."""
    # Lazy: module docstring.
    import pyarrow as pa

    from slipway.features.sources import file_chunks

    check_uri(path, field="entities")
    if "::" in path:
        raise InvalidInput("entities: chained URLs (a::b) are not read", field="entities")
    chunks = list(file_chunks(path, format=format)())
    if not chunks:
        raise InvalidInput(f"{path!r} holds no rows", field="entities")
    return pa.concat_tables(chunks, promote_options="permissive")


def _output_path(text: str, force: bool) -> Path:
    """Where the training set goes: a local file, its folder existing, not replaced
    unless ``force``."""
    check_uri(text, field="out")
    if "://" in text or "::" in text:
        raise InvalidInput("out: write the training set to a local file", field="out")
    path = Path(text)
    if path.suffix.lower() != ".parquet":
        raise InvalidInput(f"out: {text!r} must name a .parquet file", field="out")
    if not path.parent.is_dir():
        raise InvalidInput(f"out: the folder {str(path.parent)!r} does not exist", field="out")
    if path.is_dir() or (path.is_symlink() and not path.exists()):
        raise InvalidInput(f"out: {text!r} is not a file", field="out")
    if path.exists() and not force:
        raise InvalidInput(f"out: {text!r} exists; pass --force to replace it", field="out")
    return path


def _write_whole(table: pa.Table, path: Path) -> None:
    """``table`` as Parquet at ``path``, written to a temporary file beside it and renamed
    into place: a failure leaves no partial file, a replaced one is replaced whole."""
    import pyarrow.parquet as pq  # lazy: module docstring

    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@app.command("training-set")
def training_set(
    name: str,
    entities: str = typer.Argument(
        ..., help="Parquet or CSV file of entity rows: keys, the timestamp, request fields"
    ),
    out: str = typer.Option(..., "--out", help="the Parquet file to write (a local path)"),
    version: int | None = typer.Option(None, "--version", min=1, help="default: the latest"),
    timestamp_column: str = typer.Option("event_timestamp", "--timestamp-column"),
    as_known_at: bool = typer.Option(
        False, "--as-known-at", help="only what had been ingested by each row's timestamp"
    ),
    format: str | None = typer.Option(None, "--format", help="csv or parquet (default: by name)"),
    force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
    output: OutputOption = Format.TABLE,
) -> None:
    """The view's columns for each entity row as of its timestamp, written as Parquet;
    its definition (view version and digest, group versions) is printed."""
    with reported():
        target = _output_path(out, force)
        table = _entities(entities, format)
    with platform() as services:
        built = services.feature_views.training_set(
            name,
            table,
            version=version,
            timestamp_column=timestamp_column,
            as_known_at=as_known_at,
        )
    _write_whole(built.data, target)
    definition = built.definition.to_dict()
    if output is Format.JSON:
        print_json(
            {"path": str(target), "rows": built.data.num_rows, "columns": built.data.column_names}
            | {"definition": definition}
        )
        return
    view = built.definition.feature_view or {}
    console.print(
        f"wrote {built.data.num_rows:,} rows ({built.data.num_columns} columns) to {target}"
        f" (feature view {view.get('name')} version {view.get('version')})"
    )
