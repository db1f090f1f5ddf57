"""Opening the sink a batch job's spec names, for one chunk attempt."""

from __future__ import annotations

from slipway.batch.delivery import Sink
from slipway.batch.kafka import KafkaSink
from slipway.batch.sinks import FileSink
from slipway.batch.spec import BatchJobSpec
from slipway.core.settings import KafkaSettings


def open_sink(
    spec: BatchJobSpec,
    kafka: KafkaSettings,
    *,
    job: str,
    chunk: int,
    model: tuple[str, int, str],
) -> Sink:
    """The sink of ``spec.output`` for chunk ``chunk`` of ``job``, scored by ``model``
    (name, version, digest)."""
    if spec.output.files is not None:
        return FileSink(spec.output.files.path, spec.output.files.format, chunk)
    assert spec.output.kafka is not None and spec.id_column is not None  # the spec checks
    return KafkaSink(
        kafka, spec.output.kafka, id_column=spec.id_column, job=job, chunk=chunk, model=model
    )
