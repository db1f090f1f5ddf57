"""How a stream (:mod:`slipway.features.stream`) cuts its micro-batches unless told
otherwise: kept apart from the stream, so ``slipway features stream --help`` shows them
without loading Kafka's client and the feature store."""

from __future__ import annotations

# Records per micro-batch. A stream slower than this many records a second is cut by time
# (BATCH_SECONDS), so the count only limits a fast stream or one catching up, where each
# micro-batch's fixed costs (a Delta commit, an offset commit, the ingestion's records)
# decide the rate: with a feature view's windows kept, 1,000 per micro-batch gave 12k
# events/s, 10,000 gave 43-51k (BENCHMARKS.md, feature views).
BATCH_RECORDS = 10_000
BATCH_SECONDS = 1.0  # longest wait before a micro-batch is written
