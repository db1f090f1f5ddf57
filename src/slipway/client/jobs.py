"""Training and tuning jobs through the control plane: the methods of the embedded
:class:`~slipway.training.service.TrainingService` and
:class:`~slipway.tuning.service.TuningService`, with their arguments and return types.

A job's spec names code and folders on the workers' machines (``source_dir``,
``module``, ``function``, ``trial``, ``code_paths``): the workers run it, not the caller.
A spec given as a dict is sent as written and checked by the server, whose errors name
the field as the embedded service's do.
"""

from __future__ import annotations

from typing import Any

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


def _body(spec: TrainingJobSpec | TuningJobSpec | dict[str, Any]) -> Any:
    return spec.model_dump(mode="json") if not isinstance(spec, dict) else spec


class RemoteTraining:
    """``client.training``: every method of the embedded service."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def submit(self, spec: TrainingJobSpec | dict[str, Any]) -> TrainingJob:
        """Queue a job; a worker runs it. Sent once: job names are unique, so a retry
        after a lost answer would only meet a Conflict."""
        response = self.transport.request("POST", "/jobs", json=_body(spec))
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

    def stop(self, name: str) -> None:
        self.transport.request("POST", f"/jobs/{name}/stop")

    def logs(self, name: str, after: int = 0) -> Listing[LogLine]:
        response = self.transport.request("GET", f"/jobs/{name}/logs", params={"after": after})
        return listing(LogLine, response.json())


class RemoteTuning:
    """``client.tuning``: every method of the embedded service."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def submit(self, spec: TuningJobSpec | dict[str, Any]) -> TuningJob:
        """Start a tuning job; sent once (names are unique)."""
        response = self.transport.request("POST", "/tuning-jobs", json=_body(spec))
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

    def stop(self, name: str) -> None:
        self.transport.request("POST", f"/tuning-jobs/{name}/stop")

    def logs(self, name: str, after: int = 0) -> Listing[LogLine]:
        response = self.transport.request(
            "GET", f"/tuning-jobs/{name}/logs", params={"after": after}
        )
        return listing(LogLine, response.json())


__all__ = ["RemoteTraining", "RemoteTuning"]
