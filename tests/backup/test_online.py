"""The online store after a restore: the SQLite file as archived, brought up to the
offline store by materialization; a Redis online store (never archived) filled from it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from slipway.backup.service import create_backup, restore_backup
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.backup.platform import BASE
from tests.conftest import service_url


def _group(services: Services, name: str, *, online_only: bool = False) -> None:
    services.features.create_group(
        {
            "name": name,
            "record_identifiers": [{"name": "k"}],
            "event_time": "at",
            "features": [{"name": "n", "type": "int"}],
            "offline": not online_only,
        }
    )
    for n in range(3):
        services.features.ingest(
            name, [{"k": f"k{k}", "at": BASE + timedelta(hours=n), "n": n} for k in range(4)]
        )


def test_online_records_are_restored_and_online_only_groups_too(tmp_path: Path) -> None:
    source = Services.open(load_settings(home=tmp_path / "source" / "home"))
    try:
        _group(source, "both")
        _group(source, "only_online", online_only=True)
        create_backup(source.settings, tmp_path / "a.tar.gz")
    finally:
        source.close()
    target = load_settings(home=tmp_path / "target" / "home")
    restore_backup(target, tmp_path / "a.tar.gz")
    restored = Services.open(target)
    try:
        assert restored.features.materialize_all() == {"both": 4}
        for name in ("both", "only_online"):
            record = restored.features.get_record(name, "k1")
            assert record is not None and record.values == {"n": 2}
            assert record.event_time == BASE + timedelta(hours=2)
    finally:
        restored.close()


@pytest.mark.redis
def test_a_redis_online_store_is_filled_from_the_offline_store(tmp_path: Path) -> None:
    name = f"g_{uuid.uuid4().hex[:12]}"  # the test server is shared: a group of its own
    source = Services.open(load_settings(home=tmp_path / "source" / "home"))
    try:
        _group(source, name)
        create_backup(source.settings, tmp_path / "a.tar")
    finally:
        source.close()
    target = load_settings(
        home=tmp_path / "target" / "home", online_store={"url": service_url("redis")}
    )
    restored: Services | None = None
    try:
        restore_backup(target, tmp_path / "a.tar")
        restored = Services.open(target)
        assert restored.features.materialize_all() == {name: 4}
        record = restored.features.get_record(name, "k3")
        assert record is not None and record.values == {"n": 2}
    finally:
        if restored is None:
            restored = Services.open(target)
        restored.online_store.drop_group(name)
        restored.close()
