"""What the apply capability hands out: a resource's ownership record, and plans."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.resource import Resource

# The kinds a spec file may declare, in the order apply creates them: each kind's
# references point only to kinds before it (a monitor to an endpoint and a baseline, an
# alert rule to channels, a schedule to a pipeline, a feature view to groups). Deletions
# run in the reverse order.
KINDS: tuple[str, ...] = (
    "FeatureGroup",
    "FeatureView",
    "Pipeline",
    "Schedule",
    "Trigger",
    "AlertChannel",
    "AlertRule",
    "Endpoint",
    "Baseline",
    "Monitor",
    "BatchJob",
)


class AppliedResource(Resource):
    """A resource owned by a spec set: ``slipway apply`` made it and may change or prune
    it. ``digest`` is the sha256 of the spec it applied last."""

    table_fields: ClassVar[tuple[str, ...]] = (
        "kind",
        "name",
        "spec_set",
        "applied_by",
        "applied_at",
    )

    kind: str
    name: str
    spec_set: str
    digest: str
    applied_by: str
    applied_at: datetime


class AppliedRecord(BaseModel):
    """The body that records a resource as applied by a spec set."""

    model_config = ConfigDict(extra="forbid", strict=True)

    spec_set: str = Field(description="the spec set that owns the resource")
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the applied spec")

    @field_validator("spec_set")
    @classmethod
    def _spec_set(cls, value: str) -> str:
        try:
            return validate_name(value, field="spec_set")
        except InvalidInput as exc:
            raise ValueError(exc.message) from None


def check_kind(kind: str) -> str:
    """``kind`` if it is one a spec may declare; else a 400 naming ``kind``."""
    if kind not in KINDS:
        raise InvalidInput(
            f"unknown kind {kind!r}; one of: {', '.join(KINDS)}",
            field="kind",
            details={"kinds": list(KINDS)},
        )
    return kind


class FieldChange(BaseModel):
    """One field a change sets: its dotted path, the live value and the files' value."""

    path: str
    old: Any = None
    new: Any = None


class PlannedChange(Resource):
    """What apply will do to one resource.

    ``action``: ``create``, ``update``, ``delete`` (pruned), ``unchanged``, ``forget``
    (the ownership record of a resource deleted by hand), or ``kept`` (owned, absent from
    the files, and not pruned: without ``--prune``, or a kind that never is). ``drift``:
    the files did not change since the last apply but the resource did — it was changed
    outside apply. ``adopt``: a resource made by hand that the files declare; apply
    takes it over."""

    table_fields: ClassVar[tuple[str, ...]] = ("action", "kind", "name", "fields", "note")

    kind: str
    name: str
    action: Literal["create", "update", "delete", "unchanged", "forget", "kept"]
    fields: list[FieldChange] = Field(default_factory=list)
    drift: bool = False
    adopt: bool = False
    note: str = ""
    file: str | None = None
    line: int | None = None
    digest: str | None = Field(default=None, description="sha256 of the files' spec")
    recorded: str | None = Field(
        default=None, description="the digest the ownership record holds, if any"
    )


class Plan(Resource):
    """The difference between a spec set and a platform, resource by resource."""

    table_fields: ClassVar[tuple[str, ...]] = ("spec_set", "environment", "summary")

    spec_set: str
    environment: str | None
    prune: bool
    changes: list[PlannedChange]

    @property
    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for change in self.changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        return counts

    @property
    def has_changes(self) -> bool:
        """Whether apply would change anything (what ``plan``'s exit code 2 says)."""
        return any(
            c.action in ("create", "update", "delete", "forget") or c.adopt for c in self.changes
        )

    def pending(self) -> list[PlannedChange]:
        return [c for c in self.changes if c.action not in ("unchanged", "kept") or c.adopt]
