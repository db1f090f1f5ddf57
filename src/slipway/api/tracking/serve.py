"""The tracking server Slipway runs (``python -m slipway.api.tracking --host H --port P``,
``slipway mlflow``, and ``slipway up``'s child).

MLflow's server (:mod:`slipway.tracking.server`) with :class:`TrackingGate` in front of
every process's app. Like the control plane, it refuses to listen beyond loopback
without authentication.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from slipway.core.settings import LOOPBACK_HOSTS, load_settings
from slipway.tracking import server

FACTORY = "slipway.api.tracking.app:create_app"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    host = arguments[arguments.index("--host") + 1] if "--host" in arguments else "127.0.0.1"
    if host not in LOOPBACK_HOSTS and not load_settings().server.auth:
        print(
            f"slipway tracking: refusing to listen on {host} without authentication: anyone"
            " who can reach it could change runs and models. Enable auth"
            " (SLIPWAY_SERVER__AUTH=true) or bind to 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    return server.main(arguments, factory=FACTORY)
