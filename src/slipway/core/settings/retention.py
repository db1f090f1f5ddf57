"""The retention area: the ages past which ``slipway gc`` (:mod:`slipway.retention`)
deletes each kind of data."""

from __future__ import annotations

from pydantic import Field

from slipway.core.settings.base import Area


class RetentionSettings(Area):
    """How long ``slipway gc`` keeps each kind of data; ``None`` keeps it for ever.

    User data and records kept for compliance (captured traffic, old Delta versions, the
    audit log) are kept for ever unless an age is set; the platform's own bookkeeping
    (finished work items, events every subscriber has read, MLflow runs already in the
    ``deleted`` stage) defaults to 30 days. Whatever the ages, a gc never deletes what a
    registered model version, a training set in lineage, a monitor's window or an
    unfinished job still needs.
    """

    capture_days: float | None = Field(
        default=None, ge=0, description="captured traffic older than this (outside monitor windows)"
    )
    delta_versions_hours: float | None = Field(
        default=None,
        ge=0,
        description="Delta files removed from a feature group's table longer ago than this"
        " (versions in any registered lineage are always kept)",
    )
    work_items_days: float | None = Field(
        default=30.0, ge=0, description="finished work items last changed longer ago than this"
    )
    events_days: float | None = Field(
        default=30.0, ge=0, description="events every subscriber has acknowledged, this old"
    )
    audit_days: float | None = Field(
        default=None, ge=0, description="audit rows older than this, exported to audit-archive/"
    )
    deleted_runs_days: float | None = Field(
        default=30.0, ge=0, description="MLflow runs deleted longer ago than this, with artifacts"
    )
    batch_size: int = Field(default=1000, ge=1, le=100_000, description="rows per transaction")
