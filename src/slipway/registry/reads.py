"""The registry's reads, and the state every part of it shares.

:class:`RegistryReads` is the base of the parts :class:`~slipway.registry.service.Registry`
is made of (registration, approvals, aliases, loading): it declares what the registry
holds (its settings, stores, event and audit logs, workspace) and answers what is
registered — versions by number or alias, models, approval histories, comparisons and
reverse lineage — from Slipway's tables and MLflow's tags.
"""

from __future__ import annotations

from sqlalchemy import func, select

from slipway.core.artifacts import ArtifactStore
from slipway.core.db.engine import Database
from slipway.core.errors import InvalidInput, NotFound
from slipway.core.events import EventLog
from slipway.core.resource import Listing
from slipway.core.settings import Settings
from slipway.core.workspace import scoped_resource
from slipway.registry.card import INTENDED_USE_TAG, OWNER_TAG
from slipway.registry.mlflow_store import MlflowStore
from slipway.registry.models import ApprovalStatus, Output
from slipway.registry.outputs import described_signature, read_tags
from slipway.registry.resources import (
    Comparison,
    ModelInput,
    ModelVersion,
    RegisteredModel,
    Transition,
)
from slipway.registry.tables import ApprovalTransitionRow, ModelInputRow, ModelVersionRow
from slipway.security.audit import AuditLog


class RegistryReads:
    """What the registry holds (set by :class:`~slipway.registry.service.Registry`) and
    its reads."""

    settings: Settings
    db: Database
    artifacts: ArtifactStore
    events: EventLog
    audit: AuditLog
    mlflow: MlflowStore
    workspace: str

    def _resource(self, resource: str) -> str:
        """An event's or audit entry's resource, in this registry's workspace."""
        return scoped_resource(self.workspace, resource)

    def _row(self, name: str, version: int) -> ModelVersionRow:
        with self.db.session() as session:
            row = session.get(ModelVersionRow, (self.workspace, name, version))
            if row is None:
                raise NotFound(f"model {name!r} has no version {version}")
            return row

    def _to_version(
        self, row: ModelVersionRow, aliases: dict[int, list[str]], tags: dict[str, str]
    ) -> ModelVersion:
        metrics, params, _ = self.mlflow.run_data(row.run_id)
        try:
            output, classes = read_tags(tags)
        except InvalidInput:  # a tag edited by hand into nonsense: what it was before tags
            output, classes = Output.LABEL, None
        return ModelVersion(
            name=row.model_name,
            version=row.version,
            run_id=row.run_id,
            source=row.source,
            artifact_key=row.artifact_key,
            approval_status=ApprovalStatus(row.approval_status),
            digest=row.digest,
            signature=described_signature(row.signature, output, classes),
            lineage=row.lineage,
            description=row.description,
            registered_by=row.registered_by,
            registered_at=row.registered_at,
            aliases=sorted(aliases.get(row.version, [])),
            metrics=metrics,
            params=params,
            output=output,
            classes=classes,
            owner=tags.get(OWNER_TAG, ""),
            intended_use=tags.get(INTENDED_USE_TAG, ""),
        )

    def get(self, name: str, ref: int | str) -> ModelVersion:
        """A version by number, or by alias (``champion``)."""
        version = self.resolve(name, ref)
        row = self._row(name, version)
        return self._to_version(row, self.mlflow.aliases(name), self.mlflow.tags(name, version))

    def resolve(self, name: str, ref: int | str) -> int:
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return int(ref)
        aliases = self.mlflow.aliases(name)
        for version, names in aliases.items():
            if ref in names:
                return version
        raise NotFound(f"model {name!r} has no alias {ref!r}")

    def versions(self, name: str) -> Listing[ModelVersion]:
        with self.db.session() as session:
            rows = list(
                session.scalars(
                    select(ModelVersionRow)
                    .where(
                        ModelVersionRow.workspace == self.workspace,
                        ModelVersionRow.model_name == name,
                    )
                    .order_by(ModelVersionRow.version)
                )
            )
        if not rows:
            raise NotFound(f"model {name!r} does not exist")
        aliases = self.mlflow.aliases(name)
        tags = self.mlflow.tags_by_version(name)
        return Listing(self._to_version(row, aliases, tags.get(row.version, {})) for row in rows)

    def models(self) -> Listing[RegisteredModel]:
        """Every model with its version count, latest version (and its approval status),
        approved versions and last change: three queries whatever the number of models,
        none to MLflow (the console's model dashboard lists them all on every load)."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    ModelVersionRow.model_name,
                    func.count(),
                    func.max(ModelVersionRow.version),
                    func.max(ModelVersionRow.updated_at),
                )
                .where(ModelVersionRow.workspace == self.workspace)
                .group_by(ModelVersionRow.model_name)
                .order_by(ModelVersionRow.model_name)
            ).all()
            approved = session.execute(
                select(ModelVersionRow.model_name, ModelVersionRow.version).where(
                    ModelVersionRow.workspace == self.workspace,
                    ModelVersionRow.approval_status == ApprovalStatus.APPROVED.value,
                )
            ).all()
            newest = (
                select(
                    ModelVersionRow.model_name.label("name"),
                    func.max(ModelVersionRow.version).label("version"),
                )
                .where(ModelVersionRow.workspace == self.workspace)
                .group_by(ModelVersionRow.model_name)
                .subquery()
            )
            statuses = dict(
                session.execute(
                    select(ModelVersionRow.model_name, ModelVersionRow.approval_status)
                    .join(
                        newest,
                        (ModelVersionRow.model_name == newest.c.name)
                        & (ModelVersionRow.version == newest.c.version),
                    )
                    .where(ModelVersionRow.workspace == self.workspace)
                ).all()
            )
        by_model: dict[str, list[int]] = {}
        for model, version in approved:
            by_model.setdefault(model, []).append(version)
        return Listing(
            RegisteredModel(
                name=model,
                versions=count,
                latest=latest,
                approved=sorted(by_model.get(model, [])),
                latest_status=ApprovalStatus(statuses[model]) if model in statuses else None,
                updated_at=updated,
            )
            for model, count, latest, updated in rows
        )

    def transitions(self, name: str, version: int) -> Listing[Transition]:
        """The version's approval history, oldest first (its registration is the first);
        :class:`NotFound` when there is no such version."""
        self._row(name, version)
        with self.db.session() as session:
            rows = session.scalars(
                select(ApprovalTransitionRow)
                .where(
                    ApprovalTransitionRow.workspace == self.workspace,
                    ApprovalTransitionRow.model_name == name,
                    ApprovalTransitionRow.version == version,
                )
                .order_by(ApprovalTransitionRow.id)
            )
            return Listing(
                Transition(
                    name=r.model_name,
                    version=r.version,
                    from_status=r.from_status,
                    to_status=r.to_status,
                    actor=r.actor,
                    comment=r.comment,
                    time=r.time,
                )
                for r in rows
            )

    def compare(self, name: str, refs: list[int | str]) -> Comparison:
        """Metrics and params of two or more versions side by side."""
        if len(refs) < 2:
            raise InvalidInput("compare at least two versions", field="versions")
        versions = [self.get(name, ref) for ref in refs]
        metric_names = sorted({m for v in versions for m in v.metrics})
        param_names = sorted({p for v in versions for p in v.params})
        return Comparison(
            versions=[v.version for v in versions],
            approval_status=[v.approval_status for v in versions],
            metrics={m: [v.metrics.get(m) for v in versions] for m in metric_names},
            params={p: [v.params.get(p) for v in versions] for p in param_names},
        )

    def trained_on(
        self, feature_group: str, delta_version: int | None = None
    ) -> Listing[ModelInput]:
        """Reverse lineage: the model versions trained on a feature group (at a version)."""
        query = select(ModelInputRow).where(
            ModelInputRow.workspace == self.workspace,
            ModelInputRow.feature_group == feature_group,
        )
        if delta_version is not None:
            query = query.where(ModelInputRow.delta_version == delta_version)
        with self.db.session() as session:
            rows = session.scalars(query.order_by(ModelInputRow.model_name, ModelInputRow.version))
            return Listing(
                ModelInput(
                    model=r.model_name,
                    version=r.version,
                    feature_group=r.feature_group,
                    delta_version=r.delta_version,
                )
                for r in rows
            )
