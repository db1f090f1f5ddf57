"""The chart's pods, run as processes on this machine: what Kubernetes would start from the
rendered manifests, with the image's environment from the Dockerfile.

No cluster and no image here (their registries are out of reach), so each Deployment's
container runs as a local process instead: its arguments, its environment (the image's
ENV, the pod's env and valueFrom, the Secret through envFrom), slipway.yaml from the
ConfigMap at the mounted path's local stand-in, on PostgreSQL, Redis and an S3 server. Then
every HTTP plane must answer its liveness/readiness probe without a token while auth is
on (the image turns it on), and the workers must run work. This is what a pod's settings,
arguments or probes going wrong would break, short of a cluster."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from slipway.core.settings import load_settings
from slipway.services import Services
from tests.conftest import service_url
from tests.deploy.dockerfile import parse
from tests.deploy.helm import Helm, by_kind, container
from tests.s3_server import client_env
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
# The image's own variables that name its layout, not a setting: PATH and the rest.
IMAGE_LAYOUT = {"PATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED"}

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Kubernetes restarts a Deployment's container that exits (restartPolicy: Always), and so
# does Pod.running(); here none may need it. On a fresh database every pod opens MLflow's
# store at once, and each takes the same lock around creating its tables
# (slipway.tracking.schema_lock), so none dies on a duplicate key.
MAX_RESTARTS = 0


@dataclass
class Pod:
    """One Deployment's container, run as a local process."""

    component: str
    args: list[str]
    env: dict[str, str]
    probe: tuple[str, int] | None  # (path, port) of its HTTP probes
    log: Path
    process: subprocess.Popen[bytes] | None = None
    exits: list[str] = field(default_factory=list)  # the output of each run that ended

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "slipway", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def running(self) -> bool:
        """True while it runs; restarted, as Kubernetes would, when it exited."""
        assert self.process is not None, f"{self.component} was never started"
        if self.process.poll() is None:
            return True
        self.exits.append(f"exit {self.process.returncode}:\n{self.output()}")
        assert len(self.exits) <= MAX_RESTARTS, f"{self.component} keeps exiting: {self.exits}"
        self.start()
        return False

    def probed(self) -> int:
        """The status of its probe (0: no answer yet, or it exited and was restarted)."""
        assert self.probe is not None
        if not self.running():
            return 0
        path, port = self.probe
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code
        except httpx.TransportError:
            return 0

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _local(value: str, mounts: dict[str, Path]) -> str:
    """A path inside the pod as the test's folder that stands in for its volume."""
    for mount, local in mounts.items():
        if value == mount or value.startswith(mount + "/"):
            return str(local) + value[len(mount) :]
    return value


def _expanded(arg: str, env: dict[str, str]) -> str:
    """``$(NAME)`` in a container's argument, as Kubernetes expands it from its env."""
    return re.sub(r"\$\((\w+)\)", lambda match: env[match.group(1)], arg)


def _pods(manifests: list[dict[str, Any]], base: Path) -> dict[str, Pod]:
    runtime = parse((REPO / "Dockerfile").read_text()).stages[-1]
    image_env = {k: v for k, v in runtime.env().items() if k not in IMAGE_LAYOUT}
    (secret,) = by_kind(manifests, "Secret").values()
    (config_map,) = by_kind(manifests, "ConfigMap").values()
    etc = base / "etc"
    etc.mkdir()
    for name, text in config_map["data"].items():
        (etc / name).write_text(text)
    # The machine's environment, less any setting of the developer's or the test run's.
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLIPWAY_", "AWS_", "MLFLOW_")) or k.startswith("SLIPWAY_TEST_")
    }
    pods = {}
    for component, deployment in by_kind(manifests, "Deployment").items():
        spec = container(deployment)
        scratch = base / component
        mounts = {"/etc/slipway": etc, "/var/lib/slipway": scratch / "home"}
        mounts["/tmp"] = scratch / "tmp"
        for local in mounts.values():
            local.mkdir(parents=True, exist_ok=True)
        pod_name = f"{deployment['metadata']['name']}-0"
        env = inherited | {k: _local(v, mounts) for k, v in image_env.items()}
        env |= dict(secret.get("stringData") or {})
        for entry in spec.get("env", []):
            if "value" in entry:
                env[entry["name"]] = _local(entry["value"], mounts)
            else:
                assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
                env[entry["name"]] = pod_name
        env["TMPDIR"] = str(mounts["/tmp"])
        # Kubernetes expands $(NAME) in args from the container's environment.
        args = [_expanded(arg, env) for arg in spec["args"]]
        probe = None
        if "readinessProbe" in spec:
            (port,) = spec["ports"]
            path = spec["readinessProbe"]["httpGet"]["path"]
            assert spec["livenessProbe"]["httpGet"]["path"] == path
            probe = (path, int(port["containerPort"]))
        pods[component] = Pod(component, args, env, probe, base / f"{component}.log")
    return pods


@pytest.fixture
def pods(
    helm: Helm, postgres_url: str, s3_endpoint: str, s3_root: str, tmp_path: Path
) -> Iterator[dict[str, Pod]]:
    ports = {"controlPlane": _free_port(), "tracking": _free_port(), "gateway": _free_port()}
    manifests = helm.manifests(
        *(f"{name}.port={port}" for name, port in ports.items()),
        "gateway.processes=1",
        "gateway.maxProcesses=1",
        set_string=(
            f"secret.databaseUrl={postgres_url}",
            f"config.artifacts.root={s3_root}",
            f"config.online_store.url={service_url('redis')}",
            *(f"env.{name}={value}" for name, value in client_env(s3_endpoint).items()),
        ),
    )
    pods = _pods(manifests, tmp_path)
    try:
        yield pods
    finally:
        for pod in pods.values():
            pod.stop()


def test_each_pod_starts_answers_its_probes_and_runs_work(
    pods: dict[str, Pod], postgres_url: str, s3_root: str, tmp_path: Path
) -> None:
    assert set(pods) == {"control-plane", "tracking", "scheduler", "worker", "gateway"}
    # The control plane first: it migrates the new database, as on a first install.
    control_plane = pods["control-plane"]
    control_plane.start()
    eventually(control_plane.probed, what="the control plane's probe answers", timeout=180)
    for pod in pods.values():
        if pod.process is None:
            pod.start()

    for name, pod in pods.items():
        if pod.probe is not None:
            status = eventually(pod.probed, what=f"{name}'s probe answers", timeout=180)
            assert status == 200, f"{name}: {pod.probe} answered {status}\n{pod.output()}"

    # Auth is on (the image's environment): the probes answer without a token, the
    # backend-checking health report does not — which is why the probes use /live.
    path, port = control_plane.probe or ("", 0)
    assert path == "/api/v1/health/live"
    health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10)
    assert health.status_code == 401

    # The workers, started with the pod's arguments (--id from the pod's name), run work.
    services = Services.open(
        load_settings(
            home=tmp_path / "client",
            database={"url": postgres_url},
            artifacts={"root": s3_root},
        )
    )
    try:
        # The item runs for two seconds, long enough to see which worker holds it.
        item = services.queue.enqueue("system", "system.echo", {"sleep": 2, "heed_lease": True})

        def state(wanted: str) -> str | None:
            pods["worker"].running()
            now = services.queue.get(item.id)
            return now.lease_owner or "-" if now.state == wanted else None

        owner = eventually(lambda: state("claimed"), what="a worker claims the item", timeout=120)
        assert owner == "slipway-worker-0"  # the pod's name, through $(POD_NAME)
        eventually(lambda: state("succeeded"), what="the worker finishes the item", timeout=60)
    finally:
        services.close()

    assert pods["scheduler"].running()
    # Kubernetes stops a pod with SIGTERM and kills it after the grace period: each
    # process stops on its own and exits 0 (the control plane too, although uvicorn hands
    # the SIGTERM back once its graceful stop is done: slipway.runtime.exit.stop_on_sigterm).
    codes = {}
    for name, pod in pods.items():
        pod.stop()
        assert pod.process is not None
        codes[name] = pod.process.returncode
        assert "Traceback" not in pod.output(), pod.output()
    assert set(codes.values()) == {0}, codes
