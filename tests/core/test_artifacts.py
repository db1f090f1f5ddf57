"""Tests for slipway.core.artifacts, run over a local root, a memory:// root and an s3://
root on the local S3 test server."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest

from slipway.core.artifacts import TMP_DIR, ArtifactInfo, ArtifactStore, validate_key
from slipway.core.errors import Conflict, InvalidInput, NotFound

TRAVERSAL_PAYLOADS = [
    "../x",
    "..\\x",
    "%2e%2e%2f",
    "%252e%252e%252f",
    "/etc/passwd",
    "a/../../b",
    "file:///etc/",
    "\uff0e\uff0e/x",
    "\uff0e\uff0e\uff0fx",
    "a\x00b",
    "a//b",
    "./a",
    "a/",
    "",
]


def _open_write(store: ArtifactStore, key: str) -> None:
    with store.open_write(key) as fh:
        fh.write(b"payload")


OPERATIONS: dict[str, Callable[[ArtifactStore, str], object]] = {
    "put_bytes": lambda store, key: store.put_bytes(key, b"payload"),
    "get_bytes": lambda store, key: store.get_bytes(key),
    "open_write": _open_write,
    "delete": lambda store, key: store.delete(key),
    "exists": lambda store, key: store.exists(key),
}


def _memory_fs() -> Any:
    return fsspec.filesystem("memory")


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "local":
        (tmp_path / "sentinel.txt").write_bytes(b"outside the store")
        yield ArtifactStore(str(tmp_path / "parent" / "store"))
        return
    if request.param == "s3":
        yield ArtifactStore(request.getfixturevalue("s3_root"))
        return
    path = f"/slipway-test-{uuid.uuid4().hex}"
    yield ArtifactStore(f"memory://{path}")
    if _memory_fs().exists(path):
        _memory_fs().rm(path, recursive=True)


def _snapshot(tmp_path: Path) -> dict[str, bytes]:
    """Everything a misbehaving store could have touched: the local tree and the memory fs."""
    files = {str(p): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    dirs = {str(p): b"<dir>" for p in tmp_path.rglob("*") if p.is_dir()}
    memory = {f"memory:{k}": v.getvalue() for k, v in _memory_fs().store.items()}
    return files | dirs | memory


# -- key validation --------------------------------------------------------------------


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("payload", TRAVERSAL_PAYLOADS)
def test_traversal_payloads_are_refused_and_write_nothing(
    store: ArtifactStore, tmp_path: Path, payload: str, operation: str
) -> None:
    before = _snapshot(tmp_path)
    with pytest.raises(InvalidInput) as excinfo:
        OPERATIONS[operation](store, payload)
    assert excinfo.value.field == "key"
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "key",
    ["a/./b", "a b", ".tmp", ".tmp/x", "C:\\x", "a\nb", "a\tb", "caf\u00e9", "a%2fb", "~/x", "a?b"],
)
def test_validate_key_refuses_more_unsafe_keys(key: str) -> None:
    with pytest.raises(InvalidInput):
        validate_key(key)


def test_validate_key_names_the_field_and_refuses_non_strings() -> None:
    with pytest.raises(InvalidInput) as excinfo:
        validate_key("../x", "prefix")
    assert excinfo.value.field == "prefix"
    assert excinfo.value.to_dict()["error"]["details"] == {"field": "prefix"}
    with pytest.raises(InvalidInput):
        validate_key(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        validate_key("a" * 1025)


@pytest.mark.parametrize(
    "key", ["a", "models/v1/model.pkl", "x=1,y=2+z@host", "A-b_c.d", ".hidden", "a..b", ".tmpx"]
)
def test_validate_key_accepts_safe_keys(key: str) -> None:
    assert validate_key(key) == key


def test_list_prefix_and_put_dir_prefix_are_validated(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        store.list("../x")
    assert excinfo.value.field == "prefix"
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"1")
    with pytest.raises(InvalidInput):
        store.put_dir("a/../..", src)


# -- round trips -----------------------------------------------------------------------


def test_put_bytes_get_bytes_round_trip(store: ArtifactStore) -> None:
    data = b"\x00\x01hello\xff" * 100
    info = store.put_bytes("models/m1/weights.bin", data)
    assert info == ArtifactInfo(
        key="models/m1/weights.bin",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uri=store.uri("models/m1/weights.bin"),
    )
    assert store.get_bytes("models/m1/weights.bin") == data
    assert store.exists("models/m1/weights.bin")
    assert not store.exists("models/m1")
    with store.open("models/m1/weights.bin") as fh:
        assert fh.read() == data


def test_put_overwrites_atomically(store: ArtifactStore) -> None:
    store.put_bytes("k", b"old")
    store.put_bytes("k", b"new")
    assert store.get_bytes("k") == b"new"
    assert store.list() == ["k"]


def test_put_file_and_get_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    data = os.urandom(3 * 1024 * 1024 + 7)
    src.write_bytes(data)
    info = store.put_file("blobs/in.bin", src)
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    dest = tmp_path / "out" / "nested" / "copy.bin"
    store.get_file("blobs/in.bin", dest)
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]


def test_put_dir_and_get_dir_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a")
    (src / "sub" / "b.txt").write_bytes(b"b")
    (src / "sub" / "deeper" / "c.bin").write_bytes(b"\x00c")
    digest = store.put_dir("runs/r1", src)
    assert store.list("runs/r1") == [
        "runs/r1/a.txt",
        "runs/r1/sub/b.txt",
        "runs/r1/sub/deeper/c.bin",
    ]
    assert digest == store.tree_digest("runs/r1")
    out = tmp_path / "out"
    store.get_dir("runs/r1", out)
    copied = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert copied == {"a.txt": b"a", "sub/b.txt": b"b", "sub/deeper/c.bin": b"\x00c"}


def test_put_dir_refuses_bad_names_before_uploading(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    src.mkdir()
    (src / "fine.txt").write_bytes(b"1")
    (src / "not fine.txt").write_bytes(b"2")
    with pytest.raises(InvalidInput) as excinfo:
        store.put_dir("t", src)
    assert excinfo.value.field == "path"
    assert store.list() == []
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput):
        store.put_dir("t", tmp_path / "empty")


def test_open_write_failure_keeps_previous_object(store: ArtifactStore) -> None:
    store.put_bytes("k", b"old")
    with pytest.raises(RuntimeError), store.open_write("k") as fh:
        fh.write(b"partial")
        raise RuntimeError("writer failed")
    assert store.get_bytes("k") == b"old"
    assert store.list() == ["k"]


def test_uri_names_the_key(store: ArtifactStore, tmp_path: Path) -> None:
    uri = store.uri("a/b.txt")
    if uri.startswith("file://"):
        assert uri == (tmp_path / "parent" / "store" / "a" / "b.txt").resolve().as_uri()
    else:
        assert uri.startswith(("memory://", "s3://slipway-test/")) and uri.endswith("/a/b.txt")
    assert store.root.startswith(uri.split("://")[0])


def test_local_root_is_created_on_first_write(tmp_path: Path) -> None:
    root = tmp_path / "later"
    store = ArtifactStore(f"file://{root}")
    assert not root.exists()
    assert store.list() == []
    store.put_bytes("x", b"1")
    assert (root / "x").read_bytes() == b"1"


# -- digests ---------------------------------------------------------------------------


def test_digest_matches_hashlib(store: ArtifactStore) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    store.put_bytes("big", data)
    assert store.digest("big") == hashlib.sha256(data).hexdigest()


def test_tree_digest_is_documented_stable_and_content_sensitive(store: ArtifactStore) -> None:
    files = {"z.txt": b"zz", "a/b.bin": b"\x00\x01", "a/c": b""}
    for rel, data in files.items():
        store.put_bytes(f"t1/{rel}", data)
        store.put_bytes(f"t2/{rel}", data)
    expected = hashlib.sha256(
        b"".join(
            f"{rel}\t{hashlib.sha256(files[rel]).hexdigest()}\n".encode() for rel in sorted(files)
        )
    ).hexdigest()
    assert store.tree_digest("t1") == store.tree_digest("t2") == expected
    assert store.tree_digest("t1") == expected  # stable across calls

    store.put_bytes("t2/a/b.bin", b"\x00\x02")
    assert store.tree_digest("t2") != expected
    store.put_bytes("t2/a/b.bin", b"\x00\x01")
    assert store.tree_digest("t2") == expected
    store.delete("t2/z.txt")
    store.put_bytes("t2/y.txt", b"zz")
    assert store.tree_digest("t2") != expected


# -- listing and deleting --------------------------------------------------------------


def test_list_is_recursive_sorted_and_prefix_scoped(store: ArtifactStore) -> None:
    for key in ["b/2", "a", "b/1/x", "bb", "c/d/e/f"]:
        store.put_bytes(key, b"1")
    assert store.list() == ["a", "b/1/x", "b/2", "bb", "c/d/e/f"]
    assert store.list("b") == ["b/1/x", "b/2"]
    assert store.list("a") == ["a"]
    assert store.list("nope") == []


def test_list_never_shows_temp_files(store: ArtifactStore) -> None:
    store.put_bytes("done", b"1")
    with store.open_write("pending") as fh:
        fh.write(b"partial")
        fh.flush()
        assert store.list() == ["done"]
        assert not store.exists("pending")
    assert store.list() == ["done", "pending"]


def test_list_ignores_orphaned_local_temp_files(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    (tmp_path / TMP_DIR).mkdir()
    (tmp_path / TMP_DIR / uuid.uuid4().hex).write_bytes(b"orphan")
    store.put_bytes("k", b"1")
    assert store.list() == ["k"]


def test_delete_key_and_prefix(store: ArtifactStore, tmp_path: Path) -> None:
    for key in ["a/b/1", "a/b/2", "a/c", "ab"]:
        store.put_bytes(key, b"1")
    store.delete("a/b/1")
    assert store.list() == ["a/b/2", "a/c", "ab"]
    store.delete("a/b")
    assert store.list() == ["a/c", "ab"]
    store.delete("a")
    assert store.list() == ["ab"]
    store.put_bytes("a", b"file where a folder was")
    assert store.get_bytes("a") == b"file where a folder was"
    root = tmp_path / "parent" / "store"
    if root.exists():  # local: folders emptied by deletes are pruned
        assert sorted(p.name for p in root.iterdir() if p.name != TMP_DIR) == ["a", "ab"]


def test_file_and_folder_cannot_share_a_name(store: ArtifactStore) -> None:
    store.put_bytes("a", b"1")
    with pytest.raises(Conflict):
        store.put_bytes("a/b", b"2")
    with pytest.raises(Conflict):
        store.put_bytes("a/b/c", b"3")
    store.put_bytes("x/y/z", b"4")
    for folder in ("x", "x/y"):
        with pytest.raises(Conflict):
            store.put_bytes(folder, b"5")
    assert store.list() == ["a", "x/y/z"]


def test_missing_keys_raise_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    store.put_bytes("present/x", b"1")
    calls: list[Callable[[], object]] = [
        lambda: store.get_bytes("missing"),
        lambda: store.open("missing"),
        lambda: store.open("present"),
        lambda: store.digest("missing"),
        lambda: store.delete("missing"),
        lambda: store.tree_digest("missing"),
        lambda: store.get_file("missing", tmp_path / "out"),
        lambda: store.get_dir("missing", tmp_path / "outdir"),
        lambda: store.get_bytes("present/x/deeper"),
        lambda: store.put_file("k", tmp_path / "no-such-file"),
        lambda: store.put_dir("k", tmp_path / "no-such-dir"),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "outdir").exists()
    assert not store.exists("missing")


def test_get_dir_refuses_hostile_keys_written_around_the_store(tmp_path: Path) -> None:
    path = f"/slipway-test-{uuid.uuid4().hex}"
    store = ArtifactStore(f"memory://{path}")
    try:
        _memory_fs().pipe(f"{path}/p/../../evil", b"x")
        _memory_fs().pipe(f"{path}/p/ok", b"x")
        with pytest.raises(InvalidInput):
            store.get_dir("p", tmp_path / "out" / "in")
        assert list(tmp_path.rglob("*")) == []
    finally:
        _memory_fs().rm(path, recursive=True)


# -- atomicity under a crash -----------------------------------------------------------

CRASHING_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from slipway.core.artifacts import ArtifactStore

    store = ArtifactStore(sys.argv[1])
    with store.open_write("big.bin") as fh:
        fh.write(b"x" * (4 * 1024 * 1024))
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        fh.write(b"never reached")
    """
)


def test_writer_killed_mid_write_leaves_nothing_at_the_key(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(root)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    store = ArtifactStore(str(root))
    assert not store.exists("big.bin")
    assert store.list() == []
    # The child really died mid-write: its flushed bytes sit in an orphaned temp file.
    orphans = list((root / TMP_DIR).iterdir())
    assert [p.stat().st_size for p in orphans] == [4 * 1024 * 1024]
