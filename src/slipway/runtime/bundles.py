"""Code bundles: the code a job runs, uploaded once and kept by its digest.

A training job's ``source_dir`` and a tuning job's or pipeline's ``code_paths`` name the
code the workers import. Named as a host folder, that is whatever the folder holds when a
worker gets to it — and, from a remote caller, any folder the server can read. A bundle
is a gzipped tar of the caller's code, stored in the artifact store under its SHA-256 and
named ``bundle:sha256:<hex>``: what runs is exactly what was uploaded, the digest sits in
the job's spec (its lineage), and a worker unpacks it into a private cache only after
checking the digest and every member again (regular files and folders under the bundle's
own root; no links, devices, absolute or ``..`` names).

The remote client packs and uploads a folder for the caller (:func:`pack`); the control
plane checks and stores it (:func:`store`); workers turn a reference into a folder to
import from (:func:`import_paths`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path, PurePosixPath

from pydantic import BaseModel

from slipway.core.artifacts import ArtifactStore
from slipway.core.errors import InvalidInput, NotFound, SlipwayError
from slipway.core.settings import Settings

PREFIX = "bundle:sha256:"
STORE_PREFIX = "code-bundles"
MEDIA_TYPE = "application/gzip"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# Never packed: byte-code caches and the folders of tools, not code.
_SKIPPED = frozenset({"__pycache__", "node_modules"})
# What a worker accepts when it unpacks a bundle the control plane has checked already
# (the server's own limits may have been raised since; these only stop a runaway).
_UNPACK_FILES = 1_000_000
_UNPACK_BYTES = 16 * 1024**3


class CodeBundle(BaseModel):
    """A stored bundle: its reference, and what it holds."""

    uri: str
    digest: str
    bytes: int
    files: int
    unpacked_bytes: int
    # The importable names at the bundle's top level (``train`` for train.py or train/).
    top_level: list[str]


class BundleCorrupt(SlipwayError):
    """A stored bundle no longer matches its digest: someone changed the artifact store."""

    status_code = 500
    code = "bundle_corrupt"


def is_bundle(ref: str) -> bool:
    return ref.startswith(PREFIX)


def digest_of(ref: str, *, field: str) -> str:
    """The SHA-256 a bundle reference names, or :class:`InvalidInput` naming ``field``."""
    digest = ref.removeprefix(PREFIX)
    if not is_bundle(ref) or not _DIGEST.match(digest):
        raise InvalidInput(
            f"{field}: {ref!r} is not a code bundle reference ({PREFIX}<64 hex digits>)",
            field=field,
        )
    return digest


def bundle_key(digest: str) -> str:
    return f"{STORE_PREFIX}/{digest}.tar.gz"


def top_level_names(files: Collection[str]) -> list[str]:
    """The names a bundle's files make importable from its root."""
    names = set()
    for name in files:
        parts = PurePosixPath(name).parts
        if len(parts) > 1:
            names.add(parts[0])
        elif parts and parts[0].endswith(".py"):
            names.add(parts[0][: -len(".py")])
    return sorted(n for n in names if n.isidentifier())


def provides(top_level: Collection[str], target: str) -> bool:
    """Whether a ``module[:attribute]`` target is imported from code with these names."""
    module = target.partition(":")[0]
    return module.split(".")[0] in top_level


# ---------------------------------------------------------------------------------- packing


def _entries(folder: Path, only: Collection[str] | None) -> Iterator[tuple[str, Path]]:
    """``(name in the bundle, file)`` for every file packed from ``folder``, sorted."""
    root = folder.resolve()
    for current, dirs, files in os.walk(root):
        here = Path(current)
        top = here == root
        if (here / "pyvenv.cfg").exists():  # a virtual environment, not code
            dirs[:] = []
            continue
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIPPED
            and not d.startswith(".")
            and not (top and only is not None and d not in only)
        )
        for name in sorted(files):
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            if top and only is not None and name.removesuffix(".py") not in only:
                continue
            path = here / name
            real = path.resolve()
            # A link is packed as the file it points to, if that lies inside the folder.
            if real != path and not real.is_relative_to(root):
                continue
            if real.is_file():
                yield path.relative_to(root).as_posix(), real


def pack(folder: str | os.PathLike[str], *, only: Collection[str] | None = None) -> bytes:
    """``folder`` as a bundle: a gzipped tar, byte for byte the same for the same files
    (sorted, no times or owners), so packing twice uploads once. ``only`` keeps just
    these top-level names (packages, or modules without ``.py``); hidden entries, byte
    code, ``__pycache__`` and virtual environments are left out."""
    path = Path(folder)
    if not path.is_dir():
        raise InvalidInput(f"{folder}: not a folder to pack as code", field="source_dir")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, file in _entries(path, only):
            info = tarfile.TarInfo(name)
            info.size = file.stat().st_size
            info.mode = 0o755 if os.access(file, os.X_OK) else 0o644
            with file.open("rb") as handle:
                tar.addfile(info, handle)
    return gzip.compress(raw.getvalue(), mtime=0)


# ------------------------------------------------------------------------- checking, storing


def inspect(data: bytes, *, max_files: int, max_unpacked_bytes: int) -> tuple[list[str], int]:
    """The files a bundle holds and their total size, or :class:`InvalidInput` (field
    ``bundle``) when it is not a gzipped tar of plain files and folders with safe names
    within the limits."""

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"bundle: {reason}", field="bundle")

    files: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                name = member.name
                parts = name.rstrip("/").split("/")
                if (
                    name.startswith("/")
                    or "\\" in name
                    or "\x00" in name
                    or any(p in ("", ".", "..") for p in parts)
                ):
                    raise refuse(f"member {name!r} is not a relative path inside the bundle")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise refuse(f"member {name!r} is not a plain file (links are not packed)")
                files.append(name)
                total += member.size
                if len(files) > max_files:
                    raise refuse(f"more than {max_files} files (code.max_bundle_files)")
                if total > max_unpacked_bytes:
                    raise refuse(
                        f"unpacks to more than {max_unpacked_bytes} bytes"
                        " (code.max_bundle_unpacked_bytes)"
                    )
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as exc:
        raise refuse(f"not a gzipped tar archive ({exc})") from None
    if not files:
        raise refuse("holds no file")
    return files, total


def store(
    artifacts: ArtifactStore, data: bytes, *, max_files: int, max_unpacked_bytes: int
) -> CodeBundle:
    """Check ``data`` and keep it under its digest (once: the same code is one bundle)."""
    files, unpacked = inspect(data, max_files=max_files, max_unpacked_bytes=max_unpacked_bytes)
    digest = hashlib.sha256(data).hexdigest()
    key = bundle_key(digest)
    if not artifacts.exists(key):
        artifacts.put_bytes(key, data)
    return _described(digest, data, files, unpacked)


def _described(digest: str, data: bytes, files: list[str], unpacked: int) -> CodeBundle:
    return CodeBundle(
        uri=f"{PREFIX}{digest}",
        digest=digest,
        bytes=len(data),
        files=len(files),
        unpacked_bytes=unpacked,
        top_level=top_level_names(files),
    )


def _fetch(artifacts: ArtifactStore, ref: str, field: str) -> tuple[str, bytes]:
    digest = digest_of(ref, field=field)
    key = bundle_key(digest)
    if not artifacts.exists(key):
        raise NotFound(f"{field}: no code bundle {ref} (upload it first)", details={"field": field})
    data = artifacts.get_bytes(key)
    if hashlib.sha256(data).hexdigest() != digest:
        raise BundleCorrupt(f"code bundle {ref} does not match its digest any more")
    return digest, data


def describe(artifacts: ArtifactStore, ref: str, *, field: str = "bundle") -> CodeBundle:
    """A stored bundle, read back and checked; :class:`NotFound` when there is none."""
    digest, data = _fetch(artifacts, ref, field)
    files, unpacked = inspect(data, max_files=_UNPACK_FILES, max_unpacked_bytes=_UNPACK_BYTES)
    return _described(digest, data, files, unpacked)


# ------------------------------------------------------------------------------- unpacking


def materialize(
    artifacts: ArtifactStore, ref: str, cache: str | os.PathLike[str], *, field: str = "code"
) -> Path:
    """The folder holding bundle ``ref``'s files on this machine, unpacked once into
    ``cache`` under the digest (files read-only), for processes that import from it."""
    dest = Path(cache) / digest_of(ref, field=field)
    if not dest.is_dir():
        unpack(artifacts, ref, dest, field=field, read_only=True)
    return dest


def unpack(
    artifacts: ArtifactStore,
    ref: str,
    dest: str | os.PathLike[str],
    *,
    field: str = "code",
    read_only: bool = False,
) -> Path:
    """Bundle ``ref``'s files in the new folder ``dest``: checked against the digest and
    member by member, unpacked beside it, then renamed into place, so a folder that
    exists is complete and concurrent workers never see half of one (the first rename
    wins; the others find it there)."""
    target = Path(dest)
    digest, data = _fetch(artifacts, ref, field)
    inspect(data, max_files=_UNPACK_FILES, max_unpacked_bytes=_UNPACK_BYTES)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        if read_only:
            _read_only(staging)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            _writable(staging)
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _read_only(folder: Path) -> None:
    """Jobs import from the cache; none may change the code the next job runs."""
    for current, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(current) / name
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(folder: Path) -> None:
    for current, _dirs, files in os.walk(folder):
        for name in files:
            (Path(current) / name).chmod(0o644)


def import_paths(settings: Settings, entries: Sequence[str]) -> list[str]:
    """A job's ``code_paths`` as folders on this machine, bundles unpacked (once per
    machine) into the platform's cache."""
    if not any(is_bundle(entry) for entry in entries):
        return list(entries)
    artifacts = ArtifactStore(settings.artifact_root)
    cache = Path(settings.home) / "code-bundles"
    return [
        str(materialize(artifacts, entry, cache)) if is_bundle(entry) else entry
        for entry in entries
    ]
