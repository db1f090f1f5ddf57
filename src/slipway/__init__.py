"""Slipway: a self-hosted machine-learning platform in one install.

The user-facing API, in one place::

    import slipway

    platform = slipway.connect()  # slipway.Client(SLIPWAY_URL) when set, else in process
    platform.features.create_group(slipway.FeatureGroup(...))

    @slipway.step
    def train(data): ...

    @slipway.pipeline()
    def nightly(): ...

Everything else under ``slipway.*`` is the implementation. The names load on first use,
so ``import slipway`` stays light (a notebook's or a CI job's first line should not pay
for pandas, SQLAlchemy and MLflow), and the package root imports no layer below it at
import time (each layer may import ``slipway`` without depending on all the others).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from slipway.core.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SlipwayError,
    Unauthorized,
)
from slipway.core.settings import Settings, load_settings

__version__ = "0.1.0"

# Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    # the platform, in process or remote
    "Client": "slipway.client",
    "connect": "slipway.client",
    "Services": "slipway.services",
    # defining things
    "Feature": "slipway.features.definitions",
    "FeatureGroup": "slipway.features.definitions",
    "RecordIdentifier": "slipway.features.definitions",
    "condition": "slipway.pipelines.dsl",
    "pipeline": "slipway.pipelines.dsl",
    "step": "slipway.pipelines.dsl",
    # what the platform hands back
    "Listing": "slipway.core.resource",
    "Resource": "slipway.core.resource",
    "StoredGroup": "slipway.features.resources",
    "Ingestion": "slipway.features.resources",
    "OnlineFeatures": "slipway.features.resources",
    "QueryResult": "slipway.features.resources",
    "Token": "slipway.security.resources",
    "ModelVersion": "slipway.registry.resources",
    "RegisteredModel": "slipway.registry.resources",
    "Transition": "slipway.registry.resources",
    "Comparison": "slipway.registry.resources",
    "Pipeline": "slipway.pipelines.resources",
    "Execution": "slipway.pipelines.resources",
    "StepRun": "slipway.pipelines.resources",
    "Schedule": "slipway.pipelines.resources",
    "TrainingJob": "slipway.training.resources",
    "TuningJob": "slipway.tuning.resources",
    "Trial": "slipway.tuning.resources",
    "Endpoint": "slipway.serving.resources",
    "Deployment": "slipway.serving.resources",
    "Prediction": "slipway.serving.resources",
    "BatchJob": "slipway.batch.resources",
    "BatchChunk": "slipway.batch.resources",
    "Baseline": "slipway.monitoring.resources",
    "Monitor": "slipway.monitoring.resources",
    "MonitorRun": "slipway.monitoring.resources",
    "MonitorReport": "slipway.monitoring.resources",
    "AlertChannel": "slipway.events.resources",
    "AlertRule": "slipway.events.resources",
    "Alert": "slipway.events.resources",
    "Trigger": "slipway.events.resources",
    "TrainingJobSpec": "slipway.training.spec",
    "TuningJobSpec": "slipway.tuning.spec",
    "EndpointSpec": "slipway.serving.spec",
    "BatchJobSpec": "slipway.batch.spec",
    "MonitorSpec": "slipway.monitoring.spec",
    "RuleSpec": "slipway.events.rules",
}

if TYPE_CHECKING:
    from slipway.batch.resources import BatchChunk, BatchJob
    from slipway.batch.spec import BatchJobSpec
    from slipway.client import Client, connect
    from slipway.core.resource import Listing, Resource
    from slipway.events.resources import Alert, AlertChannel, AlertRule, Trigger
    from slipway.events.rules import RuleSpec
    from slipway.features.definitions import Feature, FeatureGroup, RecordIdentifier
    from slipway.features.resources import Ingestion, OnlineFeatures, QueryResult, StoredGroup
    from slipway.monitoring.resources import Baseline, Monitor, MonitorReport, MonitorRun
    from slipway.monitoring.spec import MonitorSpec
    from slipway.pipelines.dsl import condition, pipeline, step
    from slipway.pipelines.resources import Execution, Pipeline, Schedule, StepRun
    from slipway.registry.resources import Comparison, ModelVersion, RegisteredModel, Transition
    from slipway.security.resources import Token
    from slipway.services import Services
    from slipway.serving.resources import Deployment, Endpoint, Prediction
    from slipway.serving.spec import EndpointSpec
    from slipway.training.resources import TrainingJob
    from slipway.training.spec import TrainingJobSpec
    from slipway.tuning.resources import Trial, TuningJob
    from slipway.tuning.spec import TuningJobSpec


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'slipway' has no attribute {name!r}")
    # By name at run time: the package root stays below every layer that imports it.
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Alert",
    "AlertChannel",
    "AlertRule",
    "BackendUnavailable",
    "Baseline",
    "BatchChunk",
    "BatchJob",
    "BatchJobSpec",
    "Client",
    "Comparison",
    "Conflict",
    "Deployment",
    "Endpoint",
    "EndpointSpec",
    "Execution",
    "Feature",
    "FeatureGroup",
    "Forbidden",
    "Ingestion",
    "InvalidInput",
    "Listing",
    "ModelVersion",
    "Monitor",
    "MonitorReport",
    "MonitorRun",
    "MonitorSpec",
    "NotFound",
    "OnlineFeatures",
    "Pipeline",
    "Prediction",
    "QueryResult",
    "RecordIdentifier",
    "RegisteredModel",
    "Resource",
    "RuleSpec",
    "Schedule",
    "Services",
    "Settings",
    "SlipwayError",
    "StepRun",
    "StoredGroup",
    "Token",
    "TrainingJob",
    "TrainingJobSpec",
    "Transition",
    "Trial",
    "Trigger",
    "TuningJob",
    "TuningJobSpec",
    "Unauthorized",
    "__version__",
    "condition",
    "connect",
    "load_settings",
    "pipeline",
    "step",
]
