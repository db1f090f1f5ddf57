"""The areas naming where the platform keeps and sends things: the metadata database,
the artifact root, the online store, Kafka and the Ray cluster.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, field_validator

from slipway.core.settings.base import Area


class DatabaseSettings(Area):
    """Metadata database: SQLite file (embedded default) or PostgreSQL."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///$SLIPWAY_HOME/slipway.db",
    )
    pool_size: int = Field(default=5, ge=1, le=100)
    busy_timeout_ms: int = Field(default=30_000, ge=0, description="SQLite lock wait")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("database url must be sqlite:///… or postgresql://…")
        return value


class ArtifactSettings(Area):
    """Artifact root: a local folder (default) or any fsspec URI such as ``s3://bucket/x``."""

    root: str | None = Field(default=None, description="default $SLIPWAY_HOME/artifacts")


class OnlineStoreSettings(Area):
    """Online feature store: SQLite file (default) or ``redis://host:port/db``."""

    url: str | None = Field(default=None, description="default sqlite:///$SLIPWAY_HOME/online.db")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split(":", 1)[0]
        if scheme not in {"sqlite", "redis", "rediss"}:
            raise ValueError("online store url must be sqlite:///… or redis://…")
        return value


class KafkaSettings(Area):
    """Kafka, used for batch outputs, streaming ingestion and events when configured."""

    bootstrap_servers: str | None = Field(default=None, description="host:port[,host:port]")
    security_protocol: str = "PLAINTEXT"
    sasl_username: str | None = None
    sasl_password: str | None = None
    events_topic: str = Field(
        default="slipway.events",
        pattern=r"^[A-Za-z0-9._-]{1,249}$",
        description="topic Slipway's events are published to when Kafka is configured",
    )


class RaySettings(Area):
    """The Ray cluster a worker with ``workers.executor = "ray"`` submits its work to."""

    address: str | None = Field(
        default=None,
        description="ray://host:10001 (Ray Client) or host:6379 (the head's GCS, from a node"
        " of the cluster); unset: the Ray executor starts Ray on this machine",
    )

    @field_validator("address")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Checked here, not at the first claim: a typo should stop the worker at start.
        scheme, sep, rest = value.partition("://")
        if not sep:
            scheme, rest = "", value
        parsed = urlsplit(f"tcp://{rest}")
        try:
            port = parsed.port
        except ValueError:
            port = None
        if (
            scheme not in ("", "ray")
            or not parsed.hostname
            or port is None
            or port == 0
            or parsed.username is not None
            or parsed.path
            or parsed.query
            or parsed.fragment
        ):
            raise ValueError(
                "ray address must be ray://host:port (Ray Client, e.g. ray://10.0.0.5:10001)"
                " or host:port (the head's GCS, e.g. 10.0.0.5:6379)"
            )
        return value
