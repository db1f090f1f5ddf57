"""Where settings are read from besides the environment: the YAML file, with the
selected profile's overlay merged over its top level.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings, InitSettingsSource

from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name
from slipway.core.profiles import apply_profile


def yaml_source(
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
