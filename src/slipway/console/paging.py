"""Server-side paging of a console list: ``?page=N`` (from 1) over a sequence or a count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Request

from slipway.core.errors import InvalidInput

T = TypeVar("T")
PAGE_SIZE = 50


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise InvalidInput("page must be a whole number from 1", field="page")
    return int(raw)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, the neighbours' page numbers (None at an end)."""

    items: Sequence[T]
    number: int
    total: int
    size: int

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number * self.size < self.total else None

    @property
    def summary(self) -> str:
        if not self.total:
            return "none"
        first = (self.number - 1) * self.size + 1
        return f"{first}-{min(self.total, first + len(self.items) - 1)} of {self.total:,}"


def paginate(items: Sequence[T], request: Request, size: int = PAGE_SIZE) -> Page[T]:
    """The request's page of ``items``."""
    number = page_number(request)
    start = (number - 1) * size
    return Page(items[start : start + size], number, len(items), size)
