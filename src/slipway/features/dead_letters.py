"""The dead-letter topic of a stream: each invalid record, why, and where it came from.

Message layout (documented contract):

- key and headers: the original record's, plus ``slipway-error`` (the reason, at most
  1,000 characters), ``slipway-feature-group`` and ``slipway-source``
  (``topic/partition/offset``);
- value: JSON ``{"reason", "problems": [{"column", "message"}], "feature_group", "topic",
  "partition", "offset", "timestamp", "value"}`` — ``value`` is the original value as
  text, or ``null`` with ``value_base64`` when it is not UTF-8.

The producer is idempotent with ``acks=all``; :meth:`DeadLetters.send` returns only when
the broker has acknowledged every letter, and raises otherwise, so the stream commits its
offsets only once the letters are durable.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message, Producer

from slipway.core.errors import BackendUnavailable

DELIVERY_SECONDS = 30.0
_HEADER_MAX = 1_000


@dataclass(frozen=True)
class Letter:
    """An invalid record: the message, why it is invalid, and the problems found."""

    message: Message
    reason: str
    problems: list[dict[str, str]] = field(default_factory=list)


class DeadLetters:
    def __init__(self, config: dict[str, Any], topic: str, *, feature_group: str) -> None:
        self.topic = topic
        self.feature_group = feature_group
        self._producer = Producer(
            config
            | {
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "delivery.timeout.ms": int(DELIVERY_SECONDS * 1000),
            }
        )

    def send(self, letters: Sequence[Letter]) -> None:
        """Write ``letters`` in order and wait for every acknowledgement; raise
        :class:`BackendUnavailable` if any is missing."""
        if not letters:
            return
        failures: list[str] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error.str())

        for letter in letters:
            value, headers = self._letter(letter)
            while True:
                try:
                    self._producer.produce(
                        self.topic,
                        value=value,
                        key=letter.message.key(),
                        headers=headers,
                        on_delivery=delivered,
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    self._producer.poll(0.05)
        remaining = self._producer.flush(DELIVERY_SECONDS + 5)
        if remaining or failures:
            first = failures[0] if failures else f"{remaining} never acknowledged"
            raise BackendUnavailable(
                f"{len(failures) + remaining} of {len(letters)} invalid records could not be"
                f" written to the dead-letter topic {self.topic!r}: {first}",
                details={"topic": self.topic},
            )

    def close(self) -> None:
        self._producer.flush(DELIVERY_SECONDS)

    def _letter(self, letter: Letter) -> tuple[bytes, list[tuple[str, str | bytes | None]]]:
        message = letter.message
        source = f"{message.topic()}/{message.partition()}/{message.offset()}"
        original = message.headers() or []
        headers: list[tuple[str, str | bytes | None]] = list(
            original.items() if isinstance(original, dict) else original
        )
        headers += [
            ("slipway-error", letter.reason[:_HEADER_MAX].encode()),
            ("slipway-feature-group", self.feature_group.encode()),
            ("slipway-source", source.encode()),
        ]
        value = orjson.dumps(
            {
                "reason": letter.reason,
                "problems": letter.problems,
                "feature_group": self.feature_group,
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
                "timestamp": message.timestamp()[1],
                **_original(message.value()),
            }
        )
        return value, headers


def _original(value: bytes | None) -> dict[str, Any]:
    """The original value: as text, or base64 when it is not UTF-8."""
    if value is None:
        return {"value": None}
    try:
        return {"value": value.decode()}
    except UnicodeDecodeError:
        return {"value": None, "value_base64": base64.b64encode(value).decode()}
