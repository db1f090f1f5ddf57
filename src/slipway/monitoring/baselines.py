"""Baselines: build them from a dataset, store their documents, let users edit constraints.

A baseline's dataset is one of:

- ``{"file": "<uri>"}`` — Parquet, CSV or JSON lines, on any fsspec URI;
- ``{"training_set": {"entities": "<uri>", "features": [...], "timestamp_column": ...}}``
  — a point-in-time training set built by the feature store;
- ``{"query": "SELECT ..."}`` — SQL over feature groups;
- ``{"model_version": true}`` — the model version's own training data, rebuilt through
  its lineage: the training-set definition it recorded (entity rows, features, and the
  Delta version of every group read), so the baseline sees exactly what training saw.

When the baseline is bound to a model version, only the model's input columns are kept
(its signature) and the model scores the dataset, so the baseline also describes the
``prediction`` a monitor will find in captured traffic.

Creating a baseline, replacing its constraints and deleting it are audited
(``baseline.*``) with the caller's actor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Literal

import fsspec
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from sqlalchemy import select

from slipway.core.artifacts import ArtifactStore
from slipway.core.clock import utcnow
from slipway.core.db.engine import Database
from slipway.core.errors import Conflict, InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.names import validate_name
from slipway.core.resource import Listing
from slipway.core.uris import check_uri
from slipway.core.workspace import scoped_resource
from slipway.features.store import FeatureStore
from slipway.features.views.service import FeatureViews
from slipway.monitoring.baseline import (
    PREDICTION,
    build_statistics,
    suggest_constraints,
    validate_constraints,
)
from slipway.monitoring.resources import (
    Baseline,
    BaselineConstraints,
    BaselineStatistics,
    ConstraintsUpdate,
)
from slipway.monitoring.tables import BaselineRow, MonitorRow
from slipway.registry import probe
from slipway.registry.models import parse_model_ref
from slipway.registry.predict import schema_from_signature
from slipway.registry.service import Registry
from slipway.security.audit import AuditLog

PREFIX = "monitoring/baselines"
SOURCE_KINDS = ("file", "training_set", "query", "model_version")


def _read_file(uri: str) -> pa.Table:
    check_uri(uri, field="source.file")
    name = uri.lower()
    try:
        with fsspec.open(uri, "rb") as handle:
            if name.endswith((".csv", ".csv.gz")):
                return pa_csv.read_csv(handle)
            if name.endswith((".jsonl", ".ndjson", ".json")):
                return pa_json.read_json(handle)
            return pq.read_table(handle)
    except FileNotFoundError:
        raise InvalidInput(f"no file at {uri!r}", field="source.file") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"cannot read {uri!r}: {exc}", field="source.file") from None


class Baselines:
    """The baselines of one workspace (:meth:`in_workspace` gives another's): their rows,
    their documents in the workspace's share of the artifact root, the models they are
    bound to (its registry) and the feature groups they read (its feature store)."""

    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        events: EventLog,
        registry: Registry,
        features: FeatureStore,
        audit: AuditLog | None = None,
        views: FeatureViews | None = None,
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.events = events
        self.registry = registry
        self.features = features
        self.audit = audit or AuditLog(db)
        # A model trained on a feature view is rebuilt through that view (its row-level
        # and window columns too), not from its stored features alone.
        self.views = views
        self.workspace = registry.workspace

    def in_workspace(self, workspace: str) -> Baselines:
        """The baselines of ``workspace`` (a validated name)."""
        if workspace == self.workspace:
            return self
        return Baselines(
            self.db,
            self.artifacts,
            self.events,
            self.registry.in_workspace(workspace),
            self.features.in_workspace(workspace),
            self.audit,
            None if self.views is None else self.views.in_workspace(workspace),
        )

    def folder(self, name: str) -> str:
        """Where baseline ``name``'s documents lie: ``monitoring/baselines/<name>``, in
        the workspace's share of the artifact root."""
        return scoped_resource(self.workspace, f"{PREFIX}/{name}")

    def _resource_name(self, name: str) -> str:
        return scoped_resource(self.workspace, f"baseline/{name}")

    # -- building ----------------------------------------------------------------------

    def _dataset(self, source: dict[str, Any], model: tuple[str, int] | None) -> pa.Table:
        if (
            not isinstance(source, dict)
            or len(source) != 1
            or next(iter(source)) not in SOURCE_KINDS
        ):
            raise InvalidInput(
                f"source must name exactly one of {', '.join(SOURCE_KINDS)}", field="source"
            )
        kind, value = next(iter(source.items()))
        if kind == "file":
            if not isinstance(value, str):
                raise InvalidInput("must be a path or URI", field="source.file")
            return _read_file(value)
        if kind == "query":
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput("must be SQL text", field="source.query")
            return self.features.query(value)
        if kind == "training_set":
            return self._training_set(value, "source.training_set", versions=None)
        if model is None:
            raise InvalidInput("a model_version source needs a model", field="model")
        version = self.registry.get(*model)
        recorded = (version.lineage or {}).get("training_set") or {}
        if not recorded.get("entities"):
            raise InvalidInput(
                f"model {model[0]}:{model[1]} has no recorded training entity rows in its "
                "lineage; give a file, query or training_set source",
                field="source.model_version",
            )
        view = recorded.get("feature_view")
        if isinstance(view, dict) and self.views is not None:
            return self._view_training_set(recorded, view, model)
        return self._training_set(
            {
                "entities": recorded["entities"],
                "features": recorded.get("feature_refs", []),
                "timestamp_column": recorded.get("timestamp_column", "event_time"),
            },
            "source.model_version",
            versions=recorded.get("group_versions"),
        )

    def _view_training_set(
        self, recorded: dict[str, Any], view: dict[str, Any], model: tuple[str, int]
    ) -> pa.Table:
        """The model's training set again: its view at the version it was trained on,
        over its entity rows, the groups pinned to the Delta versions it read."""
        assert self.views is not None
        field = "source.model_version"
        check_uri(recorded["entities"], field=field)
        try:
            stored = self.views.get(str(view.get("name")), int(view.get("version") or 0))
        except (NotFound, InvalidInput, ValueError):
            raise InvalidInput(
                f"model {model[0]}:{model[1]} was trained on feature view"
                f" {view.get('name')!r} version {view.get('version')!r}, which no longer"
                " exists; give a file, query or training_set source",
                field=field,
            ) from None
        if view.get("digest") not in (None, stored.digest):
            raise InvalidInput(
                f"feature view {stored.name!r} version {stored.version} is not the"
                f" definition model {model[0]}:{model[1]} was trained on",
                field=field,
            )
        built = self.views.training_set(
            stored.name,
            _read_file(recorded["entities"]),
            version=stored.version,
            timestamp_column=str(recorded.get("timestamp_column", "event_time")),
            as_known_at=bool(recorded.get("as_known_at", False)),
            versions=recorded.get("group_versions"),
        )
        return built.data

    def _training_set(self, value: Any, field: str, *, versions: dict[str, int] | None) -> pa.Table:
        if not isinstance(value, dict) or not isinstance(value.get("entities"), str):
            raise InvalidInput("needs entities (a URI) and features", field=field)
        refs = value.get("features")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise InvalidInput("needs a list of feature references", field=f"{field}.features")
        check_uri(value["entities"], field=f"{field}.entities")
        built = self.features.training_set(
            _read_file(value["entities"]),
            refs,
            timestamp_column=str(value.get("timestamp_column", "event_time")),
            versions=versions,
        )
        return built.data

    def create(
        self,
        name: str,
        *,
        source: dict[str, Any],
        actor: str,
        model: str | None = None,
        columns: list[str] | None = None,
        prediction_column: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Baseline:
        """Profile the dataset, suggest constraints, store both; returns the baseline."""
        validate_name(name, field="name")
        with self.db.session() as session:
            if session.get(BaselineRow, (self.workspace, name)) is not None:
                raise Conflict(f"baseline {name!r} exists already")
        bound: tuple[str, int] | None = None
        if model is not None:
            model_name, ref = parse_model_ref(model)
            if ref is None:
                raise InvalidInput(
                    "name a version (name:3) or an alias (name@champion)", field="model"
                )
            bound = (model_name, self.registry.resolve(model_name, ref))
        say = progress or (lambda _message: None)
        say("reading the dataset")
        table = self._dataset(source, bound)
        table = self._columns(table, columns, prediction_column, bound, say)
        say(f"profiling {table.num_rows} rows x {table.num_columns} columns")
        statistics = build_statistics(
            table,
            source=source,
            model={"name": bound[0], "version": bound[1]} if bound else None,
        )
        constraints = suggest_constraints(statistics)
        body = orjson.dumps(statistics)
        self.artifacts.put_bytes(f"{self.folder(name)}/statistics.json", body)
        self.artifacts.put_bytes(
            f"{self.folder(name)}/constraints.json",
            orjson.dumps(constraints, option=orjson.OPT_INDENT_2),
        )
        with self.db.write() as session:
            if session.get(BaselineRow, (self.workspace, name)) is not None:
                raise Conflict(f"baseline {name!r} exists already")
            session.add(
                BaselineRow(
                    workspace=self.workspace,
                    name=name,
                    model_name=bound[0] if bound else None,
                    model_version=bound[1] if bound else None,
                    source=source,
                    rows=table.num_rows,
                    columns=table.num_columns,
                    digest=hashlib.sha256(body).hexdigest(),
                    created_by=actor,
                    created_at=utcnow(),
                )
            )
            self.events.append(
                "monitoring.baseline_created",
                self._resource_name(name),
                {"baseline": name, "rows": table.num_rows, "columns": table.num_columns},
                session=session,
            )
            self.audit.changed(
                actor,
                "baseline.create",
                self._resource_name(name),
                {
                    "source": next(iter(source), None),
                    "model": f"{bound[0]}:{bound[1]}" if bound else None,
                    "rows": table.num_rows,
                    "columns": table.num_columns,
                },
                session=session,
            )
        return self.get(name)

    def _columns(
        self,
        table: pa.Table,
        columns: list[str] | None,
        prediction_column: str | None,
        bound: tuple[str, int] | None,
        say: Callable[[str], None],
    ) -> pa.Table:
        schema = None
        if bound is not None:
            schema = schema_from_signature(self.registry.get(*bound).signature)
        wanted = columns or ([c.name for c in schema] if schema else None)
        if prediction_column is not None and prediction_column not in table.column_names:
            raise InvalidInput(
                f"the dataset has no column {prediction_column!r}", field="prediction_column"
            )
        if wanted is not None:
            missing = [c for c in wanted if c not in table.column_names]
            if missing:
                raise InvalidInput(
                    f"the dataset lacks column(s) {', '.join(missing)}", field=missing[0]
                )
        if prediction_column is not None:
            given = table.select([*(wanted or []), prediction_column]) if wanted else table
            return given.rename_columns(
                [PREDICTION if n == prediction_column else n for n in given.column_names]
            )
        kept = table.select(wanted) if wanted is not None else table
        if bound is not None:
            say(f"scoring the dataset with {bound[0]}:{bound[1]}")
            # In a child process (the model's code never runs in the control plane). A
            # binary classifier serving probabilities gives its score (the positive
            # class's probability), as capture keeps it.
            predictions = probe.score(self.registry, *bound, kept)
            if predictions is not None:
                return kept.append_column(PREDICTION, predictions)
        return kept

    # -- reading and editing -----------------------------------------------------------

    def _row(self, name: str) -> BaselineRow:
        with self.db.session() as session:
            row = session.get(BaselineRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"baseline {name!r} does not exist")
            return row

    @staticmethod
    def _resource(row: BaselineRow) -> Baseline:
        model = f"{row.model_name}:{row.model_version}" if row.model_name else None
        return Baseline(
            name=row.name,
            model=model,
            source=row.source,
            rows=row.rows,
            columns=row.columns,
            digest=row.digest,
            created_by=row.created_by,
            created_at=row.created_at,
        )

    def get(self, name: str) -> Baseline:
        return self._resource(self._row(name))

    def list(self) -> Listing[Baseline]:
        with self.db.session() as session:
            return Listing(
                self._resource(row)
                for row in session.scalars(
                    select(BaselineRow)
                    .where(BaselineRow.workspace == self.workspace)
                    .order_by(BaselineRow.name)
                )
            )

    def document(self, name: str, kind: Literal["statistics", "constraints"]) -> dict[str, Any]:
        """A baseline's stored document as plain JSON, the form the evaluators read and
        edit (in-process only; :meth:`statistics` and :meth:`constraints` hand out the
        resources)."""
        self._row(name)
        document: dict[str, Any] = orjson.loads(
            self.artifacts.get_bytes(f"{self.folder(name)}/{kind}.json")
        )
        return document

    def statistics(self, name: str) -> BaselineStatistics:
        return BaselineStatistics.model_validate(self.document(name, "statistics"))

    def constraints(self, name: str) -> BaselineConstraints:
        return BaselineConstraints.model_validate(self.document(name, "constraints"))

    def set_constraints(
        self,
        name: str,
        document: BaselineConstraints | ConstraintsUpdate | dict[str, Any],
        *,
        actor: str,
    ) -> BaselineConstraints:
        """Replace the constraints (validated against the statistics) atomically; returns
        them normalized (defaults filled in). Audited as ``baseline.set_constraints`` once
        the document is stored."""
        if isinstance(document, ConstraintsUpdate):
            document = document.document()
        elif isinstance(document, BaselineConstraints):
            document = document.model_dump(mode="json")
        normalized = validate_constraints(document, self.document(name, "statistics"))
        self.artifacts.put_bytes(
            f"{self.folder(name)}/constraints.json",
            orjson.dumps(normalized, option=orjson.OPT_INDENT_2),
        )
        self.events.append(
            "monitoring.constraints_updated",
            self._resource_name(name),
            {"baseline": name, "by": actor},
        )
        self.audit.changed(
            actor,
            "baseline.set_constraints",
            self._resource_name(name),
            {"columns": len(normalized.get("columns", {}))},
        )
        return BaselineConstraints.model_validate(normalized)

    def delete(self, name: str, *, actor: str | None = None) -> None:
        with self.db.write() as session:
            row = session.get(BaselineRow, (self.workspace, name))
            if row is None:
                raise NotFound(f"baseline {name!r} does not exist")
            users = [
                m.name
                for m in session.scalars(
                    select(MonitorRow).where(MonitorRow.workspace == self.workspace)
                )
                if m.spec.get("baseline") == name
            ]
            if users:
                raise Conflict(f"baseline {name!r} is used by monitor(s) {', '.join(users)}")
            session.delete(row)
            self.audit.changed(actor, "baseline.delete", self._resource_name(name), session=session)
        self.artifacts.delete(self.folder(name))
