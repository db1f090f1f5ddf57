"""A private single-node Kafka broker a test may kill and restart (same ports, same data),
from the jars ``scripts/services`` caches in ``.tools``."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from slipway.core.health import kafka_api_versions

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    def __init__(self, folder: Path) -> None:
        libs = sorted(REPO.glob(".tools/kafka-*/libs"))
        if not libs:
            raise RuntimeError("no Kafka jars: run scripts/services start first")
        self.libs = libs[-1]
        self.folder = folder
        self.port = _free_port()
        self.controller = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "server.properties").write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={folder / 'data'}",
                    "num.partitions=1",
                    "auto.create.topics.enable=true",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                ]
            )
            + "\n"
        )
        # An id starting with "-" reads as an option to kafka-storage (1 in 64 of them).
        cluster = "-"
        while cluster.startswith("-"):
            cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster,
                "-c",
                str(folder / "server.properties"),
            ],
            check=True,
            capture_output=True,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self) -> list[str]:
        return ["java", "-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-cp", f"{self.libs}/*"]  # fmt: skip

    def start(self, timeout: float = 60) -> None:
        self.log = open(self.folder / "broker.log", "ab")  # noqa: SIM115 - closed in kill()
        self.process = subprocess.Popen(
            [*self._java(), "kafka.Kafka", str(self.folder / "server.properties")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                kafka_api_versions("127.0.0.1", self.port)
                return
            except Exception:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        raise RuntimeError(f"the private broker did not start: {self.folder / 'broker.log'}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
