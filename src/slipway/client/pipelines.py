"""Pipelines and their schedules through the control plane: the methods of the embedded
:class:`~slipway.pipelines.service.PipelineService` and
:class:`~slipway.pipelines.schedules.Schedules`, with their arguments and return types.

A pipeline is defined with the DSL on the caller's machine and registered as data: the
client traces it into its definition (:func:`slipway.pipelines.definition.define`, which
imports the code here) and sends that to ``PUT /pipelines/{name}``. The control plane
never imports it; the workers do, from the definition's ``code_paths``, which the client
ships as code bundles (the packages the steps import, :mod:`slipway.client.code`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from slipway.client.code import RemoteCode
from slipway.client.transport import POLL_SECONDS, Transport, listing
from slipway.core.logsink import LogLine
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.core.waiting import wait_until_final
from slipway.pipelines.definition import define
from slipway.pipelines.dsl import PipelineFunction
from slipway.pipelines.resources import (
    Catchup,
    Execution,
    Pipeline,
    PipelineDefinition,
    Schedule,
    ScheduleFire,
    ScheduleSpec,
)
from slipway.pipelines.states import TERMINAL_EXECUTIONS


class RemotePipelines:
    """``client.pipelines``. Left out, being in-process only: ``advance`` (the
    orchestrator's step, run by the control plane itself), ``start``'s ``trigger`` and
    ``session`` (the server records a REST start as ``{"type": "manual", "via": "rest"}``).
    ``actor`` is accepted for the embedded signatures' sake and not sent: the server
    audits the token's holder."""

    def __init__(self, transport: Transport, code: RemoteCode) -> None:
        self.transport = transport
        self.code = code

    # -- definitions ---------------------------------------------------------------

    def register(
        self, pipeline: PipelineFunction | PipelineDefinition | str, *, actor: str | None = None
    ) -> Pipeline:
        """Register (or update) a pipeline: a ``@pipeline`` function, a ``module:attribute``
        naming one, or a definition built already. The steps' code goes along as code
        bundles, so the workers run what was registered."""
        del actor  # the server's caller
        definition = pipeline if isinstance(pipeline, PipelineDefinition) else define(pipeline)
        graph = definition.graph
        shipped = self.code.ship_code_paths(
            graph.code_paths, [node.function for node in graph.steps.values()]
        )
        definition = definition.model_copy(
            update={"graph": graph.model_copy(update={"code_paths": shipped})}
        )
        response = self.transport.request(
            "PUT", f"/pipelines/{definition.name}", json=definition.model_dump(mode="json")
        )
        return Pipeline.model_validate(response.json())

    def get(self, name: str) -> Pipeline:
        return Pipeline.model_validate(self.transport.request("GET", f"/pipelines/{name}").json())

    def pipelines(self) -> Listing[Pipeline]:
        return listing(Pipeline, self.transport.request("GET", "/pipelines").json())

    # -- executions ----------------------------------------------------------------

    def start(
        self, name: str, parameters: dict[str, Any] | None = None, *, actor: str | None = None
    ) -> str:
        """Start an execution of a registered pipeline; returns its id. Sent once (a
        retried start would start a second execution)."""
        del actor  # the server's caller
        response = self.transport.request(
            "POST", f"/pipelines/{name}/executions", json={"parameters": parameters or {}}
        )
        return str(response.json()["id"])

    def describe(self, execution_id: str) -> Execution:
        response = self.transport.request("GET", f"/executions/{execution_id}")
        return Execution.model_validate(response.json())

    def executions(self, pipeline: str | None = None, limit: int = 50) -> Listing[Execution]:
        params: dict[str, Any] = {"limit": limit}
        if pipeline:
            params["pipeline"] = pipeline
        return listing(
            Execution, self.transport.request("GET", "/executions", params=params).json()
        )

    def wait(
        self,
        execution_id: str,
        timeout: float = 600.0,
        progress: Callable[[Execution], None] | None = None,
    ) -> Execution:
        """Poll the execution until it has finished, as the embedded ``wait`` does;
        ``progress`` sees each state read (its steps' states) on the way."""

        def poll() -> Execution:
            current = self.describe(execution_id)
            if progress is not None:
                progress(current)
            return current

        return wait_until_final(
            poll,
            lambda e: str(e.state),
            TERMINAL_EXECUTIONS,
            what=f"execution {execution_id}",
            timeout=timeout,
            interval=POLL_SECONDS,
        )

    def cancel(self, execution_id: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        self.transport.request("POST", f"/executions/{execution_id}/cancel")

    def retry(self, execution_id: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        self.transport.request("POST", f"/executions/{execution_id}/retry")

    def logs(self, execution_id: str, step: str | None = None, after: int = 0) -> Listing[LogLine]:
        params: dict[str, Any] = {"after": after}
        if step:
            params["step"] = step
        response = self.transport.request("GET", f"/executions/{execution_id}/logs", params=params)
        return listing(LogLine, response.json())


class RemoteSchedules:
    """``client.schedules``. Left out, being in-process only: ``tick`` (the scheduler's
    firing, run by ``slipway up`` / ``slipway scheduler``). ``actor`` is accepted for the
    embedded signatures' sake and not sent: the server audits the token's holder."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def create(
        self,
        name: str,
        pipeline: str,
        cron: str,
        *,
        timezone: str = "UTC",
        parameters: dict[str, Any] | None = None,
        catchup: Catchup = "latest",
        start_at: datetime | None = None,
        actor: str | None = None,
    ) -> Schedule:
        del actor  # the server's caller
        body = {
            "name": name,
            "pipeline": pipeline,
            "cron": cron,
            "timezone": timezone,
            "parameters": parameters or {},
            "catchup": catchup,
            "start_at": start_at.isoformat() if start_at else None,
        }
        return Schedule.model_validate(
            self.transport.request("POST", "/schedules", json=body).json()
        )

    def update(self, spec: ScheduleSpec | dict[str, Any], *, actor: str | None = None) -> Schedule:
        """Replace the definition of the schedule ``spec.name`` (``PUT
        /schedules/{name}``); its firings and enabled state stay. The spec is parsed here
        (the same errors as the embedded service's) to name the path; the server checks
        it again and the pipeline it names."""
        del actor  # the server's caller
        schedule = parse_spec(ScheduleSpec, spec)
        name = validate_name(schedule.name, field="name")
        # Replacing with the same definition twice is the same as once: safe to resend.
        answer = self.transport.request(
            "PUT", f"/schedules/{name}", json=schedule.model_dump(mode="json")
        )
        return Schedule.model_validate(answer.json())

    def get(self, name: str) -> Schedule:
        return Schedule.model_validate(self.transport.request("GET", f"/schedules/{name}").json())

    def all(self) -> Listing[Schedule]:
        return listing(Schedule, self.transport.request("GET", "/schedules").json())

    def set_enabled(self, name: str, enabled: bool, *, actor: str | None = None) -> Schedule:
        del actor  # the server's caller
        action = "enable" if enabled else "disable"
        # Setting a flag twice is the same as once: safe to send again.
        response = self.transport.request("POST", f"/schedules/{name}/{action}", repeatable=True)
        return Schedule.model_validate(response.json())

    def delete(self, name: str, *, actor: str | None = None) -> None:
        del actor  # the server's caller
        self.transport.request("DELETE", f"/schedules/{name}")

    def fires(self, name: str) -> Listing[ScheduleFire]:
        return listing(
            ScheduleFire, self.transport.request("GET", f"/schedules/{name}/fires").json()
        )


__all__ = ["RemotePipelines", "RemoteSchedules"]
