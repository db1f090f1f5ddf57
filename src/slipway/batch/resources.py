"""The batch capability's resources: a batch transform job and its chunks.

:class:`~slipway.batch.service.BatchService` returns these, the REST API sends them (and
takes a :class:`~slipway.batch.spec.BatchJobSpec` as the body of a submission), the
remote client decodes them and the CLI prints them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

from slipway.batch.spec import BatchJobSpec
from slipway.core.resource import Resource


class BatchJob(Resource):
    """A batch transform job: its spec, the model version it pinned at submission, its
    progress, and the manifest of what it wrote once it Completed."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "state",
        "model_name",
        "model_version",
        "chunks_done",
        "chunks_total",
        "rows_done",
        "created_by",
        "created_at",
    )

    name: str
    state: str = Field(description="Pending, Running, Completed, Failed or Stopped")
    model_name: str
    model_version: int
    digest: str = Field(description="the model files' digest, checked when a chunk loads it")
    chunks_total: int
    chunks_done: int
    rows_done: int
    delivered: int = Field(description="Kafka messages acknowledged")
    failed: int = Field(description="Kafka messages that could not be delivered")
    manifest: dict[str, Any] | None = Field(description="the files written, once Completed")
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: BatchJobSpec
    chunk_states: dict[str, int] = Field(
        default_factory=dict, description="how many chunks are pending, running, done or failed"
    )


class BatchChunk(Resource):
    """One chunk of a batch job: what it reads, and whether its output is complete."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "job",
        "index",
        "state",
        "rows",
        "delivered",
        "failed",
        "seconds",
        "error",
    )

    job: str
    index: int
    state: str = Field(description="pending, running, done or failed")
    source: dict[str, Any] = Field(description="the file (and row groups) the chunk reads")
    rows: int
    delivered: int
    failed: int
    seconds: float
    error: str | None
    finished_at: datetime | None


__all__ = ["BatchChunk", "BatchJob"]
