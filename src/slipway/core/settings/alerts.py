"""Alert delivery: the webhooks' network limits and SSRF allow-list, retries, and the
SMTP server e-mail alerts go through.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, PrivateAttr, field_validator
from pydantic_settings import NoDecode

from slipway.core.settings.base import Area, comma_list
from slipway.core.settings.servers import ServerSettings, ServingSettings, TrackingSettings


class SmtpSettings(Area):
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


class AlertSettings(Area):
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
        return comma_list(value)

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
