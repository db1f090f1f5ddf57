"""What a gc did, per kind of data: the typed report ``slipway gc`` prints.

Each kind reports how much it deleted (files, rows or runs), the bytes that freed where
the bytes are known (files; database rows free space only when the database reuses or
vacuums it, so they report ``None``), how much old data it kept because something still
needs it, and notes saying why — so an operator can see both halves of every decision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("capture", "delta", "work_items", "events", "audit", "runs")


@dataclass
class KindReport:
    """One kind's outcome. ``enabled`` is False when its retention setting is ``None``
    (kept for ever), and then nothing was examined."""

    kind: str
    enabled: bool = True
    deleted: int = 0
    bytes_freed: int | None = None
    protected: int = 0
    notes: list[str] = field(default_factory=list)

    def add_bytes(self, size: int) -> None:
        self.bytes_freed = (self.bytes_freed or 0) + size


@dataclass
class GcReport:
    """Every kind the gc looked at, in :data:`KINDS` order."""

    dry_run: bool
    kinds: list[KindReport]

    def kind(self, name: str) -> KindReport:
        for report in self.kinds:
            if report.kind == name:
                return report
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "kinds": [asdict(k) for k in self.kinds]}
