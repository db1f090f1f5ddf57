"""The Kafka test service (``scripts/services``): a real KRaft broker that takes idempotent
writes, serves them back to a consumer group, and that ``slipway doctor`` reports reachable."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from slipway.cli.main import app

pytestmark = pytest.mark.kafka

COUNT = 1_000


def _consume(consumer: Consumer, count: int, timeout: float = 60.0) -> list[Message]:
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=count - len(received), timeout=1.0):
            error = message.error()
            if error is not None:
                raise KafkaException(error)
            received.append(message)
    return received


def test_idempotent_produce_and_group_consume(kafka_bootstrap: str, kafka_topic: str) -> None:
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    for i in range(COUNT):
        producer.produce(kafka_topic, key=f"key-{i}", value=f"value-{i}", on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0, "messages still in flight after 30 s"
    assert failures == []

    group = f"group-{uuid.uuid4().hex[:12]}"
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([kafka_topic])
        received = _consume(consumer, COUNT)
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()

    # one partition: everything comes back exactly once, in the order it was written
    assert len(received) == COUNT
    assert [m.key() for m in received] == [f"key-{i}".encode() for i in range(COUNT)]
    assert [m.value() for m in received] == [f"value-{i}".encode() for i in range(COUNT)]
    assert [m.offset() for m in received] == list(range(COUNT))
    assert {m.topic() for m in received} == {kafka_topic}

    # the group's committed position is the end of the partition
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(kafka_topic, 0)])
    offsets = admin.list_consumer_group_offsets([request], request_timeout=30)
    committed = offsets[group].result(timeout=30).topic_partitions
    assert [(tp.partition, tp.offset) for tp in committed] == [(0, COUNT)]


@pytest.mark.parametrize("kafka_topic", [3], indirect=True)
def test_topic_fixture_takes_a_partition_count(kafka_bootstrap: str, kafka_topic: str) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(
        kafka_topic, timeout=30
    )
    assert sorted(metadata.topics[kafka_topic].partitions) == [0, 1, 2]


def test_doctor_reports_kafka_reachable(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("SLIPWAY_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    result = CliRunner().invoke(app, ["doctor", "--output", "json"])
    assert result.exit_code == 0, result.output
    checks = {c["backend"]: c for c in json.loads(result.stdout)}
    assert checks["kafka"]["status"] == "ok"
    assert checks["kafka"]["target"] == kafka_bootstrap
    assert checks["kafka"]["detail"].startswith("broker answered ApiVersions")
