"""Kafka killed and started again while events are being published.

A private broker (``tests/batch/broker.py``: same ports and data on restart) is killed
with SIGKILL while the control plane takes ingests — each one a ``feature_group.ingested``
event in the outbox, in the ingest's own transaction — and ``slipway scheduler`` (a real
process) publishes the outbox to Kafka. The control plane does not need Kafka to accept a
write, so it goes on answering 201 (and reports Kafka down in ``/health``); the scheduler
lives through the outage, reconnects by itself once the broker is back, and every event of
an accepted ingest reaches the topic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.batch.broker import Broker
from tests.chaos.platform import Traffic, control_plane, process
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

GROUP = {
    "name": "riders",
    "record_identifiers": [{"name": "rider"}],
    "event_time": "time",
    "features": [{"name": "trips", "type": "int"}],
}
RECOVERY_SECONDS = 30.0  # from the broker answering again to every held event published


@dataclass
class KafkaPlatform:
    broker: Broker
    services: Services
    api: str
    topic: str


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaPlatform]:
    folder = tmp_path_factory.mktemp("chaos-kafka")
    broker = Broker(folder / "broker")
    broker.start()
    topic = f"chaos.events.{uuid.uuid4().hex[:8]}"
    try:
        # Made before anyone subscribes: a consumer looks again for a missing topic only
        # every few minutes (librdkafka's topic.metadata.refresh.interval.ms).
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[
            topic
        ].result(timeout=30)
        settings = load_settings(
            home=folder / "home",
            database={"url": f"sqlite:///{folder}/meta.db"},
            kafka={"bootstrap_servers": broker.bootstrap, "events_topic": topic},
        )
        services = Services.open(settings)
        try:
            services.features.create_group(GROUP)
            with (
                control_plane(services) as api,
                process(settings, "scheduler", log=folder / "scheduler.log"),
            ):
                yield KafkaPlatform(broker, services, api, topic)
        finally:
            services.close()
    finally:
        broker.kill()


class Published:
    """The events on the topic so far, read by one consumer that lives through the
    broker's restart."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"chaos-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topic])
        self.ingest_ids: set[int] = set()

    def read(self) -> set[int]:
        """Poll what has arrived; the ingest ids of the events seen so far."""
        for message in self.consumer.consume(num_messages=500, timeout=0.2):
            if message.error() is None:
                event = orjson.loads(message.value() or b"{}")
                if event.get("type") == "feature_group.ingested":
                    self.ingest_ids.add(int(event["body"]["ingest_id"]))
        return self.ingest_ids

    def close(self) -> None:
        self.consumer.close()


def test_events_held_while_the_broker_is_away_are_all_published(
    platform: KafkaPlatform, tmp_path: Path
) -> None:
    api, broker = platform.api, platform.broker

    def ingest(client: httpx.Client, index: int) -> httpx.Response:
        record = {"rider": f"r{index}", "time": datetime.now(UTC).isoformat(), "trips": index}
        return client.post(f"{api}/feature-groups/riders/records", json={"records": [record]})

    published = Published(broker.bootstrap, platform.topic)
    try:
        with Traffic(ingest, pause=0.05) as ingests:

            def accepted() -> set[int]:
                return {a.body["id"] for a in list(ingests.answers) if a.status == 201}

            first = eventually(accepted, what="a first ingest accepted")
            eventually(lambda: first <= published.read(), what="its event published", timeout=60)

            broker.kill()
            down = time.monotonic()
            # Writes go on while the broker is away: they do not need it.
            eventually(lambda: ingests.ok_after(down + 1.0, 201), what="ingests while down")
            with httpx.Client(timeout=30) as client:
                health = client.get(f"{api}/health").json()
            kafka = next(b for b in health["backends"] if b["backend"] == "kafka")
            assert health["status"] == "degraded" and kafka["status"] != "ok", health
            held = accepted()

            broker.start()
            up = time.monotonic()
            eventually(
                lambda: held <= published.read(),
                what="every event held during the outage published",
                timeout=RECOVERY_SECONDS,
            )
            took = time.monotonic() - up
        everything = accepted()
        eventually(lambda: everything <= published.read(), what="every event published")
    finally:
        published.close()

    assert {a.status for a in ingests.answers} == {201}, [
        a for a in ingests.answers if a.status != 201
    ][:5]
    assert took < RECOVERY_SECONDS


def test_streaming_ingestion_across_a_restart(platform: KafkaPlatform, tmp_path: Path) -> None:
    """``slipway features stream`` consumes while the broker dies and comes back: it lives
    on, and every record the broker acknowledged to its producer is ingested, online and
    offline, exactly once offline."""
    broker, services = platform.broker, platform.services
    services.features.create_group(GROUP | {"name": "streamed"})
    topic = f"chaos.stream.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=30
    )
    acknowledged: set[str] = set()

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is None:
            acknowledged.add((message.key() or b"").decode())

    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all"}
    )

    def produce(first: int, count: int) -> None:
        for n in range(first, first + count):
            record = {"rider": f"s{n}", "time": datetime.now(UTC).isoformat(), "trips": n}
            producer.produce(topic, key=f"s{n}", value=orjson.dumps(record), on_delivery=delivered)
        producer.poll(0)

    settings = services.settings
    stream_args = ("features", "stream", "streamed", "--topic", topic, "--batch-seconds", "0.2")
    with process(settings, *stream_args, log=tmp_path / "stream.log") as stream:
        produce(0, 50)
        assert producer.flush(30) == 0
        eventually(lambda: services.features.online.count("streamed") == 50, what="50 ingested")

        broker.kill()
        produce(50, 50)  # held by the producer while the broker is away
        assert stream.poll() is None, "the stream ingestor died with the broker"
        broker.start()
        assert producer.flush(60) == 0
        assert len(acknowledged) == 100

        def ingested() -> bool:
            return services.features.online.count("streamed") == len(acknowledged)

        eventually(ingested, what="every acknowledged record ingested", timeout=RECOVERY_SECONDS)
        assert stream.poll() is None, "the stream ingestor died"
    offline = services.features.read_offline("streamed").column("rider").to_pylist()
    assert sorted(offline) == sorted(acknowledged)  # each once: none lost, none twice
    records = services.features.get_records("streamed", [[key] for key in sorted(acknowledged)])
    assert all(r is not None for r in records)
