"""Every kind a spec file can declare, in the order apply creates them."""

from __future__ import annotations

from slipway.apply.kinds.alerts import AlertChannelKind, AlertRuleKind
from slipway.apply.kinds.base import Kind, Live, Platform, Reference
from slipway.apply.kinds.features import FeatureGroupKind, FeatureViewKind
from slipway.apply.kinds.monitoring import BaselineKind, MonitorKind
from slipway.apply.kinds.pipelines import PipelineKind, ScheduleKind, TriggerKind
from slipway.apply.kinds.serving import BatchJobKind, EndpointKind
from slipway.apply.resources import KINDS


def all_kinds() -> dict[str, Kind]:
    """A fresh set of kinds (the pipeline kind caches the definitions it imports), keyed
    by name in creation order: each kind's references point only to kinds before it."""
    kinds: list[Kind] = [
        FeatureGroupKind(),
        FeatureViewKind(),
        PipelineKind(),
        ScheduleKind(),
        TriggerKind(),
        AlertChannelKind(),
        AlertRuleKind(),
        EndpointKind(),
        BaselineKind(),
        MonitorKind(),
        BatchJobKind(),
    ]
    by_name = {kind.name: kind for kind in kinds}
    assert tuple(by_name) == KINDS
    return by_name


__all__ = ["Kind", "Live", "Platform", "Reference", "all_kinds"]
