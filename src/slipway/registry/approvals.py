"""A version's approval status: who moves it, with what segregation of duties, and what
each status lets an environment deploy.
"""

from __future__ import annotations

from slipway.core.clock import utcnow
from slipway.core.errors import Conflict, Forbidden, NotFound
from slipway.registry.models import ApprovalStatus
from slipway.registry.reads import RegistryReads
from slipway.registry.resources import ModelVersion
from slipway.registry.tables import ApprovalTransitionRow, ModelVersionRow


class Approvals(RegistryReads):
    """Approvals and the deployment policy (a part of
    :class:`~slipway.registry.service.Registry`)."""

    def set_approval(
        self,
        name: str,
        version: int,
        status: ApprovalStatus | str,
        *,
        actor: str,
        comment: str = "",
        author_may_approve: bool = True,
    ) -> ModelVersion:
        """Move a version to a new approval status, recording who, when and why.

        ``author_may_approve`` False: segregation of duties — ``actor`` may not approve a
        version it registered (:class:`Forbidden`). The faces that know who is calling
        (the control plane, for a token) pass ``registry.allow_self_approval``; code in
        process (the SDK, a pipeline's own gate approving what it measured) names its
        actor itself, so for it the rule would prove nothing."""
        target = status if isinstance(status, ApprovalStatus) else ApprovalStatus.parse(status)
        now = utcnow()
        with self.db.write() as session:
            row = session.get(
                ModelVersionRow, (self.workspace, name, version), with_for_update=True
            )
            if row is None:
                raise NotFound(f"model {name!r} has no version {version}")
            if (
                target is ApprovalStatus.APPROVED
                and not author_may_approve
                and row.registered_by == actor
            ):
                raise Forbidden(
                    f"{actor} registered {name} version {version} and may not approve it too:"
                    " another approver must (segregation of duties;"
                    " registry.allow_self_approval turns this off)"
                )
            previous = row.approval_status
            if previous == target.value:
                raise Conflict(f"{name} version {version} is already {target.value}")
            row.approval_status = target.value
            row.updated_at = now
            session.add(
                ApprovalTransitionRow(
                    workspace=self.workspace,
                    model_name=name,
                    version=version,
                    from_status=previous,
                    to_status=target.value,
                    actor=actor,
                    comment=comment,
                    time=now,
                )
            )
            self.events.append(
                "model.approval_changed",
                self._resource(f"model/{name}/{version}"),
                {"from": previous, "to": target.value, "actor": actor, "comment": comment},
                session=session,
            )
        self.mlflow.set_tag(name, version, "slipway.approval_status", target.value)
        self.audit.record(
            actor=actor,
            action=f"model.{target.name.lower()}",
            resource=self._resource(f"model/{name}/{version}"),
            outcome="success",
            details={"from": previous, "to": target.value, "comment": comment},
        )
        return self.get(name, version)

    def check_deployable(self, name: str, ref: int | str, environment: str) -> ModelVersion:
        """Refuse versions the environment's policy forbids: Rejected ones everywhere, and
        any not Approved outside the declared sandboxes (``registry.sandbox_environments``)."""
        version = self.get(name, ref)
        if version.approval_status is ApprovalStatus.REJECTED:
            raise Forbidden(f"{name} version {version.version} is Rejected and cannot be deployed")
        sandbox = environment in self.settings.registry.sandbox_environments
        if not sandbox and version.approval_status is not ApprovalStatus.APPROVED:
            raise Forbidden(
                f"{environment} is not a sandbox environment (registry.sandbox_environments):"
                f" it deploys only Approved versions; {name} version {version.version} is"
                f" {version.approval_status.value}"
            )
        return version
