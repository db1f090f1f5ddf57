"""Settings profiles: named overlays of ``slipway.yaml`` (dev, stage, prod), each maybe
with a remote control plane commands go to.

A profile is a mapping under ``profiles:`` in the settings file: any of the usual areas
(deep-merged over the file's top level when the profile is selected) and an optional
``remote: {url, token_env | token_file, workspace}``. The file is often committed or
shared, so a token is never written in it: ``token_env`` names the environment variable
holding it, ``token_file`` a file only its owner may read (as ssh insists of a key).

:class:`~slipway.core.settings.Settings` selects the profile (``--profile`` on the root
command, ``SLIPWAY_PROFILE``, or the file's own ``profile:``) and merges it; this module
holds the models and the merge, and knows nothing of the areas themselves.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from slipway.core.errors import InvalidInput
from slipway.core.workspace import validate_workspace

PROFILE_ENV = "SLIPWAY_PROFILE"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RemoteProfile(BaseModel):
    """The control plane a profile's commands go to, as ``--url`` / ``--token`` /
    ``--workspace`` would name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http(s)://host:port of the control plane")
    token_env: str | None = Field(
        default=None, description="the environment variable holding the API token"
    )
    token_file: str | None = Field(
        default=None, description="a file holding the API token (mode 600: its owner's only)"
    )
    workspace: str | None = Field(default=None, description="the workspace commands act in")

    @model_validator(mode="before")
    @classmethod
    def _no_token_in_clear(cls, data: Any) -> Any:
        if isinstance(data, dict) and "token" in data:
            raise ValueError(
                "a token is never written in the settings file: name the environment"
                " variable holding it (token_env) or a file only you may read (token_file)"
            )
        return data

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s)://host:port URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError("the URL carries no credentials: use token_env or token_file")
        return value.rstrip("/")

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("workspace")
    @classmethod
    def _workspace_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_workspace(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _one_token_source(self) -> RemoteProfile:
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("give token_env or token_file, not both")
        return self

    def token(self, *, field: str = "remote") -> str | None:
        """The API token, read now from the variable or the file (None when the profile
        names neither: a control plane with auth off). A variable that is unset, or a
        file that is missing, empty or readable by others is an ``InvalidInput`` naming
        ``field``."""
        if self.token_env is not None:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise InvalidInput(
                    f"{field}: the environment variable {self.token_env} holding the token"
                    " is not set",
                    field=f"{field}.token_env",
                )
            return value
        if self.token_file is None:
            return None
        return read_token_file(Path(self.token_file).expanduser(), field=f"{field}.token_file")


def read_token_file(path: Path, *, field: str) -> str:
    """The token in ``path``; refused when others than its owner may read or write it
    (a token there would be everyone's on the machine) or when it is empty."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput(f"{field}: cannot read {path}: {exc.strerror}", field=field) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(
            f"{field}: {path} may be read or written by others (mode {stat.S_IMODE(mode):o});"
            f" a token file is its owner's only: chmod 600 {path}",
            field=field,
        )
    if not text:
        raise InvalidInput(f"{field}: {path} is empty", field=field)
    return text


class Profile(BaseModel):
    """One profile: its settings overlay (areas by name, as at the file's top level) and
    its remote control plane, if it has one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    remote: RemoteProfile | None = None
    overlay: dict[str, Any] = Field(
        default_factory=dict, description="areas merged over the file's top level"
    )

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        """The file writes areas beside ``remote``; they are kept apart as the overlay."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValueError("a profile is a mapping of settings areas (and remote)")
        if "overlay" in data:
            return data
        return {
            "remote": data.get("remote"),
            "overlay": {k: v for k, v in data.items() if k != "remote"},
        }


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` over ``base``: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def apply_profile(data: dict[str, Any], name: str | None, *, source: Path) -> dict[str, Any]:
    """The settings file's ``data`` with profile ``name``'s overlay merged in (as it is
    when ``name`` is None); an unknown profile is an ``InvalidInput`` naming it."""
    if name is None:
        return data
    profiles = data.get("profiles")
    known = sorted(profiles) if isinstance(profiles, dict) else []
    if name not in known:
        where = f"{source} defines {', '.join(known)}" if known else f"{source} defines none"
        raise InvalidInput(f"unknown profile {name!r}: {where}", field="profile")
    entry = profiles[name] if isinstance(profiles, dict) else None
    overlay = {k: v for k, v in (entry or {}).items() if k != "remote"}
    return deep_merge(data, overlay) if isinstance(entry, dict) else data


__all__ = [
    "PROFILE_ENV",
    "Profile",
    "RemoteProfile",
    "apply_profile",
    "deep_merge",
    "read_token_file",
]
