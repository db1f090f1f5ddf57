"""The serving capability's tables in the metadata database, on core's declarative base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from slipway.core.db.tables import Base

# An endpoint's key in these tables: its scoped name, a workspace and a name of 63 each.
ENDPOINT_KEY = 127


class EndpointRow(Base):
    """A serving endpoint and where its rollout stands.

    ``active_version`` is the config serving the traffic; during a deployment
    ``target_version`` gets ``target_percent`` of it. Every change bumps ``generation``,
    which is what gateways poll to know they must reload.
    """

    __tablename__ = "slipway_endpoints"

    # The scoped name: <workspace>/<name>, the bare name in the default workspace.
    name: Mapped[str] = mapped_column(String(ENDPOINT_KEY), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    active_version: Mapped[int | None] = mapped_column(Integer)
    target_version: Mapped[int | None] = mapped_column(Integer)
    target_percent: Mapped[float] = mapped_column(default=0.0)
    phase: Mapped[int] = mapped_column(Integer, default=0)
    phase_started_at: Mapped[datetime | None]
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EndpointConfigRow(Base):
    """One immutable config of an endpoint; together they are its deployment history."""

    __tablename__ = "slipway_endpoint_configs"

    endpoint: Mapped[str] = mapped_column(String(ENDPOINT_KEY), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict[str, Any]]
    outcome: Mapped[str] = mapped_column(String(16))
    outcome_reason: Mapped[str] = mapped_column(Text, default="")
    rollback_of: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class GatewayRow(Base):
    """A live gateway worker process: its heartbeat and when it last applied configs."""

    __tablename__ = "slipway_gateways"

    gateway_id: Mapped[str] = mapped_column(String(127), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime] = mapped_column(index=True)
    refreshed_at: Mapped[datetime]
    in_flight: Mapped[int] = mapped_column(Integer, default=0)


class GatewayModelRow(Base):
    """Whether a gateway worker has the models of an endpoint config loaded."""

    __tablename__ = "slipway_gateway_models"

    gateway_id: Mapped[str] = mapped_column(String(127), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(ENDPOINT_KEY), primary_key=True)
    config_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime]


class ServingStatsRow(Base):
    """Traffic counters of one variant of one config, per gateway worker and 5-second
    window: what ``/metrics`` sums and what deployment alarms evaluate."""

    __tablename__ = "slipway_serving_stats"

    endpoint: Mapped[str] = mapped_column(String(ENDPOINT_KEY), primary_key=True)
    config_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant: Mapped[str] = mapped_column(String(63), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(127), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_sum: Mapped[float] = mapped_column(default=0.0)
    model_ms_sum: Mapped[float] = mapped_column(default=0.0)
    histogram: Mapped[dict[str, Any]]
    prediction_sum: Mapped[float] = mapped_column(default=0.0)
    prediction_count: Mapped[int] = mapped_column(Integer, default=0)
    captured: Mapped[int] = mapped_column(Integer, default=0)
    capture_dropped: Mapped[int] = mapped_column(Integer, default=0)
    cold_starts: Mapped[int] = mapped_column(Integer, default=0)
    cold_start_ms_sum: Mapped[float] = mapped_column(default=0.0)
