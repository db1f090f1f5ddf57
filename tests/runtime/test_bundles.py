"""Code bundles: packed the same way every time, checked member by member, unpacked only
when they still match their digest (slipway.runtime.bundles)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from slipway.core.artifacts import ArtifactStore
from slipway.core.errors import InvalidInput, NotFound
from slipway.runtime import bundles

LIMITS = {"max_files": 100, "max_unpacked_bytes": 1_000_000}


def code_folder(root: Path) -> Path:
    """A project with a package, a module, and what a bundle leaves out."""
    (root / "trainer").mkdir(parents=True)
    (root / "trainer" / "__init__.py").write_text("")
    (root / "trainer" / "fit.py").write_text("def fit(**kw):\n    return kw\n")
    (root / "helpers.py").write_text("X = 1\n")
    (root / "data.csv").write_text("a,b\n1,2\n")
    (root / "trainer" / "__pycache__").mkdir()
    (root / "trainer" / "__pycache__" / "fit.cpython-311.pyc").write_bytes(b"\0")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("secret")
    (root / "venv").mkdir()
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr")
    (root / "venv" / "big.py").write_text("")
    return root


def members(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return sorted(m.name for m in tar if m.isfile())


def archive(*entries: tarfile.TarInfo, content: bytes = b"x") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info in entries:
            if info.isfile():
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return gzip.compress(raw.getvalue())


def test_a_folder_packs_to_the_same_bytes_without_caches_secrets_or_environments(
    tmp_path: Path,
) -> None:
    folder = code_folder(tmp_path / "project")
    first = bundles.pack(folder)
    os.utime(folder / "helpers.py", (1, 1))  # times are not packed
    assert bundles.pack(folder) == first
    assert members(first) == ["data.csv", "helpers.py", "trainer/__init__.py", "trainer/fit.py"]
    assert members(bundles.pack(folder, only={"trainer"})) == [
        "trainer/__init__.py",
        "trainer/fit.py",
    ]
    assert members(bundles.pack(folder, only={"helpers"})) == ["helpers.py"]


def test_a_link_is_packed_only_when_it_points_inside_the_folder(tmp_path: Path) -> None:
    folder = code_folder(tmp_path / "project")
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (folder / "leak.txt").symlink_to(secret)
    (folder / "alias.py").symlink_to(folder / "helpers.py")
    packed = bundles.pack(folder)
    assert "leak.txt" not in members(packed)
    assert "alias.py" in members(packed)


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (tarfile.TarInfo("../escape.py"), "not a relative path"),
        (tarfile.TarInfo("/etc/cron.d/x"), "not a relative path"),
        (tarfile.TarInfo("a/./b.py"), "not a relative path"),
    ],
)
def test_members_with_unsafe_names_are_refused(info: tarfile.TarInfo, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        bundles.inspect(archive(info), **LIMITS)
    assert caught.value.field == "bundle"


@pytest.mark.parametrize(
    "kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)
def test_links_and_devices_are_refused(kind: bytes) -> None:
    info = tarfile.TarInfo("passwd")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(InvalidInput, match="not a plain file"):
        bundles.inspect(archive(info), **LIMITS)


def test_limits_garbage_and_empty_archives_are_refused() -> None:
    many = [tarfile.TarInfo(f"m{i}.py") for i in range(101)]
    with pytest.raises(InvalidInput, match="more than 100 files"):
        bundles.inspect(archive(*many), **LIMITS)
    with pytest.raises(InvalidInput, match="unpacks to more than 1000000 bytes"):
        bundles.inspect(archive(tarfile.TarInfo("big.py"), content=b"x" * 1_000_001), **LIMITS)
    with pytest.raises(InvalidInput, match="not a gzipped tar"):
        bundles.inspect(b"not a tar at all", **LIMITS)
    with pytest.raises(InvalidInput, match="holds no file"):
        folder = tarfile.TarInfo("only-a-folder")
        folder.type = tarfile.DIRTYPE
        bundles.inspect(archive(folder), **LIMITS)


def test_stored_once_unpacked_read_only_and_refused_when_tampered(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    data = bundles.pack(code_folder(tmp_path / "project"))
    stored = bundles.store(store, data, **LIMITS)
    assert stored.uri == f"{bundles.PREFIX}{stored.digest}" and stored.files == 4
    assert stored.top_level == ["data.csv", "helpers", "trainer"][1:]  # data.csv is no name
    assert bundles.store(store, data, **LIMITS) == stored
    assert bundles.describe(store, stored.uri) == stored

    cache = tmp_path / "cache"
    folder = bundles.materialize(store, stored.uri, cache)
    assert (folder / "trainer" / "fit.py").read_text().startswith("def fit")
    assert not os.access(folder / "helpers.py", os.W_OK) or os.geteuid() == 0
    assert bundles.materialize(store, stored.uri, cache) == folder
    assert [p.name for p in cache.iterdir()] == [stored.digest]  # no staging left behind

    store.put_bytes(
        bundles.bundle_key(stored.digest), bundles.pack(tmp_path / "project", only={"helpers"})
    )
    with pytest.raises(bundles.BundleCorrupt):
        bundles.unpack(store, stored.uri, tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_references_are_checked() -> None:
    store = ArtifactStore("/nonexistent-root")
    with pytest.raises(InvalidInput, match="not a code bundle reference") as caught:
        bundles.describe(store, "bundle:sha256:../../etc", field="source_dir")
    assert caught.value.field == "source_dir"
    with pytest.raises(NotFound):
        bundles.describe(store, f"{bundles.PREFIX}{'0' * 64}")
    assert bundles.provides(["trainer"], "trainer.fit:fit")
    assert not bundles.provides(["trainer"], "os:system")
