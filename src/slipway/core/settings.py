"""Typed settings, one model per area, aggregated in :class:`Settings`.

Sources, highest precedence first: keyword arguments, environment variables
(``SLIPWAY_HOME``, ``SLIPWAY_DATABASE__URL``, ``SLIPWAY_SERVER__PORT`` ...), the selected
profile's overlay in the YAML file, the YAML file's top level (``$SLIPWAY_CONFIG``, else
``./slipway.yaml``), then defaults. Settings are read once by :func:`load_settings` and
passed explicitly; nothing reads them at import time.

A profile (:mod:`slipway.core.profiles`) is one entry of the file's ``profiles:``
mapping, selected by ``load_settings(profile=...)`` (the CLI's ``--profile``), else
``SLIPWAY_PROFILE``, else the file's own ``profile:``; its areas are deep-merged over the
file's top level, and its ``remote`` (if any) is where the CLI sends commands
(:attr:`Settings.remote`). Selecting a profile the file does not define is an
:class:`InvalidInput` naming it.

Defaults that depend on the workspace (the SQLite files, the artifact folder) are left
``None`` in the area models and filled in from ``home`` after loading, so changing
``SLIPWAY_HOME`` moves everything that was not set explicitly.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from slipway.core.errors import InvalidInput
from slipway.core.names import is_valid_name, validate_name
from slipway.core.profiles import PROFILE_ENV, Profile, RemoteProfile, apply_profile

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class _Area(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(_Area):
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


class ArtifactSettings(_Area):
    """Artifact root: a local folder (default) or any fsspec URI such as ``s3://bucket/x``."""

    root: str | None = Field(default=None, description="default $SLIPWAY_HOME/artifacts")


class OnlineStoreSettings(_Area):
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


class KafkaSettings(_Area):
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


class RaySettings(_Area):
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


_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


def _comma_list(value: Any) -> Any:
    """A list setting from the environment's comma-separated text (or a JSON array)."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part for part in (p.strip() for p in value.split(",")) if part]
    return value


class ServerSettings(_Area):
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
        return _comma_list(value)

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


class WorkerSettings(_Area):
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


class TrackingSettings(_Area):
    """MLflow's tracking server and UI, which ``slipway up`` starts."""

    host: str = "127.0.0.1"
    port: int = Field(default=8421, ge=0, le=65535)
    enabled: bool = Field(default=True, description="start it with `slipway up`")


class ServingSettings(_Area):
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


class ExplainSettings(_Area):
    """Kernel SHAP's budget, for models without a tree explainer (gateway and batch)."""

    background_rows: int = Field(
        default=100, ge=1, le=10_000, description="input-example rows sampled as background"
    )
    nsamples: int = Field(
        default=512, ge=16, le=100_000, description="coalitions evaluated per explained row"
    )
    seed: int = Field(default=0, ge=0, description="for the background sample and coalitions")


class RegistrySettings(_Area):
    """The model registry's deployment policy."""

    sandbox_environments: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["staging", "development"],
        description="the declared sandboxes: endpoint and batch environments that may run"
        " model versions not yet Approved; every other environment deploys Approved"
        " versions only (fail closed: a new or misspelt environment needs approval)."
        " Comma-separated in the environment",
    )
    allow_self_approval: bool = Field(
        default=False,
        description="let a token approve a version it registered itself (segregation of"
        " duties off)",
    )
    allowed_model_formats: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="the model formats registered and loaded, as flavor/serialization"
        ' patterns (e.g. "*/native", "sklearn/skops"; registry/formats.py); "*": all.'
        " Comma-separated in the environment",
    )
    promotion_status: Literal["PendingManualApproval", "Approved"] = Field(
        default="PendingManualApproval",
        description="the status a version promoted here from another Slipway arrives in"
        " (slipway models promote): Approved keeps the approval of a version Approved at"
        " its source, when the caller may approve here; anything else arrives"
        " PendingManualApproval",
    )
    max_import_unpacked_bytes: int = Field(
        default=4 * 1024**3,
        ge=1024,
        description="bytes a promoted version's archive may unpack to (the archive itself"
        " is bounded by server.max_body_bytes)",
    )

    @field_validator("allowed_model_formats", "sandbox_environments", mode="before")
    @classmethod
    def _formats_from_env(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("sandbox_environments")
    @classmethod
    def _environment_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
                raise ValueError(f"{name!r} is not an environment name (as endpoints name one)")
        return value

    @field_validator("allowed_model_formats")
    @classmethod
    def _formats_named(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not MODEL_FORMAT.fullmatch(pattern):
                raise ValueError(
                    f"{pattern!r} is not a flavor/serialization pattern (e.g. */native)"
                )
        return value


# A model format pattern: ``flavor/serialization`` with shell wildcards, or ``*``
# (slipway.registry.formats).
MODEL_FORMAT = re.compile(r"[a-z0-9_*?\[\]-]+/[a-z0-9_*?\[\]-]+|\*")


def check_model_formats(value: object, *, field: str) -> list[str]:
    """``value`` as a list of model format patterns, else ``InvalidInput`` naming ``field``."""
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise InvalidInput(f"{field} must be a non-empty list of patterns", field=field)
    for pattern in value:
        if not isinstance(pattern, str) or not MODEL_FORMAT.fullmatch(pattern):
            raise InvalidInput(
                f"{pattern!r} is not a flavor/serialization pattern (e.g. */native)", field=field
            )
    return list(dict.fromkeys(value))


class SmtpSettings(_Area):
    """The SMTP server e-mail alerts go through. It is the operator's own (often a relay on
    this machine), so it is trusted as configured; alert channels only name recipients and
    never carry a server or a password."""

    host: str | None = Field(default=None, description="unset: e-mail alert channels refused")
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(default="slipway@localhost", description="the From address")
    username: str | None = None
    password: str | None = Field(default=None, description="e.g. SLIPWAY_ALERTS__SMTP__PASSWORD")
    starttls: bool = Field(default=False, description="upgrade the connection with STARTTLS")
    ssl: bool = Field(default=False, description="implicit TLS from the start (port 465)")
    timeout_seconds: float = Field(default=10.0, gt=0)


class AlertSettings(_Area):
    """Alert delivery: network limits, retries, the SSRF allow-list and the SMTP server.

    Webhooks to private, link-local, metadata, shared (CGNAT), multicast and unspecified
    addresses are refused unless their host is in ``allowed_hosts``; loopback is allowed
    only while the control plane itself listens on loopback (a developer's machine), and
    never to the platform's own ports. What the server listens on is not configured here:
    :class:`Settings` hands this area its server settings (:meth:`attach_platform`).
    """

    # NoDecode: a plain comma-separated value in the environment is not JSON.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="webhook hosts allowed whatever they resolve to: private, loopback,"
        " link-local or metadata addresses (names or IP literals; comma-separated in the"
        " environment)",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="per webhook request")
    max_redirects: int = Field(default=3, ge=0, le=10)
    max_attempts: int = Field(default=5, ge=1, le=50, description="per delivery, first included")
    backoff_seconds: float = Field(default=30.0, ge=0, description="doubles after each failure")
    max_backoff_seconds: float = Field(default=3600.0, ge=0)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _normalized(cls, value: list[str]) -> list[str]:
        return [host.strip().strip("[]").rstrip(".").lower() for host in value]

    # The platform's servers, read when a URL is checked (not copied: a command-line
    # --host or --port changes them after loading). None (an AlertSettings on its own):
    # the server is not known to listen on loopback, so loopback webhooks are refused.
    _platform: tuple[ServerSettings, TrackingSettings, ServingSettings] | None = PrivateAttr(
        default=None
    )

    def attach_platform(
        self, server: ServerSettings, tracking: TrackingSettings, serving: ServingSettings
    ) -> None:
        """Tell this area which servers the platform runs (called by :class:`Settings`)."""
        self._platform = (server, tracking, serving)

    @property
    def loopback_allowed(self) -> bool:
        """Whether webhooks may reach loopback: only while the control plane listens on
        loopback, so the receivers there are the developer's own."""
        return self._platform is not None and self._platform[0].loopback

    @property
    def platform_ports(self) -> frozenset[int]:
        """The control plane's, the tracking server's and the gateway's ports: a loopback
        webhook may never POST into the platform's own APIs."""
        if self._platform is None:
            return frozenset()
        return frozenset(area.port for area in self._platform)


# Object stores a data root may name; the aliases fsspec accepts for one store are one.
_STORE_SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "abfs"}


def _data_root(entry: str) -> str:
    """One data root in its canonical spelling: an absolute local path without ``.`` or
    ``..`` parts or a trailing slash, or ``scheme://bucket[/key/prefix]`` (lower-case
    scheme, its canonical alias). Anything else is refused rather than never matched."""
    text = entry.strip()
    if not text or "\x00" in text or "::" in text or any(c in text for c in "*?["):
        raise ValueError(f"{entry!r} is not a local folder or an object-store prefix")
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() != "file":
        canonical = _STORE_SCHEMES.get(scheme.lower())
        parts = [p for p in rest.split("/") if p not in ("", ".")]
        if canonical is None or not parts or ".." in parts:
            raise ValueError(
                f"{entry!r}: an object-store root is {'|'.join(sorted(set(_STORE_SCHEMES)))}"
                "://bucket[/prefix]"
            )
        return f"{canonical}://{'/'.join(parts)}"
    path = os.path.expanduser(rest if sep else text)
    if not os.path.isabs(path):
        raise ValueError(f"{entry!r}: a local data root must be an absolute path")
    return os.path.normpath(path).replace("//", "/")


class TlsSettings(_Area):
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


class DataSettings(_Area):
    """Where a remote caller (a REST client with an editor's token) may point the server
    at data: batch job inputs and outputs, baseline sources. Without these roots an
    editor's token could make the server read ``/etc/...`` or write anywhere it can — an
    editor would be a shell (api/paths.py, core/roots.py). The artifact root is always
    allowed; in-process callers (the embedded SDK, the CLI without ``--url``) are the
    machine's own users and are not confined."""

    # NoDecode: a plain comma-separated value in the environment is not JSON.
    allowed_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="folders (absolute paths) and object-store prefixes (s3://bucket/prefix)"
        " remote callers may read and write data under, besides the artifact root."
        " Comma-separated in the environment",
    )

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("allowed_roots")
    @classmethod
    def _normalized(cls, value: list[str]) -> list[str]:
        return [_data_root(entry) for entry in value]


class CodeSettings(_Area):
    """Where the code a remote caller submits (training jobs, tuning trials, pipeline
    steps) may come from. A token allowed to submit a job could otherwise make the workers
    import code from any folder the server can read: a code bundle the caller uploaded
    (``POST /api/v1/code-bundles``, kept by digest in the artifact store) is always
    allowed, host folders only under ``allowed_roots``, and an entry point outside the
    job's own code only from a module under ``allowed_modules`` (runtime/bundles.py,
    api/code.py). In-process callers are the machine's own users and are not confined."""

    allowed_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host folders (absolute paths) remote callers may name as a job's"
        " source_dir or code_paths. Comma-separated in the environment",
    )
    allowed_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["slipway.steps"],
        description="modules (and their submodules) a remote job may name as its entry point"
        " without shipping them: the built-in steps, and packages the admin installed on"
        " the workers. Comma-separated in the environment",
    )
    max_bundle_files: int = Field(
        default=10_000, ge=1, description="files one code bundle may hold"
    )
    max_bundle_unpacked_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="bytes one code bundle may unpack to (its upload is bounded by"
        " server.max_body_bytes)",
    )

    @field_validator("allowed_roots", "allowed_modules", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("allowed_roots")
    @classmethod
    def _local_folders(cls, value: list[str]) -> list[str]:
        roots = [_data_root(entry) for entry in value]
        if any("://" in root for root in roots):
            raise ValueError("code roots are local folders (workers import from them)")
        return roots

    @field_validator("allowed_modules")
    @classmethod
    def _module_names(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not all(part.isidentifier() for part in entry.split(".")):
                raise ValueError(f"{entry!r} is not a dotted module name")
        return value


class RetentionSettings(_Area):
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


class Settings(BaseSettings):
    """Everything Slipway can be configured with, one model per area."""

    model_config = SettingsConfigDict(
        env_prefix="SLIPWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(default=Path(".slipway"), description="the workspace folder")
    profile: str | None = Field(
        default=None, description="the selected profile (SLIPWAY_PROFILE, --profile)"
    )
    profiles: dict[str, Profile] = Field(
        default_factory=dict,
        description="named overlays of these settings, each maybe with a remote control"
        " plane (slipway.core.profiles)",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    artifacts: ArtifactSettings = Field(default_factory=ArtifactSettings)
    online_store: OnlineStoreSettings = Field(default_factory=OnlineStoreSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    workers: WorkerSettings = Field(default_factory=WorkerSettings)
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    explain: ExplainSettings = Field(default_factory=ExplainSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    code: CodeSettings = Field(default_factory=CodeSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        selected = None
        if isinstance(init_settings, InitSettingsSource):
            selected = init_settings.init_kwargs.get("profile")
        selected = selected or os.environ.get(PROFILE_ENV) or None
        return (
            init_settings,
            env_settings,
            _yaml_source(settings_cls, config_file_path(), selected),
        )

    @field_validator("profile", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("profiles")
    @classmethod
    def _profiles_named_and_areas_known(cls, value: dict[str, Profile]) -> dict[str, Profile]:
        """Names as every resource's (they appear on command lines and in logs), and
        overlays of known areas only, so a typo in a profile not selected today is
        refused today; an overlay's values are checked when its profile is selected."""
        areas = set(cls.model_fields) - {"profile", "profiles"}
        for name, profile in value.items():
            if not is_valid_name(name):
                raise ValueError(
                    f"profile name {name!r} is not a valid name: use lower-case letters,"
                    " digits, '-' and '_', starting with a letter"
                )
            unknown = sorted(set(profile.overlay) - areas)
            if unknown:
                raise ValueError(
                    f"profile {name!r} sets {', '.join(map(repr, unknown))}, which is not a"
                    f" settings area ({', '.join(sorted(areas))})"
                )
        return value

    @model_validator(mode="after")
    def _selected_profile_defined(self) -> Settings:
        # Selected by the environment or a keyword but absent from the file: the YAML
        # source refuses it already when a file exists; this covers a file without any.
        if self.profile is not None and self.profile not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise InvalidInput(
                f"unknown profile {self.profile!r}: {config_file_path()} defines {known}",
                field="profile",
            )
        return self

    @property
    def remote(self) -> RemoteProfile | None:
        """The selected profile's control plane, when it names one."""
        if self.profile is None:
            return None
        return self.profiles[self.profile].remote

    @model_validator(mode="after")
    def _fill_workspace_defaults(self) -> Settings:
        home = self.home.expanduser().resolve()
        object.__setattr__(self, "home", home)
        if self.database.url is None:
            self.database.url = f"sqlite:///{home / 'slipway.db'}"
        if self.artifacts.root is None:
            self.artifacts.root = str(home / "artifacts")
        if self.online_store.url is None:
            self.online_store.url = f"sqlite:///{home / 'online.db'}"
        return self

    @model_validator(mode="after")
    def _alerts_know_the_platform(self) -> Settings:
        # Webhook checks depend on where the servers listen (see AlertSettings).
        self.alerts.attach_platform(self.server, self.tracking, self.serving)
        return self

    @property
    def database_url(self) -> str:
        """The metadata database URL, always set after loading."""
        assert self.database.url is not None
        return self.database.url

    @property
    def artifact_root(self) -> str:
        """The artifact root URI, always set after loading."""
        assert self.artifacts.root is not None
        return self.artifacts.root

    @property
    def online_store_url(self) -> str:
        """The online store URL, always set after loading."""
        assert self.online_store.url is not None
        return self.online_store.url

    def as_env(self) -> dict[str, str]:
        """The backends as environment variables, for processes Slipway starts (steps,
        jobs, trials) so they reach exactly the same database, artifacts and stores."""
        env = {
            "SLIPWAY_HOME": str(self.home),
            "SLIPWAY_DATABASE__URL": self.database_url,
            "SLIPWAY_ARTIFACTS__ROOT": self.artifact_root,
            "SLIPWAY_ONLINE_STORE__URL": self.online_store_url,
        }
        if self.profile is not None:
            # The rest of the profile's overlay (serving, registry ...) holds there too.
            env[PROFILE_ENV] = self.profile
        if self.kafka.bootstrap_servers:
            env["SLIPWAY_KAFKA__BOOTSTRAP_SERVERS"] = self.kafka.bootstrap_servers
        if self.ray.address:
            env["SLIPWAY_RAY__ADDRESS"] = self.ray.address
        # Where the control plane listens, as `slipway up --host/--port` set it: the
        # scheduler delivering alerts allows loopback webhooks only while it is loopback.
        env["SLIPWAY_SERVER__HOST"] = self.server.host
        env["SLIPWAY_SERVER__PORT"] = str(self.server.port)
        # Whether tokens are required: the tracking server checks them like the control plane.
        env["SLIPWAY_SERVER__AUTH"] = "true" if self.server.auth else "false"
        if self.tls.cert_file and self.tls.key_file:
            # Every plane serves HTTPS; processes calling them trust this certificate.
            env["SLIPWAY_TLS__CERT_FILE"] = self.tls.cert_file
            env["SLIPWAY_TLS__KEY_FILE"] = self.tls.key_file
        return env

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with passwords in URLs and secrets hidden."""
        masked: dict[str, Any] = _mask(self.model_dump(mode="json"))
        return masked


def _yaml_source(
    settings_cls: type[BaseSettings], path: Path, profile: str | None
) -> InitSettingsSource:
    """The settings file as a source, with the selected profile's overlay merged over its
    top level (the file's own ``profile:`` when nothing else selects one)."""
    data: Any = {}
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(f"cannot read {path}: {exc}", field="config") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"{path} must hold one mapping of settings", field="config")
    selected = profile or data.get("profile") or None
    if selected is not None:
        validate_name(selected, field="profile")
        data = apply_profile(data, selected, source=path)
    return InitSettingsSource(settings_cls, init_kwargs=data)


def config_file_path() -> Path:
    """Where the YAML settings file is read from: ``$SLIPWAY_CONFIG`` or ``./slipway.yaml``."""
    return Path(os.environ.get("SLIPWAY_CONFIG", "slipway.yaml"))


def load_settings(*, profile: str | None = None, **overrides: Any) -> Settings:
    """Read settings from every source, with ``profile``'s overlay (else the one
    ``SLIPWAY_PROFILE`` or the file selects); bad values raise :class:`InvalidInput`."""
    from pydantic import ValidationError

    if profile is not None:
        overrides["profile"] = profile
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(
            f"invalid setting {field}: {first['msg']}",
            field=field,
            details={
                "errors": [
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors()
                ]
            },
        ) from None


_SECRET_KEYS = ("password", "secret", "token")


def mask_url(url: str) -> str:
    """Hide the password of a URL (``postgresql://u:***@h/db``); other text is unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = parts.username or ""
    masked = f"{userinfo}:***@{netloc[-1]}"
    return urlunsplit((parts.scheme, masked, parts.path, parts.query, parts.fragment))


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, str):
        if any(word in key.lower() for word in _SECRET_KEYS):
            return "***"
        return mask_url(value)
    return value
