"""The one interface every batch output implements, and what it reports for a chunk.

A chunk attempt opens one sink (:func:`slipway.batch.outputs.open_sink`), calls
:meth:`Sink.begin` (forget what an earlier, interrupted attempt at this chunk left behind,
where the output can), :meth:`Sink.write` for each block of predictions in order, and
:meth:`Sink.finish`, whose :class:`Delivery` says whether every row reached the output.
A chunk whose delivery is not complete fails its job, loudly, with the counts: a sink
never loses rows silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa


@dataclass
class Delivery:
    """``delivered`` and ``failed`` count acknowledged and refused messages (a sink that
    acknowledges per message: Kafka); ``complete`` is whether the chunk's every row is in
    the output."""

    delivered: int = 0
    failed: int = 0
    first_error: str = ""
    complete: bool = True

    def callback(self, error: Any, _message: Any) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.first_error = self.first_error or str(error)


class Sink(Protocol):
    """Where one chunk attempt's predictions go."""

    def begin(self) -> None:
        """Forget what an earlier attempt at this chunk wrote, where the output can."""

    def write(self, piece: int, table: pa.Table, first_row: int) -> None:
        """Hand over block ``piece`` of the chunk, whose first row is the chunk's row
        ``first_row``."""

    def finish(self, rows: int) -> Delivery:
        """Wait until the output holds (or refused) what was written; ``rows`` is how
        many rows the chunk wrote in all."""
