"""The assembled platform: every service wired to one settings object.

The faces (REST API, CLI, SDK in embedded mode) build one :class:`Services` and call the
capability services on it; capabilities never build it themselves. Opening it migrates the
metadata database when it is behind, so first use just works.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slipway.apply.ownership import Ownership
from slipway.batch.service import BatchService
from slipway.core.artifacts import ArtifactStore
from slipway.core.db.engine import Database
from slipway.core.db.migrate import ensure_schema
from slipway.core.events import EventLog
from slipway.core.queue import WorkQueue
from slipway.core.settings import Settings
from slipway.core.tls import client_verify
from slipway.events.alerts import Alerts
from slipway.events.triggers import Triggers
from slipway.features.offline.delta import DeltaOfflineStore
from slipway.features.online.base import OnlineStore
from slipway.features.online.factory import open_online_store
from slipway.features.repository import GroupRepository
from slipway.features.store import FeatureStore
from slipway.features.views.horizons import HorizonCache
from slipway.features.views.service import FeatureViews
from slipway.monitoring.baselines import Baselines
from slipway.monitoring.service import Monitoring
from slipway.pipelines.schedules import Schedules
from slipway.pipelines.service import PipelineService
from slipway.registry.service import Registry
from slipway.security.audit import AuditLog
from slipway.security.epoch import TokenEpoch
from slipway.security.tokens import TokenService
from slipway.security.workspaces import WorkspaceService
from slipway.serving.controller import DeploymentController
from slipway.serving.invoke import gateway_url
from slipway.serving.service import Endpoints
from slipway.tracking.config import enable_mlflow_workspaces, public_tracking_uri
from slipway.training.service import TrainingService
from slipway.tuning.service import TuningService

if TYPE_CHECKING:
    from slipway.serving.gateway.app import Gateway


@dataclass
class Services:
    settings: Settings
    db: Database
    artifacts: ArtifactStore
    queue: WorkQueue
    events: EventLog
    tokens: TokenService
    workspaces: WorkspaceService
    audit: AuditLog
    online_store: OnlineStore
    features: FeatureStore
    feature_views: FeatureViews
    registry: Registry
    pipelines: PipelineService
    training: TrainingService
    tuning: TuningService
    schedules: Schedules
    triggers: Triggers
    alerts: Alerts
    endpoints: Endpoints
    deployments: DeploymentController
    batch: BatchService
    baselines: Baselines
    monitoring: Monitoring
    ownership: Ownership

    @classmethod
    def open(
        cls, settings: Settings, *, migrate: bool = True, pool_size: int | None = None
    ) -> Services:
        """The platform on ``settings``; ``pool_size`` overrides the database pool's size
        (a gateway worker needs few connections, and runs several processes of them)."""
        # A self-hosted platform phones nobody: MLflow's usage telemetry stays off in every
        # process Slipway runs (and it costs time on each call where the network is closed).
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        # Slipway's workspaces are MLflow's: every store this process opens, in the mode.
        enable_mlflow_workspaces()
        settings.home.mkdir(parents=True, exist_ok=True)
        db = Database(
            settings.database_url,
            pool_size=pool_size or settings.database.pool_size,
            busy_timeout_ms=settings.database.busy_timeout_ms,
        )
        if migrate:
            ensure_schema(db)
        events = EventLog(db)
        audit = AuditLog(db)
        online = open_online_store(settings.online_store_url)
        offline = DeltaOfflineStore.for_artifacts(settings.artifact_root)
        artifacts = ArtifactStore(settings.artifact_root)
        queue = WorkQueue(db)
        registry = Registry(settings, db, artifacts, events, audit)
        pipelines = PipelineService(db, queue, events, artifacts, audit)
        features = FeatureStore(
            GroupRepository(db, events, audit),
            offline,
            online,
            events,
            audit,
            horizons=HorizonCache,
        )
        feature_views = FeatureViews(db, features, events, audit)
        endpoints = Endpoints(
            db,
            events,
            audit,
            registry,
            feature_views,
            gateway_url=gateway_url(settings.serving, scheme=settings.tls.scheme),
            gateway_verify=client_verify(settings.tls),
        )
        baselines = Baselines(db, artifacts, events, registry, features, audit, feature_views)
        return cls(
            settings=settings,
            db=db,
            artifacts=artifacts,
            queue=queue,
            events=events,
            tokens=TokenService(db, audit, epoch=TokenEpoch.for_database(db, settings.home)),
            workspaces=WorkspaceService(db, audit),
            audit=audit,
            online_store=online,
            features=features,
            feature_views=feature_views,
            registry=registry,
            pipelines=pipelines,
            training=TrainingService(db, queue, events, audit),
            tuning=TuningService(db, queue, events, registry.mlflow, settings.artifact_root, audit),
            schedules=Schedules(db, events, pipelines, audit),
            triggers=Triggers(db, events, pipelines, audit),
            alerts=Alerts(settings.alerts, db, events, audit),
            endpoints=endpoints,
            deployments=DeploymentController(db, events, endpoints),
            batch=BatchService(settings, db, queue, events, registry, features, audit),
            baselines=baselines,
            monitoring=Monitoring(
                db, queue, events, artifacts, baselines, registry, endpoints, feature_views, audit
            ),
            ownership=Ownership(db, audit),
        )

    def in_workspace(self, workspace: str) -> Services:
        """The platform as ``workspace`` (a validated name) sees it: every capability
        that keeps its resources per workspace is that workspace's view; tokens,
        workspaces, the audit log, the event log and the deployment controller are the
        platform's. The views share this one's connections: close either, not both."""
        if workspace == self.registry.workspace:
            return self
        return dataclasses.replace(
            self,
            features=self.features.in_workspace(workspace),
            feature_views=self.feature_views.in_workspace(workspace),
            registry=self.registry.in_workspace(workspace),
            pipelines=self.pipelines.in_workspace(workspace),
            training=self.training.in_workspace(workspace),
            tuning=self.tuning.in_workspace(workspace),
            schedules=self.schedules.in_workspace(workspace),
            triggers=self.triggers.in_workspace(workspace),
            alerts=self.alerts.in_workspace(workspace),
            endpoints=self.endpoints.in_workspace(workspace),
            batch=self.batch.in_workspace(workspace),
            baselines=self.baselines.in_workspace(workspace),
            monitoring=self.monitoring.in_workspace(workspace),
            ownership=self.ownership.in_workspace(workspace),
        )

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI to log runs and models to (the platform's tracking
        server), as ``Client.tracking_uri`` gives it to a remote user."""
        return public_tracking_uri(self.settings)

    def close(self) -> None:
        self.tokens.epoch.close()
        self.online_store.close()
        self.db.dispose()


# A gateway worker's connections: its event loop and the few threads it reads and writes
# from (heartbeats, metrics, capture) never need more.
GATEWAY_POOL_SIZE = 4


def open_gateway(settings: Settings, *, gateway_id: str | None = None) -> Gateway:
    """One gateway worker over the platform on ``settings``, assembled here like every
    other process's services. The control plane migrates the database, so a gateway
    worker never does; the worker owns what it is given and closes it when it stops."""
    # Imported here: the gateway's modules load only in the processes that serve.
    from slipway.serving.gateway.app import Gateway

    return Gateway(
        Services.open(settings, migrate=False, pool_size=GATEWAY_POOL_SIZE),
        gateway_id_=gateway_id,
    )
