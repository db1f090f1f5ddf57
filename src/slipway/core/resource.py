"""The base of every resource Slipway hands out: a feature group, a model version, an
endpoint, a job, a monitor...

One pydantic model per resource, defined by the capability that owns it (in
``slipway.<capability>.resources``), is what its service returns, what the REST API sends
and accepts (so the OpenAPI document describes it), what the remote client decodes, and
what the CLI prints. Nothing is modelled twice: a field added to the resource appears on
every face at once.

Resources are frozen values. They render as HTML tables in Jupyter (``_repr_html_``), and
a list of them comes back as a :class:`Listing`, which renders as one table with a row per
resource.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

R = TypeVar("R", bound="Resource")

# Cells longer than this are cut in HTML tables: a spec or a report belongs in its own view.
_CELL_LIMIT = 120


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        text = value.isoformat(sep=" ", timespec="seconds")
    elif isinstance(value, Enum):
        text = str(value.value)
    elif isinstance(value, BaseModel):
        text = json.dumps(value.model_dump(mode="json"))
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    if len(text) > _CELL_LIMIT:
        text = text[: _CELL_LIMIT - 1] + "…"
    return html.escape(text)


def html_table(rows: Sequence[Sequence[Any]], columns: Sequence[str], *, title: str = "") -> str:
    """An HTML table of ``rows`` under ``columns`` (values escaped, long ones cut)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Resource(BaseModel):
    """A resource as services return it and the API sends it.

    ``extra="ignore"``: a client older than its server reads the fields it knows and keeps
    working when the server adds one. Request bodies are their own models, which forbid
    unknown fields so a misspelt one is an error naming it.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)

    # The fields a one-line summary shows (a row of a Listing's table, the CLI's table);
    # every field when empty.
    table_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def table_columns(cls) -> list[str]:
        return list(cls.table_fields) if cls.table_fields else list(cls.model_fields)

    def _repr_html_(self) -> str:
        rows = [(name, getattr(self, name)) for name in type(self).model_fields]
        return html_table(rows, ["field", "value"], title=type(self).__name__)


class Listing(list[R]):
    """A list of resources that renders as one table in a notebook."""

    def __init__(self, items: Iterable[R] = ()) -> None:
        super().__init__(items)

    def _repr_html_(self) -> str:
        if not self:
            return "<p>(none)</p>"
        kind = type(self[0])
        columns = kind.table_columns()
        rows = [[getattr(item, c, None) for c in columns] for item in self]
        return html_table(rows, columns, title=f"{kind.__name__} ({len(self)})")


__all__ = ["Listing", "Resource", "html_table"]
