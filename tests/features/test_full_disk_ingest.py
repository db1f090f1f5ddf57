"""A feature ingest when the disk under the Delta offline store is full, for real.

The offline store lives on a small tmpfs that the test fills up (see :mod:`tests.diskfull`);
the metadata database and the online store (SQLite or Redis) live elsewhere and keep
working. The failed ingest must be a typed error naming the table's path, leave the Delta
table at its previous version with every row of it readable and none of the new batch,
leave the online store where it was (all or nothing), and be recorded as failed; once
space is freed the same batch goes in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slipway.core.errors import InsufficientStorage
from slipway.core.settings import load_settings
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.store import FeatureStore
from slipway.services import Services
from tests.diskfull import fill, free_bytes, on_small_disk
from tests.features.conftest import WEATHER

ORIGINS = ["EWR", "JFK", "LGA"]


def _batch(hour: int, temp: float, origins: list[str]) -> list[dict[str, Any]]:
    at = datetime(2024, 1, 1, hour, tzinfo=UTC)
    return [
        {"origin": o, "time_hour": at, "temp": temp + i, "wind": i, "storm": False, "desc": o}
        for i, o in enumerate(origins)
    ]


def _open(home: str, mount: Path, online_url: str, redis_prefix: str) -> Services:
    settings = load_settings(
        home=Path(home),
        artifacts={"root": str(mount / "artifacts")},
        online_store={"url": online_url},
    )
    services = Services.open(settings)
    if online_url.startswith("redis"):
        services.online_store.close()
        services.online_store = RedisOnlineStore(online_url, prefix=redis_prefix)
        services.features = FeatureStore(
            services.features.repo,
            services.features.offline,
            services.online_store,
            services.events,
            services.audit,
        )
    return services


def _offline_rows(fs: FeatureStore) -> list[list[Any]]:
    table = fs.read_offline("weather").to_pylist()
    return sorted([r["origin"], r["time_hour"].isoformat(), r["temp"]] for r in table)


def _online(fs: FeatureStore, origins: list[str]) -> dict[str, float | None]:
    found = fs.get_records("weather", [[o] for o in origins])
    return {o: None if r is None else r.values["temp"] for o, r in zip(origins, found, strict=True)}


def ingest_on_a_full_disk(
    mount: Path, *, home: str, online_url: str, redis_prefix: str
) -> dict[str, Any]:
    """Runs in the child that sees the small disk at ``mount``."""
    services = _open(home, mount, online_url, redis_prefix)
    fs = services.features
    seen: dict[str, Any] = {}
    try:
        fs.create_group(WEATHER)
        fs.ingest("weather", _batch(1, 10.0, ORIGINS))
        seen["before"] = {"version": fs.offline.version("weather"), "rows": _offline_rows(fs)}
        filler = fill(mount)
        seen["free_when_full"] = free_bytes(mount)
        newer = _batch(2, 20.0, [*ORIGINS, "TEB"])  # newer events, and a new key
        try:
            fs.ingest("weather", newer)
        except InsufficientStorage as exc:
            seen["error"] = {"status": exc.status_code, **exc.to_dict()["error"]}
        seen["after_failure"] = {
            "version": fs.offline.version("weather"),
            "rows": _offline_rows(fs),
            "online": _online(fs, [*ORIGINS, "TEB"]),
            "ingests": [(i.state, i.error) for i in fs.ingests("weather")],
        }
        filler.unlink()
        retried = fs.ingest("weather", newer)
        seen["after_freeing"] = {
            "state": retried.state,
            "version": fs.offline.version("weather"),
            "rows": _offline_rows(fs),
            "online": _online(fs, [*ORIGINS, "TEB"]),
        }
    finally:
        services.close()
    return seen


def test_a_full_offline_store_fails_the_ingest_and_changes_nothing(
    tmp_path: Path, online_url: str
) -> None:
    mount = tmp_path / "disk"
    seen = on_small_disk(
        ingest_on_a_full_disk,
        mount,
        home=str(tmp_path / "home"),
        online_url=online_url,
        redis_prefix=f"t{uuid.uuid4().hex[:8]}",
    )
    table = f"{mount}/artifacts/features/weather"
    first = [[o, "2024-01-01T01:00:00+00:00", 10.0 + i] for i, o in enumerate(ORIGINS)]
    assert seen["before"] == {"version": 0, "rows": first}
    assert seen["free_when_full"] == 0

    error = seen["error"]
    assert error["status"] == 507 and error["code"] == "insufficient_storage"
    assert error["details"]["path"] == table and table in error["message"]
    assert "'weather'" in error["message"]

    after = seen["after_failure"]
    assert after["version"] == 0 and after["rows"] == first  # nothing of the batch visible
    assert after["online"] == {"EWR": 10.0, "JFK": 11.0, "LGA": 12.0, "TEB": None}
    [failed_state, failed_error], [first_state, _] = after["ingests"]
    assert (failed_state, first_state) == ("failed", "succeeded")
    assert table in failed_error

    freed = seen["after_freeing"]
    second = [[o, "2024-01-01T02:00:00+00:00", 20.0 + i] for i, o in enumerate([*ORIGINS, "TEB"])]
    assert freed["state"] == "succeeded" and freed["version"] == 1
    assert freed["rows"] == sorted(first + second)
    assert freed["online"] == {"EWR": 20.0, "JFK": 21.0, "LGA": 22.0, "TEB": 23.0}
