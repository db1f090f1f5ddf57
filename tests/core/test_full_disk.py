"""A full disk under the artifact store and the offline store, for real (no mock).

Each test runs its writes in a child process that sees a small tmpfs, fills it up with a
filler file so that the next write hits ENOSPC, and reports what it saw (see
:mod:`tests.diskfull`). A failed write must be a typed error (507 over REST) naming the
path, leave the previous content readable and nothing partial behind, the service must
keep answering, and once space is freed the next write must work.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from slipway.api.app import create_app
from slipway.core.artifacts import TMP_DIR, ArtifactStore
from slipway.core.errors import InsufficientStorage
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.diskfull import fill, free_bytes, on_small_disk

KEY = "models/churn/weights.bin"
API = "/api/v1"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _refused(call: Any) -> dict[str, Any]:
    try:
        call()
    except InsufficientStorage as exc:
        return {"status": exc.status_code, **exc.to_dict()["error"]}
    return {"status": "stored"}


def artifact_writes_on_a_full_disk(mount: Path) -> dict[str, Any]:
    """Runs in the child that sees the small disk at ``mount``."""
    store = ArtifactStore(str(mount / "artifacts"))
    first, second = os.urandom(64 * 1024), os.urandom(256 * 1024)
    store.put_bytes(KEY, first)
    local = mount.parent / "second.bin"  # outside the small disk
    local.write_bytes(second)
    filler = fill(mount)
    seen: dict[str, Any] = {
        "free_when_full": free_bytes(mount),
        "put_bytes": _refused(lambda: store.put_bytes(KEY, second)),
        "put_file": _refused(lambda: store.put_file(KEY, local)),
        "put_new_key": _refused(lambda: store.put_bytes("models/churn/new.bin", second)),
    }
    seen["after_failure"] = {
        "digest": _sha(store.get_bytes(KEY)),
        "keys": store.list(),
        "temp_files": os.listdir(mount / "artifacts" / TMP_DIR),
        "free": free_bytes(mount),
    }
    filler.unlink()
    stored = store.put_file(KEY, local)
    seen["after_freeing"] = {"digest": _sha(store.get_bytes(KEY)), "put": stored.sha256}
    seen["digests"] = {"first": _sha(first), "second": _sha(second)}
    return seen


def test_a_full_artifact_store_refuses_the_put_and_keeps_the_previous_version(
    tmp_path: Path,
) -> None:
    mount = tmp_path / "disk"
    seen = on_small_disk(artifact_writes_on_a_full_disk, mount)
    assert seen["free_when_full"] == 0
    for how, key in (
        ("put_bytes", KEY),
        ("put_file", KEY),
        ("put_new_key", "models/churn/new.bin"),
    ):
        error = seen[how]
        assert error["status"] == 507 and error["code"] == "insufficient_storage", how
        uri = f"file://{mount}/artifacts/{key}"
        assert error["details"] == {"path": uri, "key": key}, how
        assert uri in error["message"], how
    after = seen["after_failure"]
    assert after["digest"] == seen["digests"]["first"]  # the previous version, intact
    assert after["keys"] == [KEY]  # the refused new key is not there, not even empty
    assert after["temp_files"] == []  # partial temp files are gone at once
    freed = seen["after_freeing"]
    assert freed["digest"] == freed["put"] == seen["digests"]["second"]


GROUP = {
    "name": "weather",
    "record_identifiers": [{"name": "origin"}],
    "event_time": "time_hour",
    "features": [{"name": "temp", "type": "float"}],
}


def _records(hour: int, temp: float) -> dict[str, Any]:
    at = f"2024-01-01T{hour:02d}:00:00Z"
    return {"records": [{"origin": o, "time_hour": at, "temp": temp} for o in ("JFK", "LGA")]}


def rest_writes_on_a_full_disk(mount: Path, *, home: str) -> dict[str, Any]:
    """Runs in the child: the control plane over REST, its artifact root on the small disk."""
    settings = load_settings(home=Path(home), artifacts={"root": str(mount / "artifacts")})
    services = Services.open(settings)
    seen: dict[str, Any] = {}
    try:
        with TestClient(create_app(services), raise_server_exceptions=False) as client:
            records = f"{API}/feature-groups/weather/records"
            assert client.post(f"{API}/feature-groups", json=GROUP).status_code == 201
            assert client.post(records, json=_records(1, 10.0)).status_code == 201
            labels = {"records": [{"inference_id": "i-1", "row": 0, "label": 1}]}
            truth = f"{API}/endpoints/shop/ground-truth"
            assert client.post(truth, json=labels).status_code == 201
            filler = fill(mount)

            def answer(response: Any) -> dict[str, Any]:
                return {"status": response.status_code, "body": response.json()}

            seen["ingest"] = answer(client.post(records, json=_records(2, 20.0)))
            seen["ground_truth"] = answer(client.post(truth, json=labels))
            # Still serving: reads of what was there before, and writes elsewhere.
            seen["lookup"] = answer(
                client.post(f"{API}/feature-groups/weather/lookup", json={"keys": ["JFK"]})
            )
            seen["query"] = answer(
                client.post(
                    f"{API}/feature-groups/query",
                    json={"sql": "SELECT origin, temp FROM weather ORDER BY origin"},
                )
            )
            seen["described"] = answer(client.get(f"{API}/feature-groups/weather"))
            seen["ingests"] = answer(client.get(f"{API}/feature-groups/weather/ingests"))
            seen["health"] = client.get(f"{API}/health/live").status_code
            filler.unlink()
            seen["ingest_after_freeing"] = answer(client.post(records, json=_records(2, 20.0)))
            seen["ground_truth_after_freeing"] = answer(client.post(truth, json=labels))
    finally:
        services.close()
    return seen


def test_rest_writes_on_a_full_disk_are_507_naming_the_path(tmp_path: Path) -> None:
    mount = tmp_path / "disk"
    seen = on_small_disk(rest_writes_on_a_full_disk, mount, home=str(tmp_path / "home"))
    root = f"{mount}/artifacts"

    ingest = seen["ingest"]
    assert ingest["status"] == 507, ingest
    error = ingest["body"]["error"]
    assert error["code"] == "insufficient_storage"
    assert error["details"]["path"] == f"{root}/features/weather"
    assert f"{root}/features/weather" in error["message"]

    truth = seen["ground_truth"]
    assert truth["status"] == 507, truth
    path = truth["body"]["error"]["details"]["path"]
    assert path.startswith(f"file://{root}/monitoring/ground-truth/endpoint=shop/"), path
    assert path in truth["body"]["error"]["message"]

    assert seen["lookup"]["status"] == 200
    assert seen["lookup"]["body"]["records"][0]["values"] == {"temp": 10.0}
    assert seen["query"]["body"]["rows"] == [
        {"origin": "JFK", "temp": 10.0},
        {"origin": "LGA", "temp": 10.0},
    ]
    assert seen["described"]["body"]["offline_version"] == 0
    assert seen["described"]["body"]["online_records"] == 2
    assert [i["state"] for i in seen["ingests"]["body"]] == ["failed", "succeeded"]
    assert seen["health"] == 200

    after = seen["ingest_after_freeing"]
    assert after["status"] == 201 and after["body"]["offline_version"] == 1, after
    assert seen["ground_truth_after_freeing"]["status"] == 201
