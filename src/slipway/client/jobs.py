"""Training and tuning jobs through the control plane: the methods of the embedded
:class:`~slipway.training.service.TrainingService` and
:class:`~slipway.tuning.service.TuningService`, with their arguments and return types.

A job's code comes from the caller's machine: a ``source_dir`` or ``code_paths`` folder
that exists here is packed and uploaded as a code bundle (:mod:`slipway.client.code`)
and the spec sent names the bundle; anything else (a bundle reference, a folder the
admin declared on the workers) is sent as written. The workers run the code, not the
caller. A spec given as a dict is otherwise sent as written and checked by the server,
whose errors name the field as the embedded service's do.
"""

from __future__ import annotations

from typing import Any

from slipway.client.code import RemoteCode
from slipway.client.transport import POLL_SECONDS, Transport, listing
from slipway.core.logsink import LogLine
from slipway.core.resource import Listing
from slipway.core.waiting import wait_until_final
from slipway.training.resources import TrainingJob
from slipway.training.spec import TERMINAL as TRAINING_TERMINAL
from slipway.training.spec import TrainingJobSpec
from slipway.tuning.resources import Trial, TuningJob
from slipway.tuning.spec import TERMINAL as TUNING_TERMINAL
from slipway.tuning.spec import TuningJobSpec


def _body(spec: TrainingJobSpec | TuningJobSpec | dict[str, Any]) -> dict[str, Any]:
    return spec.model_dump(mode="json") if not isinstance(spec, dict) else dict(spec)


class RemoteTraining:
    """``client.training``: every method of the embedded service. ``actor`` is accepted
    for the embedded signatures' sake and not sent: the server audits the token's holder."""

    def __init__(self, transport: Transport, code: RemoteCode) -> None:
        self.transport = transport
        self.code = code

    def submit(
        self, spec: TrainingJobSpec | dict[str, Any], *, actor: str | None = None
    ) -> TrainingJob:
        """Queue a job; a worker runs it, from its ``source_dir`` uploaded as a code
        bundle. Sent once: job names are unique, so a retry after a lost answer would only
        meet a Conflict."""
        del actor  # the server's caller
        body = _body(spec)
        if isinstance(body.get("source_dir"), str):
            body["source_dir"] = self.code.ship_source_dir(body["source_dir"])
        response = self.transport.request("POST", "/jobs", json=body)
        return TrainingJob.model_validate(response.json())

    def get(self, name: str) -> TrainingJob:
        return TrainingJob.model_validate(self.transport.request("GET", f"/jobs/{name}").json())

    def jobs(self, limit: int = 50) -> Listing[TrainingJob]:
        response = self.transport.request("GET", "/jobs", params={"limit": limit})
        return listing(TrainingJob, response.json())

    def wait(self, name: str, timeout: float = 600.0) -> TrainingJob:
        """Poll the job until it has finished, as the embedded ``wait`` does."""
        return wait_until_final(
            lambda: self.get(name),
            lambda job: job.state,
            TRAINING_TERMINAL,
            what=f"training job {name}",
            timeout=timeout,
            interval=POLL_SECONDS,
        )

    def stop(self, name: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        self.transport.request("POST", f"/jobs/{name}/stop")

    def logs(self, name: str, after: int = 0) -> Listing[LogLine]:
        response = self.transport.request("GET", f"/jobs/{name}/logs", params={"after": after})
        return listing(LogLine, response.json())


class RemoteTuning:
    """``client.tuning``: every method of the embedded service. ``actor`` is accepted for
    the embedded signatures' sake and not sent: the server audits the token's holder."""

    def __init__(self, transport: Transport, code: RemoteCode) -> None:
        self.transport = transport
        self.code = code

    def submit(
        self, spec: TuningJobSpec | dict[str, Any], *, actor: str | None = None
    ) -> TuningJob:
        """Start a tuning job, its ``trial`` shipped from its ``code_paths`` as a code
        bundle; sent once (names are unique)."""
        del actor  # the server's caller
        body = _body(spec)
        paths, trial = body.get("code_paths"), body.get("trial")
        if isinstance(paths, list) and isinstance(trial, str):
            body["code_paths"] = self.code.ship_code_paths([str(p) for p in paths], [trial])
        response = self.transport.request("POST", "/tuning-jobs", json=body)
        return TuningJob.model_validate(response.json())

    def get(self, name: str) -> TuningJob:
        return TuningJob.model_validate(
            self.transport.request("GET", f"/tuning-jobs/{name}").json()
        )

    def jobs(self, limit: int = 50) -> Listing[TuningJob]:
        response = self.transport.request("GET", "/tuning-jobs", params={"limit": limit})
        return listing(TuningJob, response.json())

    def trials(self, name: str) -> Listing[Trial]:
        return listing(Trial, self.transport.request("GET", f"/tuning-jobs/{name}/trials").json())

    def wait(self, name: str, timeout: float = 600.0) -> TuningJob:
        """Poll the job until it has finished, as the embedded ``wait`` does."""
        return wait_until_final(
            lambda: self.get(name),
            lambda job: job.state,
            TUNING_TERMINAL,
            what=f"tuning job {name}",
            timeout=timeout,
            interval=POLL_SECONDS,
        )

    def stop(self, name: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        self.transport.request("POST", f"/tuning-jobs/{name}/stop")

    def logs(self, name: str, after: int = 0) -> Listing[LogLine]:
        response = self.transport.request(
            "GET", f"/tuning-jobs/{name}/logs", params={"after": after}
        )
        return listing(LogLine, response.json())


__all__ = ["RemoteTraining", "RemoteTuning"]
