"""The root :class:`Settings`, aggregating one model per area, and
:func:`load_settings`, which reads it once from every source.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from slipway.core.errors import InvalidInput
from slipway.core.names import is_valid_name
from slipway.core.profiles import PROFILE_ENV, Profile, RemoteProfile
from slipway.core.settings.access import CodeSettings, DataSettings
from slipway.core.settings.alerts import AlertSettings
from slipway.core.settings.backends import (
    ArtifactSettings,
    DatabaseSettings,
    KafkaSettings,
    OnlineStoreSettings,
    RaySettings,
)
from slipway.core.settings.masking import mask_secrets
from slipway.core.settings.registry import RegistrySettings
from slipway.core.settings.retention import RetentionSettings
from slipway.core.settings.servers import (
    ExplainSettings,
    ServerSettings,
    ServingSettings,
    TlsSettings,
    TrackingSettings,
    WorkerSettings,
)
from slipway.core.settings.sources import config_file_path, yaml_source


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
            yaml_source(settings_cls, config_file_path(), selected),
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
        masked: dict[str, Any] = mask_secrets(self.model_dump(mode="json"))
        return masked


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
