"""Batch transform jobs through the control plane: the methods of the embedded
:class:`~slipway.batch.service.BatchService`, with its arguments and return types.

A submission is checked by the server (model, input columns, output) and queued for the
platform's workers; :meth:`RemoteBatch.wait` polls it until it ends, as the embedded
``wait`` does. Paths in a spec are read by the server's workers, so they must be
reachable from there (an object store, or a folder they share). ``actor`` is accepted for
the embedded signature's sake and ignored: the server records the token's holder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slipway.batch.resources import BatchChunk, BatchJob
from slipway.batch.service import check_limit
from slipway.batch.spec import TERMINAL, BatchJobSpec
from slipway.client.transport import Transport
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.waiting import wait_until_final


class RemoteBatch:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def submit(
        self, spec: BatchJobSpec | Mapping[str, Any], *, actor: str | None = None
    ) -> BatchJob:
        """Check ``spec``, plan it into chunks and queue them; the job starts Pending."""
        body = spec.model_dump(mode="json") if isinstance(spec, BatchJobSpec) else dict(spec)
        response = self.transport.request("POST", "/batch-jobs", json=body)
        return BatchJob.model_validate(response.json())

    def get(self, name: str) -> BatchJob:
        validate_name(name, field="name")
        return BatchJob.model_validate(self.transport.request("GET", f"/batch-jobs/{name}").json())

    def chunks(self, name: str) -> Listing[BatchChunk]:
        validate_name(name, field="name")
        response = self.transport.request("GET", f"/batch-jobs/{name}/chunks")
        return Listing(BatchChunk.model_validate(c) for c in response.json())

    def list(self, limit: int = 50) -> Listing[BatchJob]:
        params = {"limit": check_limit(limit)}  # the server's own check, named as in-process
        response = self.transport.request("GET", "/batch-jobs", params=params)
        return Listing(BatchJob.model_validate(j) for j in response.json())

    def wait(self, name: str, timeout: float = 3600.0) -> BatchJob:
        """Poll the job until it is Completed, Failed or Stopped; ``TimeoutError`` after
        ``timeout`` seconds."""
        return wait_until_final(
            lambda: self.get(name),
            lambda job: job.state,
            TERMINAL,
            what=f"batch job {name}",
            timeout=timeout,
            interval=0.5,
        )

    def stop(self, name: str, *, actor: str | None = None) -> None:
        """Stop the job: queued chunks are cancelled, running ones finish and are kept."""
        validate_name(name, field="name")
        # Stopping twice is a Conflict on the second: not repeatable.
        self.transport.request("POST", f"/batch-jobs/{name}/stop", repeatable=False)

    def resume(self, name: str, *, actor: str | None = None) -> BatchJob:
        """Run a Failed or Stopped job's unfinished chunks again."""
        validate_name(name, field="name")
        response = self.transport.request("POST", f"/batch-jobs/{name}/resume")
        return BatchJob.model_validate(response.json())


__all__ = ["RemoteBatch"]
