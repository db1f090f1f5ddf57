"""Publishing a chunk's predictions to a Kafka topic, every message accounted for.

The producer is idempotent with ``acks=all``: the broker keeps each message once and in
order per partition even when the client retries. A chunk counts as sent only when every
one of its messages is acknowledged; anything else (the broker away past the delivery
timeout) fails the job loudly with the delivered and failed counts.

Message layout (documented contract):

- key: the record id (``id_column``), as text;
- value: JSON ``{"id", ...kept columns, "prediction", "model_name", "model_version",
  "inference_id", "time"}`` — ``prediction`` is named by the job's ``prediction_column``
  (a model returning several outputs gives ``prediction_<name>`` each, a version returning
  probabilities ``prediction_probability_<class>`` each), ``inference_id`` is
  ``<job>-<chunk>-<row>``, ``time`` the scoring time in ISO 8601 UTC;
- headers: ``slipway-job``, ``slipway-model`` (``name:version``), ``slipway-digest`` (the
  model files' SHA-256), ``slipway-chunk``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from slipway.batch.delivery import Delivery
from slipway.batch.spec import KafkaOutput
from slipway.core.kafka import client_config
from slipway.core.settings import KafkaSettings


def producer_config(settings: KafkaSettings, output: KafkaOutput) -> dict[str, Any]:
    return client_config(settings) | {
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": output.compression,
        "linger.ms": 25,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "delivery.timeout.ms": int(output.delivery_timeout_seconds * 1000),
    }


class KafkaSink:
    """Chunk ``chunk`` of job ``job`` as one message per row (a :class:`~.delivery.Sink`).
    Kafka cannot take back what an earlier attempt sent, so :meth:`begin` forgets nothing:
    a retried chunk's rows arrive again, with the same ids and inference ids."""

    def __init__(
        self,
        settings: KafkaSettings,
        output: KafkaOutput,
        *,
        id_column: str,
        job: str,
        chunk: int,
        model: tuple[str, int, str],
    ) -> None:
        from confluent_kafka import Producer

        self.output = output
        self.producer = Producer(producer_config(settings, output))
        self.delivery = Delivery()
        self.id_column = id_column
        self.job, self.chunk, self.model = job, chunk, model
        self._duckdb: Any = None

    def begin(self) -> None:
        """Nothing to forget (see the class)."""

    def write(self, piece: int, table: pa.Table, first_row: int) -> None:
        """Queue one message per row of ``table`` (acknowledgements arrive later)."""
        name, version, digest = self.model
        job, chunk = self.job, self.chunk
        keys, values = self._encode(
            table,
            id_column=self.id_column,
            prefix=f"{job}-{chunk}-",
            first_row=first_row,
            model=(name, version),
        )
        headers: list[tuple[str, str | bytes | None]] = [
            ("slipway-job", job.encode()),
            ("slipway-model", f"{name}:{version}".encode()),
            ("slipway-digest", digest.encode()),
            ("slipway-chunk", str(chunk).encode()),
        ]
        delivery = self.delivery
        produce = self.producer.produce
        topic = self.output.topic
        for key, value in zip(keys, values, strict=True):
            while True:
                try:
                    produce(
                        topic, value=value, key=key, headers=headers, on_delivery=delivery.callback
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    self.producer.poll(0.05)
        self.producer.poll(0)

    def _encode(
        self,
        table: pa.Table,
        *,
        id_column: str,
        prefix: str,
        first_row: int,
        model: tuple[str, int],
    ) -> tuple[list[str], list[str]]:
        """Keys and JSON values for every row, built by DuckDB in C: per-row Python (or
        pandas' JSON lines) would cost more than producing the messages."""
        import duckdb
        import numpy as np

        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        rows = table.append_column(
            "__seq", pa.array(np.arange(first_row, first_row + table.num_rows, dtype=np.int64))
        )
        fields = [f"'id': {_quote(id_column)}"] + [
            f"{_literal(column)}: {_quote(column)}"
            for column in table.column_names
            if column != id_column
        ]
        fields += [
            "'model_name': $name",
            "'model_version': $version",
            "'inference_id': $prefix || CAST(__seq AS VARCHAR)",
            "'time': $now",
        ]
        if self._duckdb is None:
            self._duckdb = duckdb.connect()
            self._duckdb.execute("SET threads = 1")  # the workers are the parallelism
        con = self._duckdb
        con.register("rows_", rows)
        try:
            result = con.sql(
                f"SELECT CAST({_quote(id_column)} AS VARCHAR), to_json({{{', '.join(fields)}}})"
                " FROM rows_",
                params={"name": model[0], "version": model[1], "prefix": prefix, "now": now},
            ).to_arrow_table()
        finally:
            con.unregister("rows_")
        return result.column(0).to_pylist(), result.column(1).to_pylist()

    def finish(self, rows: int) -> Delivery:
        """Wait for every outstanding acknowledgement (or the delivery timeout); complete
        when all ``rows`` messages were acknowledged."""
        delivery = self.delivery
        remaining = self.producer.flush(self.output.delivery_timeout_seconds + 10)
        if remaining:
            delivery.failed += remaining
            delivery.first_error = (
                delivery.first_error or f"{remaining} messages never acknowledged"
            )
        delivery.complete = delivery.failed == 0 and delivery.delivered >= rows
        return delivery


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
