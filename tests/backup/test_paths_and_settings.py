"""Which stored strings a restore rewrites, and which settings an archive keeps."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from slipway.backup.paths import replacer, rewrite_value
from slipway.backup.portable import portable_settings, without_password
from slipway.backup.service import create_backup
from slipway.core.settings import load_settings
from slipway.services import Services


def test_only_paths_that_start_at_the_old_root_are_rewritten() -> None:
    swap = replacer({"/old/home/artifacts": "/new/a", "/old/home": "/new/h"})
    assert swap("/old/home/artifacts/mlflow/1") == "/new/a/mlflow/1"
    assert swap("file:///old/home/artifacts/m") == "file:///new/a/m"
    assert swap("/old/home/jobs/x") == "/new/h/jobs/x"
    assert swap("/old/home") == "/new/h"
    assert swap("/old/homework/x") == "/old/homework/x"  # another folder
    assert swap("/data/old/home/x") == "/data/old/home/x"  # not at a path's start
    assert swap('{"uri": "/old/home/a"}') == '{"uri": "/new/h/a"}'
    s3 = replacer({"s3://bucket/old": "s3://other/new"})
    assert s3("s3://bucket/old/mlflow/2/x") == "s3://other/new/mlflow/2/x"
    assert s3("s3://bucket/older/x") == "s3://bucket/older/x"
    nested = {"a": ["/old/home/x", 3, {"b": "/old/home"}], "c": None}
    assert rewrite_value(nested, swap) == {"a": ["/new/h/x", 3, {"b": "/new/h"}], "c": None}


def test_an_archive_keeps_settings_but_no_secret(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        kafka={"bootstrap_servers": "k:9092", "sasl_username": "u", "sasl_password": "s3cr3t"},
        alerts={"smtp": {"host": "mail", "username": "bot", "password": "hunter2"}},
        online_store={"url": "redis://:r3dis@cache:6379/0"},
    )
    kept = portable_settings(settings)
    assert "sasl_password" not in kept["kafka"] and kept["kafka"]["sasl_username"] == "u"
    assert "password" not in kept["alerts"]["smtp"] and kept["alerts"]["smtp"]["host"] == "mail"
    assert kept["online_store"]["url"] == "redis://cache:6379/0"
    assert without_password("postgresql://me:pw@db/x?sslmode=require") == (
        "postgresql://me@db/x?sslmode=require"
    )
    assert without_password("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    text = json.dumps(kept)
    assert "s3cr3t" not in text and "hunter2" not in text and "r3dis" not in text

    services = Services.open(load_settings(home=tmp_path / "home", kafka=settings.kafka))
    try:
        create_backup(services.settings, tmp_path / "a.tar")
    finally:
        services.close()
    with tarfile.open(tmp_path / "a.tar") as tar:
        names = tar.getnames()
        archived = tar.extractfile("settings.json").read()  # type: ignore[union-attr]
    assert names[-1] == "manifest.json"
    assert json.loads(archived)["kafka"]["bootstrap_servers"] == "k:9092"
    assert b"s3cr3t" not in archived
