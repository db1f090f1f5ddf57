"""The areas of the processes ``slipway up`` starts and how they serve: the control
plane, the workers, the tracking server, the gateway (with its explainer's budget) and
the TLS certificate every plane shares.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from slipway.core.settings.base import Area, comma_list

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


class ServerSettings(Area):
    """The control plane's HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(default=8420, ge=0, le=65535)
    auth: bool = Field(default=False, description="require API tokens on every request")
    # NoDecode: a plain comma-separated value in the environment is not JSON.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="the names clients may address the control plane by (its Host header,"
        " any port), besides loopback; empty: loopback only with auth off, any with auth on"
        " (api/hosts.py). Comma-separated in the environment",
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_table_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1024,
        description="the bound for an Arrow IPC body (a table ingested, a training set's"
        " entities): tables are far larger than JSON documents, and are not parsed as JSON",
    )
    max_json_depth: int = Field(default=64, ge=2, le=1000)
    # Admission (api/admission.py): past these, 429 with Retry-After at once.
    max_in_flight: int = Field(
        default=64, ge=1, le=100_000, description="requests running at once in one process"
    )
    max_queue: int = Field(
        default=128, ge=0, le=100_000, description="requests waiting for a slot, beyond those"
    )
    max_in_flight_per_token: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="requests running or waiting per API token (no token: one shared key)",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _bare_host_names(cls, value: list[str]) -> list[str]:
        """Names as a Host header carries them, lower-case, without port or brackets: a
        port or a wildcard would be silently never matched, so it is refused instead."""
        names = []
        for entry in value:
            name = entry.strip().lower().rstrip(".")
            name = name[1:-1] if name.startswith("[") and name.endswith("]") else name
            if not _HOST_NAME.fullmatch(name):
                try:
                    name = str(ipaddress.IPv6Address(name))
                except ValueError:
                    raise ValueError(
                        f"{entry!r} is not a host name or an IP address (no port, scheme"
                        " or wildcard)"
                    ) from None
            names.append(name)
        return names

    @property
    def loopback(self) -> bool:
        """True when the server only listens on this machine."""
        return self.host in LOOPBACK_HOSTS


class WorkerSettings(Area):
    """The workers ``slipway up`` and ``slipway worker`` start: local processes that run
    each item themselves, or one Ray executor that submits items to a Ray cluster."""

    executor: Literal["local", "ray"] = Field(
        default="local", description="local worker processes, or a Ray cluster (ray.address)"
    )
    processes: int = Field(default=2, ge=0, le=256, description="local worker processes")
    lease_seconds: float = Field(default=30.0, gt=0)
    poll_seconds: float = Field(default=0.5, gt=0)
    ray_max_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="items the Ray executor keeps running at once; default the cluster's CPUs",
    )


class TrackingSettings(Area):
    """MLflow's tracking server and UI, which ``slipway up`` starts."""

    host: str = "127.0.0.1"
    port: int = Field(default=8421, ge=0, le=65535)
    enabled: bool = Field(default=True, description="start it with `slipway up`")


class ServingSettings(Area):
    """The gateway (data plane) that hosts every endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(default=8422, ge=0, le=65535)
    enabled: bool = Field(default=True, description="start it with `slipway up`")
    workers: int = Field(default=2, ge=1, le=256, description="worker processes at least")
    max_workers: int = Field(default=2, ge=1, le=256, description="scale up to this many")
    max_in_flight: int = Field(
        default=256, ge=1, description="requests in the app per worker before answering 429"
    )
    max_queue: int = Field(
        default=128,
        ge=1,
        le=100_000,
        description="requests admitted but unfinished per worker (pipelined included); past"
        " it, 429 without running the app",
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=2, le=1000)
    capture_buffer: int = Field(
        default=10_000, ge=1, description="captured requests held per worker before dropping"
    )
    scale_up_in_flight: float = Field(
        default=8.0, gt=0, description="in-flight requests per worker that add a worker"
    )
    scale_down_after_seconds: float = Field(
        default=30.0, gt=0, description="idle time before a worker above the minimum retires"
    )

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


class ExplainSettings(Area):
    """Kernel SHAP's budget, for models without a tree explainer (gateway and batch)."""

    background_rows: int = Field(
        default=100, ge=1, le=10_000, description="input-example rows sampled as background"
    )
    nsamples: int = Field(
        default=512, ge=16, le=100_000, description="coalitions evaluated per explained row"
    )
    seed: int = Field(default=0, ge=0, description="for the background sample and coalitions")


class TlsSettings(Area):
    """HTTPS for every plane Slipway serves (control plane, gateway, tracking server): one
    certificate and key for the machine, in PEM files. Unset: plain HTTP (fine on
    loopback; ``slipway up`` warns when it listens beyond loopback with auth on)."""

    cert_file: str | None = Field(default=None, description="PEM certificate (chain)")
    key_file: str | None = Field(default=None, description="PEM private key")

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "tls.key_file" if self.key_file is None else "tls.cert_file"
            raise ValueError(f"{missing} is needed too: TLS takes a certificate and its key")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None

    @property
    def scheme(self) -> str:
        return "https" if self.enabled else "http"
