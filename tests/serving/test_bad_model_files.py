"""A model version whose files were truncated or corrupted on disk after registration.

An endpoint serves v1 under steady traffic; v2's weights file is cut short or has bytes
flipped (same size, so only its digest can tell); the update to v2 is refused when the
gateway loads it — a digest mismatch that names the file — and the endpoint keeps serving
v1 with not one failed request. (A file added to a model's folder is covered by
tests/serving/test_deployments.py.)
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from slipway.registry.models import ModelTampered
from tests.serving.conftest import Platform, RunningGateway

ROW = {"dataframe_records": [{"x1": 1.0, "x2": 0.5}]}
MODEL = "sturdy"


def _copy_of_linear(platform: Platform) -> Path:
    """A folder of its own inside the artifact root, holding the linear model's files."""
    services = platform.services
    name, version = platform.refs["linear"].split(":")
    root = Path(services.settings.artifact_root)
    source = root / services.registry.get(name, int(version)).artifact_key
    copy = root / "bad-files" / uuid.uuid4().hex / "model"
    shutil.copytree(source, copy)
    return copy


def _register(platform: Platform, folder: Path) -> int:
    registry = platform.services.registry
    version = registry.register(MODEL, str(folder), actor="test")
    registry.set_approval(MODEL, version.version, "Approved", actor="test", comment="ok")
    return version.version


def _weights(folder: Path) -> Path:
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    return folder / meta["flavors"]["sklearn"]["pickled_model"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _corrupt], ids=["truncated", "corrupted"])
def test_a_damaged_model_is_refused_and_the_endpoint_keeps_its_last_good_version(
    platform: Platform, gateway: RunningGateway, damage: Callable[[Path], None]
) -> None:
    services = platform.services
    good = _register(platform, _copy_of_linear(platform))
    folder = _copy_of_linear(platform)
    bad = _register(platform, folder)
    endpoint = f"sturdy-{damage.__name__.strip('_')}"

    def spec(version: int) -> dict[str, object]:
        return {"name": endpoint, "variants": [{"name": "main", "model": f"{MODEL}:{version}"}]}

    assert platform.deploy(spec(good)).status == "InService"
    weights = _weights(folder)
    size = weights.stat().st_size
    damage(weights)

    codes: list[int] = []
    configs: set[str] = set()
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                response = client.post(f"{gateway.url}/endpoints/{endpoint}/invocations", json=ROW)
                codes.append(response.status_code)
                configs.add(response.headers.get("x-slipway-config-version", "?"))

    threads = [threading.Thread(target=traffic) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        services.endpoints.update(endpoint, spec(bad), actor="test")
        during = len(codes)
        described = platform.settle(endpoint)
        after = len(codes)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert after > during  # traffic flowed while the update was tried and refused
    assert codes and set(codes) == {200}, sorted(set(codes))
    assert configs == {"1"}  # v2 never served a request
    assert described.status == "InService" and described.active_version == 1

    outcome = services.endpoints.history(endpoint)[1]
    assert outcome.outcome == "failed"
    reason = outcome.outcome_reason
    assert "digest mismatch" in reason and f"changed {weights.name}" in reason, reason
    assert "ModelTampered" in reason and f"{MODEL} version {bad}" in reason

    with pytest.raises(ModelTampered) as refused:
        services.registry.verify(MODEL, bad)
    assert refused.value.details["files"] == {
        "changed": [weights.name],
        "missing": [],
        "added": [],
    }
    assert weights.stat().st_size == (size // 2 if damage is _truncate else size)
    services.registry.verify(MODEL, good)  # the good version's own copy is untouched
