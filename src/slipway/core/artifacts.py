"""Slipway's artifact store: immutable-by-convention blobs under one root, over fsspec.

The root is a local path or any fsspec URI (``file:///x``, ``memory://x``,
``s3://bucket/prefix``). Keys are relative, ``/``-separated paths checked by
:func:`validate_key` before any backend call, so no key can name anything outside the root.

Writes are atomic. On a local filesystem the bytes go to ``<root>/.tmp/<uuid>`` (same
filesystem), are fsynced and then ``os.replace``-d into place: a reader sees the old object
or the new one, never a partial one, and a writer that dies leaves only an orphan under
``.tmp`` (never listed, safe to delete when no write is running). Elsewhere the bytes are
buffered to a local temporary file and sent with the backend's single ``put``, which object
stores apply atomically.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import posixpath
import re
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from slipway.core.errors import (
    Conflict,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    is_out_of_space,
)

TMP_DIR = ".tmp"
MAX_KEY_LENGTH = 1024
_CHUNK = 1024 * 1024
_SEGMENT = re.compile(r"[A-Za-z0-9._=+@,-]+")
# Backend errors that mean "a file and a folder want the same name".
_SHAPE_ERRORS = (IsADirectoryError, NotADirectoryError, FileExistsError)


def validate_key(key: str, field: str = "key") -> str:
    """Return ``key`` if it is a safe artifact key, else raise :class:`InvalidInput`.

    A key is a non-empty ASCII string of ``/``-separated segments, each made of letters,
    digits and ``._-=+@,``; ``.`` and ``..`` segments, empty segments (``a//b``, a leading or
    trailing ``/``), ``%``, ``:``, backslashes, control and non-ASCII characters are refused,
    as is a first segment equal to the store's temp folder (``.tmp``). The error names
    ``field``.
    """
    if not isinstance(key, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if not key:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"{field} is longer than {MAX_KEY_LENGTH} characters", field=field)
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            raise InvalidInput(
                f"{field} {key!r} is not a valid key: use '/'-separated segments of ASCII"
                " letters, digits and '._-=+@,', with no empty, '.' or '..' segment",
                field=field,
            )
    if segments[0] == TMP_DIR:
        raise InvalidInput(f"{field} must not start with the reserved {TMP_DIR!r}", field=field)
    return key


@dataclass(frozen=True)
class ArtifactInfo:
    """What a put stored: the key, its size in bytes, its SHA-256 hex digest and full URI."""

    key: str
    size: int
    sha256: str
    uri: str


class ArtifactStore:
    """Keys to bytes under one root URI; every method validates its keys first.

    Missing keys raise :class:`NotFound`; putting a file where a folder is (or the reverse)
    raises :class:`Conflict`. Puts overwrite an existing key atomically.
    """

    def __init__(self, root: str) -> None:
        # No listings cache: other processes (workers, the tracking server, a user's
        # client) write under the same root, and an object store's cached listing (with
        # each object's ETag) would then fail or mislead later reads of changed objects.
        fs, path = fsspec.core.url_to_fs(root, use_listings_cache=False)
        self._fs: Any = fs
        self._local = isinstance(fs, LocalFileSystem)
        root_path = cast(str, path)
        self._root = os.path.realpath(root_path) if self._local else root_path.rstrip("/")
        self._prefix = self._root.rstrip("/") + "/"  # what every object path starts with

    @property
    def root(self) -> str:
        """The full URI of the store's root."""
        return cast(str, self._fs.unstrip_protocol(self._root))

    def _path(self, key: str, field: str = "key") -> str:
        validate_key(key, field)
        joined = self._prefix + key
        # Defence in depth: validate_key already makes escaping impossible by syntax; this
        # also catches a symlink inside a local root pointing elsewhere.
        resolved = os.path.realpath(joined) if self._local else posixpath.normpath(joined)
        if not resolved.startswith(self._prefix):
            raise InvalidInput(f"{field} {key!r} resolves outside the store", field=field)
        return joined

    def uri(self, key: str) -> str:
        """The full URI of ``key`` (whether or not it exists)."""
        return cast(str, self._fs.unstrip_protocol(self._path(key)))

    # -- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Yield a binary file; on a clean exit its bytes replace ``key`` atomically.

        If the block raises (or the process dies) nothing is stored at ``key`` and any
        previous object there is untouched. A full disk (or quota) raises
        :class:`InsufficientStorage` naming the key's URI, and the partial temporary file is
        removed at once, so the failed write does not keep the space it took.
        """
        dest = self._path(key)
        tmp = ""
        try:
            if self._local:
                tmp_dir = os.path.join(self._root, TMP_DIR)
                os.makedirs(tmp_dir, exist_ok=True)
                tmp = os.path.join(tmp_dir, uuid.uuid4().hex)
            else:
                fd, tmp = tempfile.mkstemp(prefix="slipway-artifact-")
                os.close(fd)
            with builtins.open(tmp, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            self._commit(tmp, dest, key)
        except OSError as exc:
            if not is_out_of_space(exc):
                raise
            uri = self.uri(key)
            raise InsufficientStorage(
                f"no space left to store artifact {key!r} at {uri}: the disk or quota is full;"
                " nothing was written and any previous content there is unchanged",
                path=uri,
                details={"key": key},
            ) from None
        finally:
            if tmp:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _commit(self, tmp: str, dest: str, key: str) -> None:
        try:
            if not self._local:
                self._refuse_shape_clash(dest, key)
                self._fs.put_file(tmp, dest)
                return
            parent = os.path.dirname(dest)
            for attempt in range(3):
                os.makedirs(parent, exist_ok=True)
                try:
                    os.replace(tmp, dest)
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise  # a concurrent delete pruning the parent would not last
            _fsync_dir(parent)
        except _SHAPE_ERRORS:
            raise Conflict(f"{key!r} clashes with an existing key or folder") from None

    def _refuse_shape_clash(self, dest: str, key: str) -> None:
        """An object store has no folders, so ``a`` and ``a/b`` can both be stored there;
        a local filesystem refuses that, and so does this store everywhere: ``get_dir``,
        ``delete`` of a prefix and digests of trees would otherwise mean different things
        per backend. Checked just before the put (a HEAD per ancestor and one listing), so
        not atomic against a concurrent writer of the clashing key."""
        parts = key.split("/")
        for depth in range(1, len(parts)):
            if self._fs.isfile(self._prefix + "/".join(parts[:depth])):
                raise Conflict(f"{key!r} clashes with the existing key {'/'.join(parts[:depth])!r}")
        if self._fs.isdir(dest):
            raise Conflict(f"{key!r} clashes with an existing folder of that name")

    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo:
        """Store ``data`` at ``key`` atomically and describe what was stored."""
        with self.open_write(key) as fh:
            fh.write(data)
        return ArtifactInfo(key, len(data), hashlib.sha256(data).hexdigest(), self.uri(key))

    def put_file(self, key: str, local_path: str | os.PathLike[str]) -> ArtifactInfo:
        """Copy the local file ``local_path`` to ``key`` atomically, hashing as it streams."""
        validate_key(key)
        digest, size = hashlib.sha256(), 0
        if not os.path.isfile(local_path):
            raise NotFound(f"local file {os.fspath(local_path)!r} does not exist")
        with builtins.open(local_path, "rb") as src, self.open_write(key) as fh:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                fh.write(chunk)
        return ArtifactInfo(key, size, digest.hexdigest(), self.uri(key))

    def put_dir(self, prefix: str, local_dir: str | os.PathLike[str]) -> str:
        """Upload every file under ``local_dir`` to ``prefix/<relative path>``; return its digest.

        All relative paths are validated before anything is written. Each file is put
        atomically, but the tree is not: a failure can leave part of it uploaded. Keys already
        under ``prefix`` but absent from ``local_dir`` are kept, so the returned digest (of
        the uploaded tree, as :meth:`tree_digest` defines it) equals ``tree_digest(prefix)``
        when the prefix held nothing else. Symlinked files are read through; symlinked
        folders are not entered. An empty tree raises :class:`InvalidInput`.
        """
        validate_key(prefix, "prefix")
        base = Path(local_dir)
        if not base.is_dir():
            raise NotFound(f"local directory {os.fspath(local_dir)!r} does not exist")
        files: dict[str, Path] = {}
        for dirpath, _dirs, names in os.walk(base):
            for name in names:
                path = Path(dirpath, name)
                rel = path.relative_to(base).as_posix()
                validate_key(f"{prefix}/{rel}", "path")
                files[rel] = path
        if not files:
            raise InvalidInput(f"{os.fspath(local_dir)!r} holds no files", field="local_dir")
        pairs = [(rel, self.put_file(f"{prefix}/{rel}", files[rel]).sha256) for rel in files]
        return _tree_hash(pairs)

    # -- reading -----------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for binary reading; the caller closes it. Missing key: NotFound."""
        path = self._path(key)
        try:
            if self._local:
                return builtins.open(path, "rb")
            if not self._fs.isfile(path):
                raise FileNotFoundError(path)
            return cast(BinaryIO, self._fs.open(path, "rb"))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"artifact {key!r} does not exist") from None

    def locate(self, keys: builtins.list[str]) -> tuple[Any, builtins.list[str]]:
        """The filesystem and paths of ``keys``, for readers that scan many files at once
        (pyarrow datasets, DuckDB): ``None`` stands for the local filesystem."""
        paths = [self._path(key) for key in keys]
        return (None if self._local else self._fs), paths

    def get_bytes(self, key: str) -> bytes:
        """The whole content of ``key``."""
        with self.open(key) as fh:
            return fh.read()

    def get_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        """Copy ``key`` to ``local_path`` (parents created), replacing it atomically."""
        dest = Path(local_path)
        with self.open(key) as src:
            dest.parent.mkdir(parents=True, exist_ok=True)
            part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
            try:
                with builtins.open(part, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                os.replace(part, dest)
            finally:
                part.unlink(missing_ok=True)

    def get_dir(self, prefix: str, local_dir: str | os.PathLike[str]) -> None:
        """Copy every key under ``prefix`` to ``local_dir/<relative path>``.

        Every listed key is re-validated before anything is copied, so a store holding a
        hostile name (written around Slipway) cannot make it write outside ``local_dir``.
        No key under ``prefix``: NotFound.
        """
        keys = self._keys_under(prefix)
        if not keys:
            raise NotFound(f"no artifacts under {prefix!r}")
        for key in keys:
            validate_key(key)
        for key in keys:
            self.get_file(key, Path(local_dir, *key[len(prefix) + 1 :].split("/")))

    def exists(self, key: str) -> bool:
        """True when an object is stored at exactly ``key`` (a folder does not count)."""
        return bool(self._fs.isfile(self._path(key)))

    def digest(self, key: str) -> str:
        """The SHA-256 hex digest of ``key``'s content, read in 1 MiB chunks."""
        digest = hashlib.sha256()
        with self.open(key) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def tree_digest(self, prefix: str) -> str:
        """A stable SHA-256 hex digest of every key under ``prefix`` and its content.

        It is the SHA-256 of the ASCII lines ``"<relative path>\\t<file sha256 hex>\\n"``,
        one per key, sorted by relative path (the key minus ``prefix/``). It depends only on
        names and bytes, not on timestamps or the backend. No key under ``prefix``: NotFound.
        """
        return tree_hash(self.file_digests(prefix))

    def file_digests(self, prefix: str) -> dict[str, str]:
        """The SHA-256 hex digest of every key under ``prefix``, by its relative path: what
        :meth:`tree_digest` hashes, kept so that a changed tree can say which files
        changed. No key under ``prefix``: NotFound."""
        keys = self._keys_under(prefix)
        if not keys:
            raise NotFound(f"no artifacts under {prefix!r}")
        return {key[len(prefix) + 1 :]: self.digest(key) for key in keys}

    def _keys_under(self, prefix: str) -> builtins.list[str]:
        validate_key(prefix, "prefix")
        return [key for key in self.list(prefix) if key.startswith(prefix + "/")]

    # -- deleting and listing ----------------------------------------------------------

    def delete(self, key_or_prefix: str) -> None:
        """Delete the object at ``key_or_prefix``, or every key under it (recursively).

        On a local root, folders left empty are removed. Nothing there: NotFound.
        """
        path = self._path(key_or_prefix)
        if not self._fs.isfile(path) and not self.list(key_or_prefix):
            raise NotFound(f"artifact {key_or_prefix!r} does not exist")
        try:
            self._fs.rm(path, recursive=True)
        except FileNotFoundError:
            raise NotFound(f"artifact {key_or_prefix!r} does not exist") from None
        if self._local:
            parent = os.path.dirname(path)
            while parent != self._root:
                try:
                    os.rmdir(parent)
                except OSError:
                    break  # not empty (or already gone): leave it and everything above
                parent = os.path.dirname(parent)

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Every key equal to or under ``prefix`` (all keys for ``""``), recursive, sorted.

        Folders and the temp folder's contents are never listed.
        """
        base = self._path(prefix, "prefix") if prefix else self._root
        start = len(self._prefix)
        keys = []
        for found in self._fs.find(base):
            key = cast(str, found)[start:]
            if key and key.split("/")[0] != TMP_DIR:
                keys.append(key)
        return sorted(keys)


def tree_hash(files: Mapping[str, str]) -> str:
    """The tree digest (see :meth:`ArtifactStore.tree_digest`) of relative paths and their
    SHA-256 hex digests: a list of per-file digests can be checked against a tree digest
    recorded elsewhere without reading any file."""
    return _tree_hash(list(files.items()))


def _tree_hash(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for rel, sha in sorted(pairs):
        digest.update(f"{rel}\t{sha}\n".encode("ascii"))
    return digest.hexdigest()


def _fsync_dir(path: str) -> None:
    # Makes the rename durable across a power cut; not every platform can open a folder.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
