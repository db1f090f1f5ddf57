"""Scoring one chunk of a batch job, on a worker.

Each worker process keeps the models it loaded (a job's chunks reuse them). A chunk reads
its rows block by block, predicts, and writes the block's output before reading the next,
so memory stays around one block. The chunk is marked done in the same transaction that
adds its counts to the job; the last chunk to finish writes the manifest.

The output follows the version's declared ``output``: the ``prediction_column`` for a
label, ``<prediction_column>_probability_<class>`` per class for probabilities, both for
``both`` (:func:`~slipway.registry.predict.predictions_table`). With ``explain`` each row
also gets its SHAP attributions, ``<feature>_shap`` per feature and ``base_value``
(:mod:`slipway.explain`; a model without an explainer fails the job, naming why).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from slipway.batch import sources
from slipway.batch.delivery import Delivery
from slipway.batch.outputs import open_sink
from slipway.batch.sinks import FileSink
from slipway.batch.spec import TERMINAL, BatchJobSpec
from slipway.batch.tables import BatchChunkRow, BatchJobRow
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput
from slipway.core.events import EventLog
from slipway.core.settings import Settings
from slipway.core.work import PermanentFailure, WorkContext
from slipway.core.workspace import DEFAULT_WORKSPACE, scoped_resource, validate_workspace
from slipway.explain.base import Explainer, Explanation, Unexplainable
from slipway.explain.build import explainer_of
from slipway.explain.kernel import KernelOptions
from slipway.registry.predict import LoadedModel, load_model, predictions_table, to_batch
from slipway.registry.service import Registry

log = logging.getLogger("slipway.batch")


@dataclass(frozen=True)
class ChunkDeps:
    """What scoring a batch chunk uses of the platform, given once when it is assembled
    (:func:`slipway.workers.handlers.handlers`)."""

    settings: Settings
    db: Database
    events: EventLog
    registry: Registry


_models: dict[tuple[str, str, int, str], LoadedModel] = {}
_models_lock = threading.Lock()


def _model(deps: ChunkDeps, workspace: str, name: str, version: int, digest: str) -> LoadedModel:
    """The workspace's model version, loaded once a process. Kept by its files' digest
    too: a name and version say which model only within one platform, and a process may
    serve chunks of two (a worker moved to another database, or tests in one process)."""
    key = (workspace, name, version, digest)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = load_model(deps.registry.in_workspace(workspace), name, version)
            _models[key] = model
        return model


def run_chunk(context: WorkContext, deps: ChunkDeps) -> dict[str, Any]:
    name, index = context.payload["job"], int(context.payload["chunk"])
    # Items queued before workspaces name none: they were the default workspace's.
    workspace = validate_workspace(context.payload.get("workspace", DEFAULT_WORKSPACE))
    key = (workspace, name)
    db = deps.db
    with db.write() as session:
        job = session.get(BatchJobRow, key)
        chunk = session.get(BatchChunkRow, (workspace, name, index))
        if job is None or chunk is None or job.state in TERMINAL or chunk.state == "done":
            return {"skipped": True}
        spec = BatchJobSpec.model_validate(job.spec)
        source = dict(chunk.source)
        model_ref = (job.model_name, job.model_version, job.digest)
        if job.state == "Pending":
            job.state, job.started_at = "Running", utcnow()
        chunk.state = "running"
    started = time.perf_counter()
    model = _model(deps, workspace, job.model_name, job.model_version, job.digest)
    explainer: Explainer | None = None
    if spec.explain:
        try:
            explainer = explainer_of(model, KernelOptions.of(deps.settings.explain))
        except Unexplainable as exc:
            raise PermanentFailure(f"explain: {exc}") from None
    kept = spec.kept()
    rows = 0
    sink = open_sink(spec, deps.settings.kafka, job=name, chunk=index, model=model_ref)
    sink.begin()
    for piece, table in enumerate(sources.read(source)):
        try:
            batch = to_batch(table, model.schema)
        except InvalidInput as exc:
            raise PermanentFailure(exc.message) from None
        raw = model.predict(batch)
        output = pa.table(
            {
                **{c: table.column(c) for c in kept},
                **predictions_table(raw, spec.prediction_column, model.classes),
                **(attribution_columns(explainer.explain(batch.matrix())) if explainer else {}),
            }
        )
        sink.write(piece, output, rows)
        rows += table.num_rows
        context.heartbeat()
        if context.lease_lost():
            return {"abandoned": True}
    delivery = sink.finish(rows)
    seconds = time.perf_counter() - started
    if not delivery.complete:
        _record_failure(deps, key, index, rows, delivery, seconds)
        raise PermanentFailure(
            f"chunk {index}: {delivery.delivered} of {rows} messages acknowledged,"
            f" {delivery.failed} failed ({delivery.first_error or 'delivery timed out'})"
        )
    _complete(deps, key, index, rows, delivery, seconds)
    return {"rows": rows, "seconds": seconds, "delivered": delivery.delivered}


def attribution_columns(explanation: Explanation) -> dict[str, pa.Array]:
    """``<feature>_shap`` per feature, ``base_value``, and ``explained_class`` when each
    row explains its own highest-scoring class (a multiclass model)."""
    columns = {
        f"{name}_shap": pa.array(explanation.values[:, index])
        for index, name in enumerate(explanation.names)
    }
    columns["base_value"] = pa.array(explanation.base)
    if explanation.class_per_row:
        columns["explained_class"] = pa.array(explanation.classes)
    return columns


def _record_failure(
    deps: ChunkDeps,
    key: tuple[str, str],
    index: int,
    rows: int,
    delivery: Delivery,
    seconds: float,
) -> None:
    with deps.db.write() as session:
        chunk = session.get(BatchChunkRow, (*key, index))
        job = session.get(BatchJobRow, key)
        if chunk is None or job is None:
            return
        chunk.state, chunk.rows, chunk.seconds = "failed", rows, seconds
        chunk.delivered, chunk.failed = delivery.delivered, delivery.failed
        chunk.error = delivery.first_error
        job.delivered += delivery.delivered
        job.failed += delivery.failed


def _complete(
    deps: ChunkDeps,
    key: tuple[str, str],
    index: int,
    rows: int,
    delivery: Delivery,
    seconds: float,
) -> None:
    workspace, name = key
    with deps.db.write() as session:
        chunk = session.get(BatchChunkRow, (*key, index))
        job = session.get(BatchJobRow, key)
        if chunk is None or job is None or chunk.state == "done":
            return
        chunk.state, chunk.rows, chunk.seconds = "done", rows, seconds
        chunk.delivered, chunk.finished_at = delivery.delivered, utcnow()
        job.chunks_done += 1
        job.rows_done += rows
        job.delivered += delivery.delivered
        if job.chunks_done < job.chunks_total or job.state in TERMINAL:
            return
        chunks = session.scalars(
            select(BatchChunkRow)
            .where(BatchChunkRow.workspace == workspace, BatchChunkRow.job == name)
            .order_by(BatchChunkRow.index)
        ).all()
        job.state, job.finished_at = "Completed", utcnow()
        assert job.started_at is not None
        job.manifest = {
            "job": name,
            "model": {"name": job.model_name, "version": job.model_version, "digest": job.digest},
            "spec": job.spec,
            "rows": job.rows_done,
            "delivered": job.delivered,
            "chunks": [
                {
                    "index": c.index,
                    "source": c.source,
                    "rows": c.rows,
                    "seconds": round(c.seconds, 3),
                    "delivered": c.delivered,
                }
                for c in chunks
            ],
            "started_at": job.started_at.isoformat(),
            "finished_at": job.finished_at.isoformat(),
            "seconds": round((job.finished_at - job.started_at).total_seconds(), 3),
        }
        deps.events.append(
            "batch.job_completed",
            scoped_resource(workspace, f"batch/{name}"),
            {"rows": job.rows_done, "delivered": job.delivered},
            session=session,
        )
        # The manifest file is written before "Completed" commits: whoever sees the job
        # completed finds the manifest (written after the commit, a reader polling the
        # state could look for it first). If the write fails, nothing commits and the
        # chunk's retry finishes the job again.
        spec = BatchJobSpec.model_validate(job.manifest["spec"])
        if spec.output.files is not None:
            FileSink(spec.output.files.path, spec.output.files.format).manifest(job.manifest)
