"""Applying a plan: each change through its kind's service, in dependency order.

Creations and updates go in :data:`~slipway.apply.resources.KINDS` order (a schedule's
pipeline before the schedule, an endpoint before its monitors), deletions after them in
the reverse order (a monitor before its endpoint). Every change goes through the service a
person would use — an endpoint update is a deployment with its strategy and alarms, a
feature group update the store's compatible evolution — and after each one the ownership
record says which spec set made it, with the digest of the spec applied.

A service can still refuse a change the plan could not foresee (a conflict with someone
else's change in between): apply stops at that change and reports what it had done.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from slipway.apply.kinds import Platform
from slipway.apply.resources import AppliedRecord, Plan, PlannedChange
from slipway.apply.specset import SpecSet
from slipway.core.errors import NotFound, SlipwayError


@dataclass
class Applied:
    """What an apply did: the changes made, and the one that failed (with its error)."""

    done: list[PlannedChange] = field(default_factory=list)
    failed: PlannedChange | None = None
    error: SlipwayError | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


def _record(platform: Platform, spec_set: SpecSet, change: PlannedChange, actor: str) -> None:
    assert change.digest is not None
    platform.ownership.record(
        change.kind,
        change.name,
        AppliedRecord(spec_set=spec_set.name, digest=change.digest),
        actor=actor,
    )


def apply(
    plan: Plan,
    spec_set: SpecSet,
    platform: Platform,
    *,
    actor: str,
    progress: Callable[[PlannedChange], None] | None = None,
) -> Applied:
    """Make the changes of ``plan`` (made from ``spec_set`` against ``platform``)."""
    applied = Applied()
    for change in plan.changes:
        kind = spec_set.kinds[change.kind]
        try:
            if change.action in ("create", "update"):
                document = spec_set.find(change.kind, change.name)
                assert document is not None
                if change.action == "create":
                    kind.create(platform, document.spec, actor)
                else:
                    kind.update(platform, document.spec, actor)
                _record(platform, spec_set, change, actor)
            elif change.action == "delete":
                with suppress(NotFound):  # gone since the plan: what the change wanted
                    kind.delete(platform, change.name, actor)
                platform.ownership.forget(change.kind, change.name, actor=actor)
            elif change.action == "forget":
                platform.ownership.forget(change.kind, change.name, actor=actor)
            elif change.action == "unchanged" and change.recorded != change.digest:
                # Adopted (made by hand, now declared) or a spec that reads the same
                # differently written: the record follows the files.
                _record(platform, spec_set, change, actor)
                if not change.adopt:
                    continue  # bookkeeping, not a change to report
            else:
                continue
        except SlipwayError as exc:
            applied.failed, applied.error = change, exc
            return applied
        applied.done.append(change)
        if progress is not None:
            progress(change)
    return applied
