"""Printing results: Rich tables for people, ``--output json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    Format, typer.Option("--output", "-o", help="table for people, json for scripts")
]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def print_json(data: Any) -> None:
    typer.echo(json.dumps(_plain(data), indent=2))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        return json.dumps(_plain(value))
    return str(_plain(value))


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
) -> None:
    """Print ``rows`` as a table of ``columns``, or all their fields as a JSON list."""
    if fmt is Format.JSON:
        print_json(list(rows))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def emit_resources(resources: Iterable[BaseModel], columns: Sequence[str], fmt: Format) -> None:
    """Print resources as a table of ``columns`` (times as ``YYYY-MM-DD HH:MM:SS``), or
    every field of each as the JSON the REST API sends."""
    if fmt is Format.JSON:
        print_json([r.model_dump(mode="json") for r in resources])
        return
    emit([r.model_dump() for r in resources], columns, fmt)
