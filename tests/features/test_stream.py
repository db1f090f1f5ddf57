"""Streaming ingestion from a real Kafka broker: latest event wins online, every valid record
offline exactly once, invalid records in the dead-letter topic with their reason, offsets
committed only after the writes, lag down to zero."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.settings import KafkaSettings
from slipway.features.definitions import FeatureGroup
from slipway.features.store import FeatureStore
from slipway.features.stream import StreamIngestor
from tests.features.conftest import t

pytestmark = pytest.mark.kafka


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _record(origin: str, when: datetime, temp: float, **extra: Any) -> dict[str, Any]:
    return {"origin": origin, "time_hour": _iso(when), "temp": temp, "wind": 3} | extra


def _produce(bootstrap: str, topic: str, values: list[Any]) -> None:
    """Send ``values`` in order (dicts as JSON, bytes as they are), keyed by origin."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    for value in values:
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        key = value.get("origin") if isinstance(value, dict) else None
        producer.produce(topic, value=data, key=key, on_delivery=delivered)
    assert producer.flush(30) == 0 and failures == []


def _consume_all(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    received: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([topic])
        while len(received) < count and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=count, timeout=0.5):
                error = message.error()
                if error is not None and error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise KafkaException(error)
                if error is None:
                    received.append(message)
    finally:
        consumer.close()
    return received


@pytest.fixture
def dead_letter_topic(kafka_bootstrap: str, kafka_topic: str) -> Iterator[str]:
    """The default dead-letter topic of ``kafka_topic``, deleted after the test."""
    name = f"{kafka_topic}.dlq"
    yield name
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    with contextlib.suppress(KafkaException):  # never created
        admin.delete_topics([name], request_timeout=30)[name].result(timeout=30)


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


def _ingestor(
    fs: FeatureStore, kafka: KafkaSettings, topic: str, group_id: str, **options: Any
) -> StreamIngestor:
    return StreamIngestor(fs, kafka, "weather", topic=topic, group_id=group_id, **options)


def _offline(fs: FeatureStore) -> list[tuple[str, datetime, float]]:
    rows = fs.read_offline("weather").to_pylist()
    return sorted((r["origin"], r["time_hour"], r["temp"]) for r in rows)


def test_out_of_order_and_duplicate_events_end_with_the_latest_online(
    fs: FeatureStore,
    weather: FeatureGroup,
    kafka: KafkaSettings,
    kafka_topic: str,
    dead_letter_topic: str,
) -> None:
    events = [
        _record("JFK", t(1, 3), 13.0),
        _record("JFK", t(1, 1), 11.0),  # older: must not overwrite online
        _record("LGA", t(1, 2), 22.0),
        _record("JFK", t(1, 3), 13.0),  # a duplicate
        _record("JFK", t(1, 2), 12.0),
        _record("LGA", t(1, 1), 21.0),
        _record("EWR", t(1, 5), 35.0),
    ]
    _produce(kafka.bootstrap_servers or "", kafka_topic, events)
    # Micro-batches of two: the newest JFK event and the older ones land in different
    # batches, so ordering is decided by the online store, not within one write.
    with _ingestor(fs, kafka, kafka_topic, "g-order", batch_records=2, actor="cli:x") as ingestor:
        stats = ingestor.run(max_records=len(events), idle_timeout=30)
        assert (stats.consumed, stats.ingested, stats.dead_lettered) == (7, 7, 0)
        assert stats.batches == 4
        assert ingestor.lag() == 0

    latest = {"JFK": (t(1, 3), 13.0), "LGA": (t(1, 2), 22.0), "EWR": (t(1, 5), 35.0)}
    for origin, (when, temp) in latest.items():
        record = fs.get_record("weather", origin)
        assert record is not None
        assert (record.event_time, record.values["temp"]) == (when, temp)
    assert _offline(fs) == sorted((e["origin"], _parse(e["time_hour"]), e["temp"]) for e in events)
    ingests = fs.ingests("weather")
    assert {i.kind for i in ingests} == {"stream"} and sum(i.rows for i in ingests) == 7
    assert ingests[0].source == f"kafka://{kafka_topic}"
    # The stream's start is audited once, as its starter; its four micro-batches are not.
    audited = [(e.actor, e.action, e.details) for e in fs.audit.list(action="feature_group.")]
    assert audited[0] == (
        "cli:x",
        "feature_group.stream",
        {"topic": kafka_topic, "consumer_group": "g-order"},
    )
    assert not [entry for entry in audited if entry[1] == "feature_group.ingest"]


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_invalid_records_go_to_the_dead_letter_topic_and_the_rest_are_ingested(
    fs: FeatureStore,
    weather: FeatureGroup,
    kafka: KafkaSettings,
    kafka_topic: str,
    dead_letter_topic: str,
) -> None:
    bootstrap = kafka.bootstrap_servers or ""
    values: list[Any] = [
        _record("JFK", t(1, 1), 1.0),
        b"{not json",
        _record("LGA", t(1, 1), 2.0, wind="gusty"),  # wrong type
        {"time_hour": _iso(t(1, 1)), "temp": 3.0},  # no record identifier
        b"[1, 2]",
        _record("EWR", t(1, 1), 4.0, colour="red"),  # unknown column
        _record("JFK", t(1, 2), 5.0),
    ]
    _produce(bootstrap, kafka_topic, values)
    with _ingestor(fs, kafka, kafka_topic, "g-dlq") as ingestor:
        stats = ingestor.run(max_records=len(values), idle_timeout=30)
    assert (stats.consumed, stats.ingested, stats.dead_lettered) == (7, 2, 5)
    assert _offline(fs) == [("JFK", t(1, 1), 1.0), ("JFK", t(1, 2), 5.0)]
    assert fs.get_record("weather", "LGA") is None

    letters = _consume_all(bootstrap, dead_letter_topic, 5)
    assert len(letters) == 5
    bodies = [json.loads(m.value() or b"") for m in letters]
    assert [b["offset"] for b in bodies] == [1, 2, 3, 4, 5]
    assert all(b["topic"] == kafka_topic and b["feature_group"] == "weather" for b in bodies)
    headers = [dict(m.headers() or []) for m in letters]
    for body, header in zip(bodies, headers, strict=True):
        assert header["slipway-error"] == body["reason"].encode()
        assert header["slipway-source"] == f"{kafka_topic}/0/{body['offset']}".encode()
    bad_json, wrong_type, no_key, array, unknown = bodies
    assert bad_json["reason"].startswith("not JSON") and bad_json["value"] == "{not json"
    assert wrong_type["reason"] == "column 'wind': values do not convert to int64"
    assert wrong_type["problems"] == [
        {"column": "wind", "message": "values do not convert to int64"}
    ]
    assert json.loads(wrong_type["value"])["wind"] == "gusty"
    assert letters[1].key() == b"LGA"
    assert no_key["reason"] == "column 'origin': required column is missing"
    assert array["reason"] == "not a JSON object (got array)"
    assert unknown["reason"] == "column 'colour': unknown column(s) for this feature group"


def test_offsets_are_committed_and_a_restart_consumes_only_what_is_new(
    fs: FeatureStore,
    weather: FeatureGroup,
    kafka: KafkaSettings,
    kafka_topic: str,
    dead_letter_topic: str,
) -> None:
    bootstrap = kafka.bootstrap_servers or ""
    _produce(bootstrap, kafka_topic, [_record(f"A{i}", t(1), float(i)) for i in range(50)])
    with _ingestor(fs, kafka, kafka_topic, "g-commit", batch_records=20) as ingestor:
        assert ingestor.run(max_records=50, idle_timeout=30).ingested == 50
        assert ingestor.lag() == 0
    with _ingestor(fs, kafka, kafka_topic, "g-commit") as again:
        assert again.run(idle_timeout=3).consumed == 0
        _produce(bootstrap, kafka_topic, [_record("B", t(2), 9.0)])
        stats = again.run(max_records=1, idle_timeout=30)
        assert (stats.consumed, stats.ingested, stats.lag) == (1, 1, 0)
    assert len(_offline(fs)) == 51


@pytest.mark.parametrize("kafka_topic", [3], indirect=True)
def test_lag_counts_what_is_not_committed_over_every_partition(
    fs: FeatureStore,
    weather: FeatureGroup,
    kafka: KafkaSettings,
    kafka_topic: str,
    dead_letter_topic: str,
) -> None:
    _produce(
        kafka.bootstrap_servers or "",
        kafka_topic,
        [_record(f"K{i % 7}", t(1, i % 24), float(i)) for i in range(90)],
    )
    with _ingestor(fs, kafka, kafka_topic, "g-lag", batch_records=30) as ingestor:
        first = ingestor.run(max_records=30, idle_timeout=30)
        assert first.partitions == 3 and first.lag == 60
        final = ingestor.run(idle_timeout=3)
        assert (final.consumed, final.ingested, final.lag) == (90, 90, 0)
    assert len(_offline(fs)) == 90


def test_a_replay_after_a_crash_is_written_offline_once(
    fs: FeatureStore,
    weather: FeatureGroup,
    kafka: KafkaSettings,
    kafka_topic: str,
    dead_letter_topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = [_record("JFK", t(1, h), float(h)) for h in (2, 1, 3)]
    _produce(kafka.bootstrap_servers or "", kafka_topic, events)
    with _ingestor(fs, kafka, kafka_topic, "g-crash") as crashing:
        # The process dies after the writes, before the offsets are committed.
        monkeypatch.setattr(crashing, "_commit", lambda _messages: None)
        assert crashing.run(max_records=3, idle_timeout=30).ingested == 3
    fs.online.delete("weather", ["JFK"])  # as if the online write had been lost too
    with _ingestor(fs, kafka, kafka_topic, "g-crash") as restarted:
        stats = restarted.run(max_records=3, idle_timeout=30)
        assert (stats.consumed, stats.ingested, stats.replayed, stats.lag) == (3, 3, 3, 0)
    assert _offline(fs) == [("JFK", t(1, h), float(h)) for h in (1, 2, 3)]
    record = fs.get_record("weather", "JFK")
    assert record is not None and record.values["temp"] == 3.0


def test_opening_checks_the_group_the_topic_and_the_options(
    fs: FeatureStore, weather: FeatureGroup, kafka: KafkaSettings, kafka_topic: str
) -> None:
    with pytest.raises(NotFound, match="feature group 'nope'"):
        StreamIngestor(fs, kafka, "nope", topic=kafka_topic)
    with pytest.raises(NotFound, match="topic 'missing-topic"):
        _ingestor(fs, kafka, f"missing-topic-{uuid.uuid4().hex[:8]}", "g")
    with pytest.raises(InvalidInput) as info:
        _ingestor(fs, kafka, "bad topic", "g")
    assert info.value.field == "topic"
    with pytest.raises(InvalidInput) as info:
        _ingestor(fs, kafka, kafka_topic, "g", timezone="Mars/Olympus")
    assert info.value.field == "timezone"
    with pytest.raises(InvalidInput) as info:
        StreamIngestor(fs, KafkaSettings(), "weather", topic=kafka_topic)
    assert info.value.field == "kafka.bootstrap_servers"


SPEC = """
name: weather
record_identifiers: [{name: origin}]
event_time: time_hour
features:
  - {name: temp, type: float}
  - {name: wind, type: int}
"""


def test_cli_streams_until_max_records(
    kafka_bootstrap: str,
    kafka_topic: str,
    dead_letter_topic: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("SLIPWAY_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    spec = tmp_path / "weather.yaml"
    spec.write_text(SPEC)
    assert runner.invoke(app, ["features", "create", "-f", str(spec)]).exit_code == 0
    _produce(
        kafka_bootstrap,
        kafka_topic,
        [_record("JFK", t(1), 1.0), b"oops", _record("LGA", t(1), 2.0)],
    )
    args = ["features", "stream", "weather", "--topic", kafka_topic, "--max-records", "3"]
    result = runner.invoke(app, [*args, "--timeout", "30"])
    assert result.exit_code == 0, result.output
    assert "consumed 3 · ingested 2 · dead-lettered 1 · lag 0" in result.stdout
    result = runner.invoke(app, [*args, "--timeout", "2", "--output", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) | {"partitions": 1} == {
        "consumed": 0,
        "ingested": 0,
        "dead_lettered": 0,
        "replayed": 0,
        "batches": 0,
        "partitions": 1,
        "lag": 0,
    }
    missing = runner.invoke(app, ["features", "stream", "nope", "--topic", kafka_topic])
    assert missing.exit_code == 1 and "feature group 'nope' does not exist" in missing.output


def test_the_garbage_collector_is_paused_while_running_and_restored_after(
    fs: FeatureStore,
    weather: FeatureGroup,
    kafka: KafkaSettings,
    kafka_topic: str,
    dead_letter_topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Micro-batches are written with automatic collection off (their objects are freed
    by refcounting; collections walking them cost 15-30 % of a stream's time); a full
    collection still runs every COLLECT_SECONDS, busy or idle, and the collector's state
    is restored."""
    import gc

    import slipway.features.stream as stream

    bootstrap = kafka.bootstrap_servers or ""
    _produce(bootstrap, kafka_topic, [_record(f"A{i}", t(1), float(i)) for i in range(6)])
    monkeypatch.setattr(stream, "COLLECT_SECONDS", 0.0)  # a collection after every batch
    collections: list[int] = []

    def started(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    enabled_during: list[bool] = []
    assert gc.isenabled()
    with _ingestor(fs, kafka, kafka_topic, "g-gc", batch_records=2) as ingestor:
        flush = ingestor._flush

        def watched() -> None:
            enabled_during.append(gc.isenabled())
            flush()

        monkeypatch.setattr(ingestor, "_flush", watched)
        gc.callbacks.append(started)
        try:
            assert ingestor.run(max_records=6, idle_timeout=30).ingested == 6
            assert 2 in collections  # the full collections ran
            # While idle too (nothing to write): other threads of the process make garbage.
            collections.clear()
            assert ingestor.run(idle_timeout=1.0).consumed == 6
            assert 2 in collections
        finally:
            gc.callbacks.remove(started)
    assert gc.isenabled()
    assert enabled_during and not any(enabled_during)
