"""A gateway worker process (``python -m slipway.gateway_worker``), started by
``slipway serve``'s master (:mod:`slipway.serving.gateway.server`): it reads the settings
the master passed in its environment once, assembles its gateway through the platform's
one assembly place (:func:`slipway.services.open_gateway`) and serves its share of the
port until SIGTERM."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from slipway.core.settings import load_settings
from slipway.runtime.exit import exit_now
from slipway.services import open_gateway
from slipway.serving.gateway.server import run_worker


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="slipway-gateway-worker")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(open_gateway(load_settings()), args.host, args.port)
    exit_now(0)


if __name__ == "__main__":
    main()
