"""How a stream (:mod:`slipway.features.stream`) cuts its micro-batches unless told
otherwise: kept apart from the stream, so ``slipway features stream --help`` shows them
without loading Kafka's client and the feature store."""

from __future__ import annotations

BATCH_RECORDS = 1_000  # records per micro-batch
BATCH_SECONDS = 1.0  # longest wait before a micro-batch is written
