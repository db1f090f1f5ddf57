"""Archives a restore must refuse, writing nothing: corrupt, incomplete, hostile, foreign.

Each case starts from a real archive of a small platform, re-packed with one thing wrong,
and checks the error names the member and that neither the target home nor anything
beside it was written.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from slipway.backup.archive import MANIFEST
from slipway.backup.service import create_backup, restore_backup
from slipway.core.errors import Conflict, InvalidInput
from slipway.core.settings import Settings, load_settings
from slipway.services import Services
from tests.backup.platform import create_groups

Members = list[tuple[tarfile.TarInfo, bytes]]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    services = Services.open(load_settings(home=tmp_path / "source" / "home"))
    try:
        create_groups(services)
        create_backup(services.settings, tmp_path / "small.tar")
        return tmp_path / "small.tar"
    finally:
        services.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "fresh" / "home")


def _members(path: Path) -> Members:
    with tarfile.open(path) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar]  # type: ignore[union-attr]


def _pack(path: Path, members: Members) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _entry(
    name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info, data


def _first(members: Members, prefix: str) -> int:
    return next(i for i, (m, _) in enumerate(members) if m.name.startswith(prefix))


def _corrupt(members: Members) -> Members:
    i = _first(members, "artifacts/features/weather/part-")
    info, data = members[i]
    members[i] = (info, data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    return members


def _missing(members: Members) -> Members:
    del members[_first(members, "artifacts/features/weather/_delta_log/")]
    return members


def _unlisted(members: Members) -> Members:
    return [_entry("artifacts/extra.bin"), *members]


def _no_manifest(members: Members) -> Members:
    return [(m, d) for m, d in members if m.name != MANIFEST]


def _newer_format(members: Members) -> Members:
    i = _first(members, MANIFEST)
    body = json.loads(members[i][1])
    body["format_version"] = 99
    members[i] = (members[i][0], json.dumps(body).encode())
    return members


CASES: dict[str, tuple[Callable[[Members], Members], str]] = {
    "digest mismatch": (_corrupt, "artifacts/features/weather/part-"),
    "missing file": (_missing, "artifacts/features/weather/_delta_log/"),
    "file not in the manifest": (_unlisted, "artifacts/extra.bin"),
    "no manifest": (_no_manifest, "has no manifest.json"),
    "newer format": (_newer_format, "archive format 99"),
    "parent traversal": (lambda m: [_entry("../escaped.txt"), *m], "'../escaped.txt'"),
    "nested traversal": (lambda m: [_entry("artifacts/../../escaped.txt"), *m], "escaped.txt"),
    "absolute name": (lambda m: [_entry("/tmp/slipway-escaped.txt"), *m], "/tmp/slipway-esc"),
    "symbolic link": (
        lambda m: [_entry("artifacts/link", b"", tarfile.SYMTYPE, "/etc/passwd"), *m],
        "symbolic link",
    ),
    "hard link": (
        lambda m: [_entry("artifacts/hard", b"", tarfile.LNKTYPE, "/etc/passwd"), *m],
        "hard link",
    ),
    "unknown top level": (lambda m: [_entry("etc/cron.d/x"), *m], "not part of a Slipway"),
    "duplicate member": (lambda m: [*m[:1], *m], "appears twice"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_archive_is_refused_and_nothing_is_written(
    case: str, archive: Path, fresh: Settings, tmp_path: Path
) -> None:
    tamper, named = CASES[case]
    bad = _pack(tmp_path / "bad.tar", tamper(_members(archive)))
    beside = sorted(fresh.home.parent.parent.iterdir())
    with pytest.raises(InvalidInput) as caught:
        restore_backup(fresh, bad)
    assert named in caught.value.message
    assert caught.value.status_code == 400
    assert not fresh.home.exists()
    assert sorted(fresh.home.parent.parent.iterdir()) == beside  # no staging left behind
    assert not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/slipway-escaped.txt").exists()


def test_what_is_not_an_archive_is_refused(tmp_path: Path, fresh: Settings) -> None:
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(InvalidInput, match="not a readable Slipway archive"):
        restore_backup(fresh, garbage)
    with pytest.raises(InvalidInput, match="does not exist") as caught:
        restore_backup(fresh, tmp_path / "nowhere.tar")
    assert caught.value.field == "path"
    assert not fresh.home.exists()


def test_a_truncated_compressed_archive_is_refused(tmp_path: Path, fresh: Settings) -> None:
    services = Services.open(load_settings(home=tmp_path / "source" / "home"))
    try:
        create_groups(services)
        whole = tmp_path / "small.tar.zst"
        create_backup(services.settings, whole)
    finally:
        services.close()
    cut = tmp_path / "cut.tar.zst"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InvalidInput):
        restore_backup(fresh, cut)
    assert not fresh.home.exists()


def test_a_non_empty_target_is_refused_unless_forced(
    database_url: str, target: Settings, tmp_path: Path
) -> None:
    services = Services.open(
        load_settings(home=tmp_path / "source", database={"url": database_url})
    )
    try:
        create_groups(services)
        archive = tmp_path / "p.tar"
        create_backup(services.settings, archive)
    finally:
        services.close()
    restore_backup(target, archive)
    with pytest.raises(Conflict, match="not empty") as caught:
        restore_backup(target, archive)
    occupied = ["database.url", "artifacts.root", "online_store.url"]
    assert caught.value.details["occupied"] == occupied
    stray = Path(target.artifact_root) / "features" / "stray" / "file.bin"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left over")
    restore_backup(target, archive, force=True)
    assert not stray.exists()  # --force replaces, it does not merge
    restored = Services.open(target)
    try:
        assert restored.features.read_offline("weather").num_rows == 36
        assert len(restored.features.ingests("weather")) == 3  # loaded once, not twice
    finally:
        restored.close()


def test_an_archive_is_restored_only_into_its_engine(
    archive: Path, postgres_url: str, tmp_path: Path
) -> None:
    target = load_settings(home=tmp_path / "pg" / "home", database={"url": postgres_url})
    with pytest.raises(InvalidInput, match="holds a sqlite database") as caught:
        restore_backup(target, archive)
    assert caught.value.field == "database.url"
    assert not target.home.exists()


def test_a_backup_never_overwrites_and_needs_a_known_suffix(archive: Path, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "source" / "home")
    with pytest.raises(Conflict, match="exists already"):
        create_backup(settings, archive)
    with pytest.raises(InvalidInput, match=r"\*\.tar") as caught:
        create_backup(settings, tmp_path / "backup.zip")
    assert caught.value.field == "path"
    with pytest.raises(InvalidInput, match="inside the artifact root"):
        create_backup(settings, Path(settings.artifact_root) / "b.tar")
    assert not (tmp_path / "backup.zip").exists()
