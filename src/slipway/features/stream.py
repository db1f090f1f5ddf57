"""Streaming ingestion: JSON records from a Kafka topic into a feature group.

A :class:`StreamIngestor` consumes with a consumer group and commits offsets itself
(``enable.auto.commit=false``), in micro-batches cut by count or by time, whichever comes
first. For each micro-batch, in this order:

1. **Verdicts.** Every message is decoded (a JSON object, else invalid) and the objects are
   validated with batch ingestion's own checks, but with a verdict per record that depends
   on the record alone (:mod:`slipway.features.records`: records grouped by shape, each group
   validated as one batch, invalid groups bisected down to the bad records).
2. **Dead letters.** Invalid records go to the dead-letter topic (default ``<topic>.dlq``)
   with the original key and headers, the reason in the ``slipway-error`` header, and a
   JSON value holding the reason, the problems, the source coordinates and the original
   value (:mod:`slipway.features.dead_letters`); the batch waits until the broker has
   acknowledged every letter.
3. **Writes.** Valid records are ingested through :meth:`FeatureStore.ingest` as one
   batch: one Delta commit offline, then online upserts, which never let an older event
   overwrite a newer one (ties: the later record wins; records keep their topic order).
4. **Commit.** Only then are the offsets committed, synchronously.

Delivery: a crash anywhere before step 4 means the micro-batch is consumed again.
Online that is harmless (upserts are idempotent by event time). Offline it would append
the rows twice, so the Delta commit of step 3 also records, per partition, the last
offset it includes (a Delta application transaction, atomic with the rows). A replayed
record at or below that position is already offline and is written online only. Rows are
therefore offline exactly once per topic partition (whatever the consumer group), online
at least once with the same result, and dead letters at least once (they carry their
source partition and offset, so a reader can drop repeats). A topic deleted and created
again has a new topic id, which is part of the position's name, so its offsets start over.

A failed write or dead-letter delivery raises out of :meth:`StreamIngestor.run` without
committing; the next run starts again from the last commit. A failed commit is only
logged: the writes are durable and the next commit covers the same offsets.

While :meth:`StreamIngestor.run` loops, Python's cyclic garbage collector is paused and
run in full every :data:`COLLECT_SECONDS` instead: a micro-batch allocates tens of
thousands of objects (messages, decoded records, rows) that refcounting frees, yet each
allocation burst triggered collections walking them — 15-30 % of a stream's time with a
feature view (BENCHMARKS.md, feature views). What is cyclic garbage waits at most that
long.

Lag is the sum, over the assigned partitions, of the high watermark minus the committed
offset: the records not yet durably ingested.

Not thread-safe: one ingestor, one thread.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.core.kafka import (
    ADMIN_SECONDS,
    client_config,
    describe_topic,
    ensure_topic,
    validate_topic,
)
from slipway.core.settings import KafkaSettings
from slipway.features.dead_letters import DeadLetters, Letter
from slipway.features.definitions import FeatureGroup
from slipway.features.ingest import write_serving
from slipway.features.micro_batches import BATCH_RECORDS, BATCH_SECONDS
from slipway.features.offline.delta import SourcePosition
from slipway.features.records import split_records
from slipway.features.store import FeatureStore

log = logging.getLogger("slipway.features.stream")

LOG_SECONDS = 30.0
_IDLE_POLL_SECONDS = 0.5
_JSON_KINDS = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


@dataclass(frozen=True)
class StreamStats:
    """Counters since the ingestor started. ``consumed`` = ``ingested`` +
    ``dead_lettered`` + records still pending in the current micro-batch."""

    consumed: int
    ingested: int  # valid records written (including ``replayed``)
    dead_lettered: int
    replayed: int  # consumed again after a crash; already offline, re-applied online
    batches: int
    partitions: int  # assigned to this ingestor now
    lag: int | None  # None when it could not be measured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# How often the paused garbage collector runs in full during a stream (see the module).
COLLECT_SECONDS = 10.0


@contextmanager
def _collector_paused() -> Iterator[Callable[[], None]]:
    """Pause automatic garbage collection; the function given runs a full collection when
    the last one is :data:`COLLECT_SECONDS` old. The collector is enabled again at the end
    if it was before."""
    enabled = gc.isenabled()
    last = time.monotonic()

    def collect() -> None:
        nonlocal last
        if enabled and time.monotonic() - last >= COLLECT_SECONDS:
            gc.collect()
            last = time.monotonic()

    gc.disable()
    try:
        yield collect
    finally:
        if enabled:
            gc.enable()


class StreamIngestor:
    """Consume JSON records from ``topic`` into feature group ``group``; see the module.

    Opening checks that the group and the topic exist and creates the dead-letter topic
    (with the source's partition count) when it is missing. Close it, or use it as a
    context manager, to leave the consumer group promptly.
    """

    def __init__(
        self,
        store: FeatureStore,
        kafka: KafkaSettings,
        group: str,
        *,
        topic: str,
        group_id: str | None = None,
        dead_letter_topic: str | None = None,
        batch_records: int = BATCH_RECORDS,
        batch_seconds: float = BATCH_SECONDS,
        timezone: str | None = None,
        start: Literal["earliest", "latest"] = "earliest",
        actor: str | None = None,
    ) -> None:
        store.repo.get(group)  # raises NotFound naming the group
        self.store = store
        self.group = group
        self.topic = validate_topic(topic, field="topic")
        self.dead_letter_topic = validate_topic(
            dead_letter_topic or f"{topic}.dlq", field="dead_letter_topic"
        )
        if self.dead_letter_topic == self.topic:
            raise InvalidInput(
                "the dead-letter topic must differ from the topic", field="dead_letter_topic"
            )
        self.group_id = group_id or f"slipway-features-{group}"
        if batch_records < 1:
            raise InvalidInput("batch_records must be at least 1", field="batch_records")
        if batch_seconds <= 0:
            raise InvalidInput("batch_seconds must be positive", field="batch_seconds")
        if start not in ("earliest", "latest"):
            raise InvalidInput("start must be earliest or latest", field="start")
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InvalidInput(f"unknown time zone {timezone!r}", field="timezone") from None
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.timezone = timezone
        self.start = start

        self._pending: list[Message] = []
        self._batch_started = 0.0
        self._written: dict[int, int] = {}  # partition -> last offset already offline
        self._consumed = self._ingested = self._dead_lettered = self._replayed = 0
        self._batches = 0
        self._closed = False

        config = client_config(kafka)
        admin = AdminClient(config)
        source = describe_topic(admin, self.topic)
        self._topic_id = source.id
        ensure_topic(admin, self.dead_letter_topic, partitions=source.partitions)
        self._dead_letters = DeadLetters(config, self.dead_letter_topic, feature_group=group)
        self._consumer = Consumer(
            config
            | {
                "group.id": self.group_id,
                "client.id": f"slipway-stream-{group}",
                "enable.auto.commit": False,
                "auto.offset.reset": start,
            }
        )
        self._consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        # The start is the user's act; the micro-batches it writes are not audited each.
        store.audit_stream(group, topic=self.topic, group_id=self.group_id, actor=actor)

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> StreamIngestor:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Leave the consumer group. Records consumed but not written are dropped (they
        are not committed, so they are consumed again)."""
        if self._closed:
            return
        self._closed = True
        self._pending = []
        self._consumer.close()
        self._dead_letters.close()

    # -- the loop ----------------------------------------------------------------------

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        max_records: int | None = None,
        idle_timeout: float | None = None,
        on_progress: Callable[[StreamStats], None] | None = None,
        progress_seconds: float = 1.0,
    ) -> StreamStats:
        """Ingest until ``stop`` is set, this run has consumed ``max_records`` records, or
        no record arrived for ``idle_timeout`` seconds; then write what is pending, commit,
        and return the counters (since the ingestor opened). ``on_progress`` gets them,
        with lag, after a micro-batch, at most every ``progress_seconds``."""
        with _collector_paused() as collect:
            return self._run(
                stop, max_records, idle_timeout, on_progress, progress_seconds, collect
            )

    def _run(
        self,
        stop: threading.Event | None,
        max_records: int | None,
        idle_timeout: float | None,
        on_progress: Callable[[StreamStats], None] | None,
        progress_seconds: float,
        collect: Callable[[], None],
    ) -> StreamStats:
        last_record = last_progress = last_log = time.monotonic()
        limit = None if max_records is None else self._consumed + max_records
        while not (stop is not None and stop.is_set()):
            if limit is not None and self._consumed >= limit:
                break
            wanted = self.batch_records - len(self._pending)
            if limit is not None:
                wanted = min(wanted, limit - self._consumed)
            now = time.monotonic()
            wait = _IDLE_POLL_SECONDS
            if self._pending:
                wait = max(0.0, min(wait, self._batch_started + self.batch_seconds - now))
            if self._take(self._consumer.consume(num_messages=wanted, timeout=wait)):
                last_record = time.monotonic()
            now = time.monotonic()
            if self._pending and (
                len(self._pending) >= self.batch_records
                or now - self._batch_started >= self.batch_seconds
            ):
                self._flush()
                if on_progress is not None and now - last_progress >= progress_seconds:
                    on_progress(self.stats())
                    last_progress = now
            if now - last_log >= LOG_SECONDS:
                self._log_stats()
                last_log = now
            collect()  # also while idle: the process's other threads make garbage too
            if idle_timeout is not None and not self._pending and now - last_record >= idle_timeout:
                break
        self._flush()
        final = self.stats()
        if on_progress is not None:
            on_progress(final)
        return final

    def _take(self, messages: list[Message]) -> int:
        taken = 0
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise BackendUnavailable(f"Kafka consumer failed: {error.str()}")
                log.warning("consuming %s: %s", self.topic, error.str())
                continue
            if not self._pending:
                self._batch_started = time.monotonic()
            self._pending.append(message)
            taken += 1
        self._consumed += taken
        return taken

    # -- one micro-batch ---------------------------------------------------------------

    def _flush(self) -> None:
        messages, self._pending = self._pending, []
        if not messages:
            return
        spec = self.store.repo.get(self.group).spec  # follows compatible evolution
        records: list[dict[str, Any]] = []
        origin: list[int] = []  # message index of each decoded record
        letters: list[tuple[int, Letter]] = []
        for index, message in enumerate(messages):
            record, reason = _decode(message.value())
            if record is None:
                letters.append((index, Letter(message, reason)))
            else:
                records.append(record)
                origin.append(index)
        verdicts = split_records(spec, records, timezone=self.timezone)
        for rejection in verdicts.rejected:
            index = origin[rejection.index]
            letters.append((index, Letter(messages[index], rejection.reason, rejection.problems)))
        letters.sort(key=lambda item: item[0])
        self._dead_letters.send([letter for _, letter in letters])
        # Each message's (partition, offset), read once: the writes and the commit need
        # them per partition, and the replay check per valid message.
        coordinates = [(_partition(m), _offset(m)) for m in messages]
        valid = [coordinates[origin[i]] for i in verdicts.indices]
        last = _last_offsets(coordinates)
        self._write(spec, verdicts.valid, valid, last)
        self._commit(last)
        self._batches += 1
        self._ingested += len(valid)
        self._dead_lettered += len(letters)

    def _write(
        self,
        spec: FeatureGroup,
        table: pa.Table,
        valid: list[tuple[int, int]],
        last: dict[int, int],
    ) -> None:
        """Write the valid records (``valid``: their partitions and offsets); ``last``
        is the batch's last offset per partition."""
        if not valid:
            return
        written = self._written
        replayed = [spec.offline and o <= written.get(p, -1) for p, o in valid]
        if any(replayed):
            mask = pa.array(replayed)
            if spec.online:
                write_serving(
                    self.store.online, spec, table.filter(mask), self.store.horizons(spec.name)
                )
            table = table.filter(pc.invert(mask))
            self._replayed += sum(replayed)
        if not table.num_rows:
            return
        if spec.offline:
            last = {p: max(o, written.get(p, -1)) for p, o in last.items()}
        positions = [SourcePosition(self._source(p), o) for p, o in sorted(last.items())]
        self.store.ingest_stream_batch(
            self.group,
            table,
            source=f"kafka://{self.topic}",
            positions=positions if spec.offline else (),
        )
        if spec.offline:
            self._written.update(last)

    def _commit(self, last: dict[int, int]) -> None:
        """Commit, per partition, the offset after the batch's last."""
        offsets = [TopicPartition(self.topic, p, o + 1) for p, o in sorted(last.items())]
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning(
                "committing offsets of %s failed (they will be replayed): %s", self.topic, exc
            )
            return
        for result in results:
            if result.error is not None:
                log.warning(
                    "committing %s[%d] failed (it will be replayed): %s",
                    self.topic,
                    result.partition,
                    result.error,
                )

    # -- partitions --------------------------------------------------------------------

    def _source(self, partition: int) -> str:
        return f"kafka:{self.topic}:{self._topic_id}:{partition}"

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            position = self.store.offline.position(self.group, self._source(tp.partition))
            self._written[tp.partition] = -1 if position is None else position
        log.info("assigned %s partitions %s", self.topic, sorted(tp.partition for tp in partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Write and commit what is pending while the partitions are still ours; otherwise
        # their next owner consumes it again.
        if not self._closed:
            self._flush()
        for tp in partitions:
            self._written.pop(tp.partition, None)

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: another consumer may own them already, so a commit would be
        # refused. Drop their pending records; the owner consumes them from the last commit.
        lost = {tp.partition for tp in partitions}
        kept = [m for m in self._pending if _partition(m) not in lost]
        self._consumed -= len(self._pending) - len(kept)
        self._pending = kept
        for partition in lost:
            self._written.pop(partition, None)

    # -- observing ---------------------------------------------------------------------

    def lag(self) -> int | None:
        """Records on the assigned partitions not yet committed (None if unmeasurable)."""
        try:
            assigned = self._consumer.assignment()
            if not assigned:
                return 0
            total = 0
            for tp in self._consumer.committed(assigned, timeout=ADMIN_SECONDS):
                low, high = self._consumer.get_watermark_offsets(
                    tp, timeout=ADMIN_SECONDS, cached=False
                )
                start = tp.offset if tp.offset >= 0 else (low if self.start == "earliest" else high)
                total += max(0, high - start)
            return total
        except KafkaException as exc:
            log.warning("measuring lag of %s failed: %s", self.topic, exc)
            return None

    def stats(self) -> StreamStats:
        return StreamStats(
            consumed=self._consumed,
            ingested=self._ingested,
            dead_lettered=self._dead_lettered,
            replayed=self._replayed,
            batches=self._batches,
            partitions=len(self._consumer.assignment()),
            lag=self.lag(),
        )

    def _log_stats(self) -> None:
        stats = self.stats()
        log.info(
            "stream %s -> %s: consumed %d, ingested %d, dead-lettered %d, lag %s",
            self.topic,
            self.group,
            stats.consumed,
            stats.ingested,
            stats.dead_lettered,
            "?" if stats.lag is None else stats.lag,
        )


def _last_offsets(coordinates: list[tuple[int, int]]) -> dict[int, int]:
    """The greatest offset of each partition among ``(partition, offset)`` pairs."""
    last: dict[int, int] = {}
    for partition, offset in coordinates:
        if offset > last.get(partition, -1):
            last[partition] = offset
    return last


def _partition(message: Message) -> int:
    partition = message.partition()
    assert partition is not None  # set on every consumed message
    return partition


def _offset(message: Message) -> int:
    offset = message.offset()
    assert offset is not None  # set on every consumed message
    return offset


def _decode(value: bytes | None) -> tuple[dict[str, Any] | None, str]:
    """The record a message holds, or ``None`` and why not."""
    if value is None:
        return None, "the message has no value"
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(record, dict):
        kind = _JSON_KINDS.get(type(record), "number")
        return None, f"not a JSON object (got {kind})"
    return record, ""
