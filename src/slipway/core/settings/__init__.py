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

The package holds one module per group of areas (:mod:`.backends`, :mod:`.servers`,
:mod:`.registry`, :mod:`.alerts`, :mod:`.access`, :mod:`.retention`), the root model and
its loading (:mod:`.root`, :mod:`.sources`) and the masking of secrets (:mod:`.masking`);
every name is imported from here, ``slipway.core.settings``.
"""

from slipway.core.settings.access import CodeSettings, DataSettings
from slipway.core.settings.alerts import AlertSettings, SmtpSettings
from slipway.core.settings.backends import (
    ArtifactSettings,
    DatabaseSettings,
    KafkaSettings,
    OnlineStoreSettings,
    RaySettings,
)
from slipway.core.settings.masking import mask_url
from slipway.core.settings.registry import MODEL_FORMAT, RegistrySettings, check_model_formats
from slipway.core.settings.retention import RetentionSettings
from slipway.core.settings.root import Settings, load_settings
from slipway.core.settings.servers import (
    LOOPBACK_HOSTS,
    ExplainSettings,
    ServerSettings,
    ServingSettings,
    TlsSettings,
    TrackingSettings,
    WorkerSettings,
)
from slipway.core.settings.sources import config_file_path

__all__ = [
    "LOOPBACK_HOSTS",
    "MODEL_FORMAT",
    "AlertSettings",
    "ArtifactSettings",
    "CodeSettings",
    "DataSettings",
    "DatabaseSettings",
    "ExplainSettings",
    "KafkaSettings",
    "OnlineStoreSettings",
    "RaySettings",
    "RegistrySettings",
    "RetentionSettings",
    "ServerSettings",
    "ServingSettings",
    "Settings",
    "SmtpSettings",
    "TlsSettings",
    "TrackingSettings",
    "WorkerSettings",
    "check_model_formats",
    "config_file_path",
    "load_settings",
    "mask_url",
]
