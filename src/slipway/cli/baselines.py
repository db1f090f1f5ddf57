"""``slipway monitors baseline``: the reference a data-quality monitor compares traffic with.

A baseline profiles a dataset (a file, a SQL query over feature groups, a point-in-time
training set, or a model version's own training data) and suggests constraints that the
dataset itself satisfies; edit them with ``constraints NAME --set FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from slipway.cli.context import cli_actor, load_yaml_mapping, platform, reported
from slipway.cli.output import Format, OutputOption, console, emit, errors, print_json
from slipway.core.errors import InvalidInput
from slipway.core.resource import Resource

app = typer.Typer(
    help="Baselines: statistics and constraints of a reference dataset.", no_args_is_help=True
)

Yes = Annotated[bool, typer.Option("--yes", help="do not ask")]


def _fields(resource: Resource, output: Format = Format.TABLE) -> dict[str, Any]:
    """A resource's fields: JSON values for ``--output json``, Python ones for tables."""
    return resource.model_dump(mode="json" if output is Format.JSON else "python")


def _local(value: str, base: Path) -> str:
    """A relative local path made absolute against ``base``: the service may run elsewhere
    than the CLI's working folder. URIs and ``..`` are left for the service to judge."""
    if "://" in value or ".." in value or Path(value).is_absolute():
        return value
    return str((base / value).resolve())


def _source(
    data: str | None, query: str | None, training_set: Path | None, from_model: bool
) -> dict[str, Any]:
    given = [
        kind
        for kind, value in (
            ("file", data),
            ("query", query),
            ("training_set", training_set),
            ("model_version", from_model or None),
        )
        if value is not None
    ]
    if len(given) != 1:
        with reported():
            raise InvalidInput(
                "give exactly one of --data, --query, --training-set or --from-model",
                field="source",
            )
    if data is not None:
        return {"file": _local(data, Path.cwd())}
    if query is not None:
        return {"query": query}
    if training_set is not None:
        spec = load_yaml_mapping(training_set)
        if isinstance(spec.get("entities"), str):
            spec["entities"] = _local(spec["entities"], training_set.parent)
        return {"training_set": spec}
    return {"model_version": True}


@app.command("create")
def create(
    name: str,
    data: Annotated[
        str | None,
        typer.Option("--data", help="a Parquet, CSV or JSON lines file (path or URI)"),
    ] = None,
    query: Annotated[str | None, typer.Option("--query", help="SQL over feature groups")] = None,
    training_set: Annotated[
        Path | None,
        typer.Option("--training-set", help="YAML: entities (a file), features, timestamp_column"),
    ] = None,
    from_model: Annotated[
        bool,
        typer.Option("--from-model", help="the --model version's recorded training data"),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="name:3 or name@alias: keep its input columns and profile its predictions",
        ),
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option("--column", "-c", help="profile only these (repeat)")
    ] = None,
    prediction_column: Annotated[
        str | None,
        typer.Option("--prediction-column", help="a column holding predictions already"),
    ] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Profile a dataset and suggest constraints."""
    source = _source(data, query, training_set, from_model)
    with platform() as services:
        shown = errors if output is Format.JSON else console
        with shown.status(f"building baseline {name}") as status:
            summary = services.baselines.create(
                name,
                source=source,
                actor=cli_actor(),
                model=model,
                columns=column or None,
                prediction_column=prediction_column,
                progress=lambda message: status.update(f"{name}: {message}"),
            )
    if output is Format.JSON:
        print_json(_fields(summary, output))
        return
    console.print(
        f"created baseline [bold]{name}[/bold]: {summary.rows:,} rows,"
        f" {summary.columns} columns"
        + (f", model {summary.model}" if summary.model else "")
        + f"; `slipway monitors baseline constraints {name}` shows what runs check"
    )


@app.command("list")
def list_baselines(output: OutputOption = Format.TABLE) -> None:
    """Baselines by name."""
    with platform() as services:
        baselines = services.baselines.list()
    rows = [_fields(b, output) for b in baselines]
    if output is Format.TABLE:
        rows = [
            r
            | {
                "source": _describe_source(b.source),
                "created_at": b.created_at.strftime("%Y-%m-%d %H:%M"),
            }
            for r, b in zip(rows, baselines, strict=True)
        ]
    columns = ["name", "model", "source", "rows", "columns", "created_by", "created_at"]
    emit(rows, columns, output, title="baselines")


def _describe_source(source: dict[str, Any]) -> str:
    kind, value = next(iter(source.items()))
    if kind == "training_set" and isinstance(value, dict):
        return f"training_set {value.get('entities')}"
    if kind == "model_version":
        return "model version's training data"
    return f"{kind} {value}"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


@app.command("show")
def show(name: str, output: OutputOption = Format.TABLE) -> None:
    """A baseline and the profile of each of its columns."""
    with platform() as services:
        summary = services.baselines.get(name)
        statistics = services.baselines.statistics(name)
    if output is Format.JSON:
        print_json(_fields(summary, output) | {"statistics": _fields(statistics, output)})
        return
    console.print(
        f"[bold]{name}[/bold]: {summary.rows:,} rows from {_describe_source(summary.source)}"
        + (f", model {summary.model}" if summary.model else "")
    )
    rows = []
    for column, profile in statistics.columns.items():
        numeric = profile.get("numeric") or {}
        categorical = profile.get("categorical") or {}
        top = ", ".join(str(t["value"]) for t in categorical.get("top", [])[:5])
        rows.append(
            {
                "column": column,
                "role": profile["role"],
                "type": profile["type"],
                "completeness": f"{profile['completeness']:.2%}",
                "min": _number(numeric.get("min")),
                "max": _number(numeric.get("max")),
                "mean": _number(numeric.get("mean")),
                "distinct": numeric.get("distinct", categorical.get("distinct")),
                "top": top or None,
            }
        )
    emit(
        rows,
        ["column", "role", "type", "completeness", "min", "max", "mean", "distinct", "top"],
        output,
        title=f"{name}: statistics",
    )


@app.command("constraints")
def constraints(
    name: str,
    set_file: Annotated[
        Path | None,
        typer.Option("--set", help="replace them with this YAML or JSON document"),
    ] = None,
    output: OutputOption = Format.TABLE,
) -> None:
    """Show a baseline's constraints, or replace them (validated) with --set FILE."""
    document = load_yaml_mapping(set_file) if set_file is not None else None
    with platform() as services:
        if document is not None:
            current = services.baselines.set_constraints(name, document, actor=cli_actor())
        else:
            current = services.baselines.constraints(name)
    if output is Format.JSON:
        print_json(_fields(current, output))
        return
    if document is not None:
        console.print(f"updated the constraints of [bold]{name}[/bold]")
    rows = []
    for column, rule in current.columns.items():
        bounds = rule.get("range") or {}
        categories = rule.get("categories")
        drift = rule.get("drift") or {}
        rows.append(
            {
                "column": column,
                "type": rule["type"],
                "completeness": f">= {rule['completeness']:.2%}",
                "range": (
                    f"[{_number(bounds.get('min'))}, {_number(bounds.get('max'))}]"
                    if rule.get("range")
                    else None
                ),
                "categories": len(categories) if categories is not None else None,
                "drift": drift.get("method"),
                "threshold": drift.get("threshold"),
            }
        )
    emit(
        rows,
        ["column", "type", "completeness", "range", "categories", "drift", "threshold"],
        output,
        title=f"{name}: constraints",
    )
    console.print("checks: " + ", ".join(f"{k} {v}" for k, v in current.checks.items()))


@app.command("delete")
def delete(name: str, yes: Yes = False) -> None:
    """Delete a baseline (refused while a monitor uses it)."""
    if not yes:
        typer.confirm(f"delete baseline {name}?", abort=True)
    with platform() as services:
        services.baselines.delete(name, actor=cli_actor())
    console.print(f"deleted baseline {name}")
