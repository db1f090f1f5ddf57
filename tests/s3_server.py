"""A local S3 endpoint for the tests: moto's S3 server in a process of its own on loopback.

MinIO, the usual S3 server for tests, is under the AGPL and not available from the package
registries this project installs from; moto's server speaks the S3 REST protocol over
HTTP, so the code under test (s3fs/botocore for artifacts, delta-rs's object store for the
offline feature store) runs its real client paths against it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUCKET = "slipway-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_env(endpoint: str) -> dict[str, str]:
    """What botocore, s3fs and delta-rs read to reach ``endpoint`` with test credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "slipway-test",
        "AWS_SECRET_ACCESS_KEY": "slipway-test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",  # delta-rs refuses plain HTTP otherwise
    }


@contextmanager
def s3_server(log: Path) -> Iterator[str]:
    """Start the server, wait until it accepts connections, yield its endpoint URL."""
    port = _free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the S3 test server did not start; see {log}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
