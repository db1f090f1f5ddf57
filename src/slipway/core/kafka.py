"""What every Kafka client Slipway opens shares: connection settings and topic handling.

The client library is confluent-kafka (librdkafka); its configuration is a flat dict of
librdkafka properties, built here from :class:`~slipway.core.settings.KafkaSettings` so
that producers and consumers in every capability reach the broker the same way. Kafka's
errors are translated here too: a missing topic is :class:`NotFound`, a broker that does
not answer is :class:`BackendUnavailable`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # documented, not in __all__
    AdminClient,
    NewTopic,
)

from slipway.core.errors import BackendUnavailable, InvalidInput, NotFound
from slipway.core.settings import KafkaSettings

log = logging.getLogger("slipway.kafka")

ADMIN_SECONDS = 15.0
# Kafka's own rule for topic names (kafka.common.internals.Topic).
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def client_config(settings: KafkaSettings) -> dict[str, Any]:
    """The librdkafka properties that connect to the configured broker.

    Raises :class:`InvalidInput` when no bootstrap servers are configured. SASL uses the
    PLAIN mechanism when a user name is set (over ``SASL_SSL`` in production).
    """
    if not settings.bootstrap_servers:
        raise InvalidInput(
            "Kafka is not configured: set kafka.bootstrap_servers", field="kafka.bootstrap_servers"
        )
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol,
    }
    if settings.sasl_username:
        config |= {
            "sasl.mechanisms": "PLAIN",
            "sasl.username": settings.sasl_username,
            "sasl.password": settings.sasl_password or "",
        }
    return config


def validate_topic(name: str, *, field: str) -> str:
    """``name`` if Kafka accepts it as a topic name, else :class:`InvalidInput`."""
    if not _TOPIC.fullmatch(name) or name in {".", ".."}:
        raise InvalidInput(
            f"{field} {name!r} is not a valid Kafka topic name: letters, digits, '.', '_'"
            " and '-', at most 249 characters",
            field=field,
        )
    return name


@dataclass(frozen=True)
class TopicInfo:
    name: str
    id: str  # the topic's UUID: a topic deleted and created again gets a new one
    partitions: int


def _code(exc: KafkaException) -> int | None:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else None


def describe_topic(admin: AdminClient, topic: str) -> TopicInfo:
    """The topic's id and partition count; :class:`NotFound` if it does not exist."""
    future = admin.describe_topics(TopicCollection([topic]), request_timeout=ADMIN_SECONDS)
    try:
        description = future[topic].result(timeout=ADMIN_SECONDS + 5)
    except KafkaException as exc:
        if _code(exc) == KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise NotFound(f"Kafka topic {topic!r} does not exist") from None
        raise BackendUnavailable(f"cannot describe Kafka topic {topic!r}: {exc}") from None
    return TopicInfo(topic, str(description.topic_id), len(description.partitions))


def ensure_topic(admin: AdminClient, topic: str, *, partitions: int) -> None:
    """Create ``topic`` with ``partitions`` partitions (and the broker's default replication)
    unless it exists. When creating is not allowed, only log: the broker may still create
    it on first use, and if it cannot, that first produce fails loudly."""
    try:
        describe_topic(admin, topic)
        return
    except NotFound:
        pass
    new = NewTopic(topic, num_partitions=partitions)
    future = admin.create_topics([new], request_timeout=ADMIN_SECONDS)
    try:
        future[topic].result(timeout=ADMIN_SECONDS + 5)
        log.info("created Kafka topic %s", topic)
    except KafkaException as exc:
        if _code(exc) != KafkaError.TOPIC_ALREADY_EXISTS:
            log.warning("could not create Kafka topic %s: %s", topic, exc)
