"""Monitors, their runs and reports, ground truth and baselines through the control plane:
the methods of the embedded :class:`~slipway.monitoring.service.Monitoring` and
:class:`~slipway.monitoring.baselines.Baselines`, with their arguments and return types.

Ground truth given as a table (a pandas DataFrame or an Arrow table) travels as an Arrow
IPC stream (:mod:`slipway.core.arrowipc`); a list of records travels as the JSON document
it already is, so each label keeps its own type (a column of Arrow cannot mix numbers and
text). The ``actor`` arguments of the embedded methods are accepted and not sent: the
server records the token's holder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from slipway.client.transport import Transport
from slipway.core.arrowipc import ARROW_STREAM, IpcChunks
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.specs import parse_spec
from slipway.monitoring.resources import (
    ABReport,
    Baseline,
    BaselineConstraints,
    BaselineStatistics,
    ConstraintsUpdate,
    GroundTruthUpload,
    Monitor,
    MonitorReport,
    MonitorRun,
)
from slipway.monitoring.spec import MonitorSpec


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _zoned(value: datetime, field: str) -> str:
    """``value`` as a query parameter: ISO 8601 text, refused here without a time zone as
    the embedded service refuses it (the server would name ``query.<field>``)."""
    if value.tzinfo is None:
        raise InvalidInput(f"{field} needs a time zone (e.g. Z or +02:00)", field=field)
    return value.isoformat()


class RemoteMonitoring:
    """:class:`~slipway.monitoring.service.Monitoring` over HTTP.

    Left out, as they only make sense in process: ``tick`` (the scheduler starts
    scheduled runs) and ``execute`` (a worker runs a queued run).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # -- monitors ----------------------------------------------------------------------

    def create(self, spec: MonitorSpec | Mapping[str, Any], *, actor: str = "") -> Monitor:
        body = spec.model_dump(mode="json") if isinstance(spec, MonitorSpec) else dict(spec)
        response = self.transport.request("POST", "/monitors", json=body)
        return Monitor.model_validate(response.json())

    def update(self, spec: MonitorSpec | Mapping[str, Any], *, actor: str = "") -> Monitor:
        """Replace the spec of the monitor ``spec.name`` (``PUT /monitors/{name}``; its
        kind may not change); its runs and enabled state stay. The spec is parsed here
        (the same errors as the embedded service's) to name the path; the server checks
        it again and what it names (the baseline, the bias facet...)."""
        monitor = parse_spec(MonitorSpec, spec if isinstance(spec, MonitorSpec) else dict(spec))
        # Replacing with the same spec twice is the same as once: safe to resend.
        response = self.transport.request(
            "PUT", f"/monitors/{monitor.name}", json=monitor.model_dump(mode="json")
        )
        return Monitor.model_validate(response.json())

    def get(self, name: str) -> Monitor:
        return Monitor.model_validate(self.transport.request("GET", f"/monitors/{name}").json())

    def list(self, *, endpoint: str | None = None) -> Listing[Monitor]:
        params = {"endpoint": endpoint} if endpoint is not None else None
        response = self.transport.request("GET", "/monitors", params=params)
        return Listing(Monitor.model_validate(m) for m in response.json())

    def set_enabled(self, name: str, enabled: bool, *, actor: str = "") -> Monitor:
        action = "enable" if enabled else "disable"
        # Idempotent: enabling twice leaves it enabled, so a lost answer may be retried.
        response = self.transport.request("POST", f"/monitors/{name}/{action}", repeatable=True)
        return Monitor.model_validate(response.json())

    def delete(self, name: str, *, actor: str = "") -> None:
        self.transport.request("DELETE", f"/monitors/{name}")

    # -- runs --------------------------------------------------------------------------

    def run(
        self,
        name: str,
        *,
        actor: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> MonitorRun:
        """Queue a run over ``[start, end)`` (default: the monitor's window before now);
        a worker executes it: poll :meth:`get_run` until it has finished."""
        body = {"start": _moment(start), "end": _moment(end)}
        response = self.transport.request("POST", f"/monitors/{name}/runs", json=body)
        return MonitorRun.model_validate(response.json())

    def runs(self, name: str, *, limit: int = 100) -> Listing[MonitorRun]:
        response = self.transport.request("GET", f"/monitors/{name}/runs", params={"limit": limit})
        return Listing(MonitorRun.model_validate(r) for r in response.json())

    def get_run(self, run_id: int) -> MonitorRun:
        response = self.transport.request("GET", f"/monitor-runs/{run_id}")
        return MonitorRun.model_validate(response.json())

    def report(self, run_id: int) -> MonitorReport:
        response = self.transport.request("GET", f"/monitor-runs/{run_id}/report")
        return MonitorReport.model_validate(response.json())

    # -- ground truth ------------------------------------------------------------------

    def put_ground_truth(
        self, endpoint: str, records: Any, *, actor: str | None = None
    ) -> GroundTruthUpload:
        """Labels for captured predictions (all or nothing): a list of ``{inference_id,
        row, label}`` objects, or a DataFrame or Arrow table of those columns."""
        path = f"/endpoints/{endpoint}/ground-truth"
        if isinstance(records, list):
            response = self.transport.request("POST", path, json={"records": records})
            return GroundTruthUpload.model_validate(response.json())
        if isinstance(records, pa.RecordBatch):
            records = pa.Table.from_batches([records])
        elif isinstance(records, pd.DataFrame):
            records = pa.Table.from_pandas(records, preserve_index=False)
        if not isinstance(records, pa.Table):
            raise InvalidInput(
                "records must be a list of objects, a pandas DataFrame or an Arrow table",
                field="records",
            )
        response = self.transport.request(
            "POST",
            path,
            content=IpcChunks(records),
            headers={"Content-Type": ARROW_STREAM},
        )
        return GroundTruthUpload.model_validate(response.json())

    # -- A/B tests ---------------------------------------------------------------------

    def ab_test(
        self,
        endpoint: str,
        *,
        since: datetime,
        until: datetime | None = None,
        metric: str = "roc_auc",
        min_difference: float = 0.0,
        min_samples: int = 100,
        confidence: float = 0.95,
        resamples: int = 1000,
        seed: int = 0,
        reference: str | None = None,
    ) -> ABReport:
        """The A/B report of ``endpoint`` over ``[since, until)`` (``until`` default now):
        per-variant quality from ground truth beside its traffic, each variant against
        ``reference`` (default: the heaviest variant) with a seeded bootstrap interval,
        and the rule's verdict."""
        validate_name(endpoint, field="endpoint")
        params: dict[str, Any] = {
            "since": _zoned(since, "since"),
            "metric": metric,
            "min_difference": min_difference,
            "min_samples": min_samples,
            "confidence": confidence,
            "resamples": resamples,
            "seed": seed,
        }
        if until is not None:
            params["until"] = _zoned(until, "until")
        if reference is not None:
            params["reference"] = reference
        response = self.transport.request("GET", f"/endpoints/{endpoint}/ab-test", params=params)
        return ABReport.model_validate(response.json())


class RemoteBaselines:
    """:class:`~slipway.monitoring.baselines.Baselines` over HTTP.

    Left out, as it only makes sense in process: ``document`` (the raw JSON documents the
    evaluators read; :meth:`statistics` and :meth:`constraints` hand out the same content).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def create(
        self,
        name: str,
        *,
        source: dict[str, Any],
        actor: str = "",
        model: str | None = None,
        columns: list[str] | None = None,
        prediction_column: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Baseline:
        """Profile the dataset on the server (which must be able to read its source) and
        suggest constraints; ``progress`` hears when the server starts and has finished."""
        say = progress or (lambda _message: None)
        say("profiling on the server")
        body = {
            "name": name,
            "source": source,
            "model": model,
            "columns": columns,
            "prediction_column": prediction_column,
        }
        response = self.transport.request("POST", "/baselines", json=body)
        created = Baseline.model_validate(response.json())
        say(f"profiled {created.rows} rows x {created.columns} columns")
        return created

    def get(self, name: str) -> Baseline:
        return Baseline.model_validate(self.transport.request("GET", f"/baselines/{name}").json())

    def list(self) -> Listing[Baseline]:
        response = self.transport.request("GET", "/baselines")
        return Listing(Baseline.model_validate(b) for b in response.json())

    def statistics(self, name: str) -> BaselineStatistics:
        response = self.transport.request("GET", f"/baselines/{name}/statistics")
        return BaselineStatistics.model_validate(response.json())

    def constraints(self, name: str) -> BaselineConstraints:
        response = self.transport.request("GET", f"/baselines/{name}/constraints")
        return BaselineConstraints.model_validate(response.json())

    def set_constraints(
        self,
        name: str,
        document: BaselineConstraints | ConstraintsUpdate | Mapping[str, Any],
        *,
        actor: str = "",
    ) -> BaselineConstraints:
        if isinstance(document, ConstraintsUpdate):
            body: Any = document.document()
        elif isinstance(document, BaselineConstraints):
            body = document.model_dump(mode="json")
        else:  # anything but an object is refused by the server, naming the field
            body = dict(document) if isinstance(document, Mapping) else document
        response = self.transport.request("PUT", f"/baselines/{name}/constraints", json=body)
        return BaselineConstraints.model_validate(response.json())

    def delete(self, name: str, *, actor: str | None = None) -> None:
        self.transport.request("DELETE", f"/baselines/{name}")


__all__ = ["RemoteBaselines", "RemoteMonitoring"]
