"""Tracking's resource: where users log runs and models, as the control plane tells a
remote client (``GET /api/v1/tracking``) and the embedded platform tells its own code."""

from __future__ import annotations

from pydantic import Field

from slipway.core.resource import Resource


class TrackingServer(Resource):
    """The platform's MLflow tracking server, as its users reach it."""

    uri: str = Field(
        description="the MLflow tracking URI to log to: mlflow.MlflowClient(tracking_uri=uri)"
    )
