"""One conformance suite over every batch output (slipway.batch.delivery.Sink): part
files in each format, and Kafka against the real broker. What a chunk attempt writes is
in the output, row for row and in order, once ``finish`` says it is complete; an output
that cannot take the rows says so — never a silent loss."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer

from slipway.batch.delivery import Sink
from slipway.batch.outputs import open_sink
from slipway.batch.spec import BatchJobSpec
from slipway.core.settings import KafkaSettings
from tests.conftest import service_url

MODEL = ("scorer", 3, "d" * 64)
JOB = "score-all"


@dataclass
class Output:
    """A sink of one kind, and how to read back what reached it."""

    open: Callable[[int], Sink]  # a chunk's sink
    read: Callable[[int], list[dict[str, Any]]]  # what is in the output (expected rows)


def _spec(output: dict[str, Any]) -> BatchJobSpec:
    return BatchJobSpec.model_validate(
        {
            "name": JOB,
            "model": "scorer:3",
            "input": {"files": {"path": "/unused"}},
            "output": output,
            "id_column": "record_id",
        }
    )


def _files(tmp_path: Path, kind: str) -> Output:
    folder = tmp_path / "out"
    spec = _spec({"files": {"path": str(folder), "format": kind}})

    def read(_expected: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for part in sorted(folder.glob("part-*")):
            if kind == "parquet":
                rows += pq.read_table(part).to_pylist()
            elif kind == "csv":
                rows += pacsv.read_csv(part).to_pylist()
            else:
                rows += [json.loads(line) for line in part.read_text().splitlines()]
        return rows

    return Output(
        lambda chunk: open_sink(spec, KafkaSettings(), job=JOB, chunk=chunk, model=MODEL), read
    )


def _kafka(topic: str, bootstrap: str) -> Output:
    spec = _spec({"kafka": {"topic": topic, "delivery_timeout_seconds": 30}})
    settings = KafkaSettings(bootstrap_servers=bootstrap)

    def read(expected: int) -> list[dict[str, Any]]:
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"sinks-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        try:
            while len(rows) < expected and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    value = json.loads(message.value())
                    assert message.key().decode() == value["id"]
                    rows.append(
                        {"record_id": value["id"], "x": value["x"], "score": value["score"]}
                    )
        finally:
            consumer.close()
        return rows

    return Output(lambda chunk: open_sink(spec, settings, job=JOB, chunk=chunk, model=MODEL), read)


@pytest.fixture(params=["parquet", "csv", "jsonl", "kafka"])
def output(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Output]:
    if request.param != "kafka":
        yield _files(tmp_path, request.param)
        return
    # The broker-backed fixtures only for the Kafka case (they need the running broker).
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    topic = request.getfixturevalue("kafka_topic")
    yield _kafka(topic, bootstrap)


def _block(first: int, rows: int) -> pa.Table:
    return pa.table(
        {
            "record_id": [f"r{i:05d}" for i in range(first, first + rows)],
            "x": [float(i) for i in range(first, first + rows)],
            "score": [i / 1000 for i in range(first, first + rows)],
        }
    )


def test_what_a_chunk_writes_is_in_the_output_row_for_row(output: Output) -> None:
    sink = output.open(7)
    sink.begin()
    written = 0
    for piece, rows in enumerate((300, 0, 1200, 500)):
        sink.write(piece, _block(written, rows), written)
        written += rows
    delivery = sink.finish(written)
    assert delivery.complete and delivery.failed == 0
    received = output.read(written)
    expected = _block(0, written).to_pylist()
    assert len(received) == written
    # Files keep the order; a Kafka topic with one partition does too.
    assert [r["record_id"] for r in received] == [r["record_id"] for r in expected]
    assert [r["x"] for r in received] == [r["x"] for r in expected]


def test_chunks_write_side_by_side_without_mixing(output: Output) -> None:
    first, second = output.open(1), output.open(2)
    first.begin()
    second.begin()
    first.write(0, _block(0, 100), 0)
    second.write(0, _block(100, 50), 0)
    assert first.finish(100).complete and second.finish(50).complete
    received = output.read(150)
    assert sorted(r["record_id"] for r in received) == [f"r{i:05d}" for i in range(150)]


def test_an_output_that_cannot_take_the_rows_says_so(tmp_path: Path) -> None:
    """Files: the write raises. Kafka: finish reports the chunk incomplete, with counts."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    with pytest.raises(Exception):  # noqa: B017 - fsspec's own error for the path
        files = open_sink(
            _spec({"files": {"path": str(blocked), "format": "parquet"}}),
            KafkaSettings(),
            job=JOB,
            chunk=0,
            model=MODEL,
        )
        files.begin()
        files.write(0, _block(0, 10), 0)
    dead = service_url("kafka").rsplit(":", 1)[0] + ":1"  # nothing listens there
    kafka = open_sink(
        _spec({"kafka": {"topic": "never", "delivery_timeout_seconds": 1}}),
        KafkaSettings(bootstrap_servers=dead),
        job=JOB,
        chunk=0,
        model=MODEL,
    )
    kafka.begin()
    kafka.write(0, _block(0, 10), 0)
    delivery = kafka.finish(10)
    assert not delivery.complete
    assert delivery.delivered == 0 and delivery.failed == 10 and delivery.first_error
