"""The archive file: one tar (plain, gzip or zstd), its manifest, and how it is checked.

Members are written as a stream, each hashed while it is copied, and ``manifest.json`` comes
last, listing every other member with its size and SHA-256; nothing is staged twice on the
machine being backed up. The archive is written as ``PATH.partial`` and renamed when it is
complete and fsynced, so a ``PATH`` that exists is a whole archive.

Reading is one streaming pass too, into a staging folder the caller owns: every member is
checked before a byte of it is written — a regular file or a folder, a relative name of
plain segments (no ``..``, no absolute path, no backslash) under one of the known top-level
entries, never twice — then the manifest's digests are compared with what was read. An
archive that fails any check raises :class:`InvalidInput` naming the member, and only the
staging folder has been written, which the caller removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, cast

import pyarrow as pa

from slipway.core.errors import BackendUnavailable, Conflict, InvalidInput

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SETTINGS = "settings.json"
# Where every member of an archive lives; anything else is refused on restore.
TOP_LEVEL = frozenset({MANIFEST, SETTINGS, "database", "online", "artifacts"})
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_CHUNK = 1024 * 1024
_SUFFIXES = {
    ".tar": None,
    ".tar.gz": "gz",
    ".tgz": "gz",
    ".tar.zst": "zstd",
    ".tar.zstd": "zstd",
    ".tzst": "zstd",
}
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class FileEntry:
    """One member as the manifest lists it."""

    size: int
    sha256: str


@dataclass
class Manifest:
    """What an archive holds and where it came from.

    ``database`` names the member holding the metadata database (an SQLite file or a
    ``pg_dump`` custom-format dump), ``extra_databases`` Optuna's SQLite file when there is
    one; ``home`` and ``artifact_root`` (with ``artifact_root_aliases``, the other
    spellings stored paths use, such as its real path) are the source's, so a restore can
    rewrite stored locations; ``delta_versions`` is the version each feature group's Delta
    table was cut    at. ``files`` lists every member but the manifest itself.
    """

    slipway_version: str
    engine: str
    database: str
    home: str
    artifact_root: str
    artifact_root_aliases: list[str] = field(default_factory=list)
    schema_revision: str | None = None
    extra_databases: dict[str, str] = field(default_factory=dict)
    online: str | None = None
    delta_versions: dict[str, int] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """The manifest in ``data``; anything malformed raises :class:`InvalidInput`."""
        try:
            raw = json.loads(data)
        except ValueError:
            raise InvalidInput("the archive's manifest is not JSON", field="manifest") from None
        if not isinstance(raw, dict):
            raise InvalidInput("the archive's manifest is not an object", field="manifest")
        version = raw.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise InvalidInput("the manifest has no format version", field="format_version")
        if version > FORMAT_VERSION:
            raise InvalidInput(
                f"archive format {version} is newer than this Slipway reads ({FORMAT_VERSION});"
                " restore it with a newer Slipway",
                field="format_version",
            )
        try:
            files = {
                _member_name(str(name)): FileEntry(int(e["size"]), str(e["sha256"]))
                for name, e in dict(raw["files"]).items()
            }
            manifest = cls(
                slipway_version=str(raw["slipway_version"]),
                engine=str(raw["engine"]),
                database=_member_name(str(raw["database"])),
                home=str(raw["home"]),
                artifact_root=str(raw["artifact_root"]),
                artifact_root_aliases=[str(a) for a in raw.get("artifact_root_aliases") or []],
                schema_revision=raw.get("schema_revision"),
                extra_databases={
                    str(k): _member_name(str(v))
                    for k, v in dict(raw.get("extra_databases") or {}).items()
                },
                online=None if raw.get("online") is None else _member_name(str(raw["online"])),
                delta_versions={
                    str(k): int(v) for k, v in dict(raw.get("delta_versions") or {}).items()
                },
                files=files,
                created_at=float(raw.get("created_at", 0.0)),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(
                f"the archive's manifest is malformed: {exc}", field="manifest"
            ) from None
        if manifest.engine not in ("sqlite", "postgresql"):
            raise InvalidInput(f"unknown database engine {manifest.engine!r}", field="engine")
        for name in (manifest.database, manifest.online, *manifest.extra_databases.values()):
            if name is not None and name not in files:
                raise InvalidInput(
                    f"the manifest names {name!r} but lists no such file", field="manifest"
                )
        return manifest


def compression_for(path: Path) -> str | None:
    """The compression a new archive at ``path`` gets, from its name."""
    name = path.name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return _SUFFIXES[suffix]
    raise InvalidInput(
        f"{path.name!r}: name the archive *.tar, *.tar.gz (*.tgz) or *.tar.zst (*.tzst)",
        field="path",
    )


class _Hashing:
    """A reader that hashes and counts what passes through it."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


class ArchiveWriter:
    """Writes members to ``PATH.partial``; :meth:`commit` adds the manifest and renames it.

    ``PATH`` must not exist (an archive is never overwritten). Leaving the ``with`` block
    without committing removes the partial file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            raise Conflict(f"{path} exists already; choose a new file", details={"field": "path"})
        compression = compression_for(path)
        if not path.parent.is_dir():
            raise InvalidInput(f"folder {path.parent} does not exist", field="path")
        self.partial = path.with_name(path.name + ".partial")
        self._sink: Any
        if compression == "zstd":
            self._sink = pa.output_stream(str(self.partial), compression="zstd")
        else:
            self._sink = open(self.partial, "wb")  # noqa: SIM115 - closed in _close()
        # Stream modes ("|"): members go out as they are added, never seeked back to.
        if compression == "gz":
            self._tar = tarfile.open(fileobj=self._sink, mode="w|gz", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        else:
            self._tar = tarfile.open(fileobj=self._sink, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.files: dict[str, FileEntry] = {}
        self._done = False

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done:
            self._close()
            self.partial.unlink(missing_ok=True)

    def add_stream(self, name: str, source: IO[bytes], size: int) -> FileEntry:
        """Copy exactly ``size`` bytes of ``source`` as member ``name``."""
        name = _member_name(name)
        if name in self.files or name == MANIFEST:
            raise Conflict(f"member {name!r} is in the archive already")
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = int(time.time())
        hashing = _Hashing(source)
        self._tar.addfile(info, hashing)
        entry = FileEntry(size, hashing.digest.hexdigest())
        self.files[name] = entry
        return entry

    def add_file(self, name: str, local: Path) -> FileEntry:
        with local.open("rb") as source:
            return self.add_stream(name, source, os.fstat(source.fileno()).st_size)

    def add_bytes(self, name: str, data: bytes) -> FileEntry:
        return self.add_stream(name, io.BytesIO(data), len(data))

    def commit(self, manifest: Manifest) -> Manifest:
        """Write ``manifest`` (with the files added) last, fsync, and rename to ``PATH``."""
        manifest.files = dict(sorted(self.files.items()))
        body = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(body)
        info.mode = 0o644
        info.mtime = int(time.time())
        self._tar.addfile(info, io.BytesIO(body))
        self._close()
        fd = os.open(self.partial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.partial, self.path)
        self._done = True
        return manifest

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._tar.close()
        with contextlib.suppress(Exception):
            self._sink.close()


def _member_name(name: str) -> str:
    """``name`` if it is a safe member name, else :class:`InvalidInput` naming it."""
    bad = (
        not name
        or "\x00" in name
        or "\\" in name
        or name.startswith("/")
        or (len(name) > 1 and name[1] == ":")
    )
    parts = PurePosixPath(name).parts if not bad else ()
    if bad or any(part in ("", ".", "..") for part in name.rstrip("/").split("/")):
        raise InvalidInput(
            f"archive member {name!r} is not a plain relative path",
            field="archive",
            details={"member": name},
        )
    if parts[0] not in TOP_LEVEL:
        raise InvalidInput(
            f"archive member {name!r} is not part of a Slipway backup",
            field="archive",
            details={"member": name},
        )
    return "/".join(parts)


def _open_archive(path: Path) -> tuple[BinaryIO, bool]:
    """The archive's bytes (zstd already undone) and whether they are gzip-compressed."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(4)
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist", field="path") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", field="path") from None
    if magic.startswith(_ZSTD_MAGIC):
        return cast(BinaryIO, pa.input_stream(str(path), compression="zstd")), False
    return path.open("rb"), magic.startswith(_GZIP_MAGIC)


def extract_verified(
    path: Path, staging: Path, on_bytes: Callable[[int], None] | None = None
) -> Manifest:
    """Extract the archive at ``path`` into the empty folder ``staging`` and return its
    manifest once every member has been checked against it (see the module docstring);
    ``on_bytes`` hears of each chunk extracted."""
    source, gzipped = _open_archive(path)
    seen: dict[str, FileEntry] = {}
    manifest_bytes: bytes | None = None
    try:
        with tarfile.open(fileobj=source, mode="r|gz" if gzipped else "r|") as tar:
            for member in tar:
                name = _check_member(member)
                if member.isdir():
                    continue
                reader = tar.extractfile(member)
                assert reader is not None  # a regular file, checked above
                if name == MANIFEST:
                    if manifest_bytes is not None:
                        raise _duplicate(name)
                    manifest_bytes = reader.read(MAX_MANIFEST_BYTES + 1)
                    if len(manifest_bytes) > MAX_MANIFEST_BYTES:
                        raise InvalidInput("the archive's manifest is too large", field=MANIFEST)
                    continue
                if name in seen:
                    raise _duplicate(name)
                seen[name] = _extract(reader, staging.joinpath(*name.split("/")), on_bytes)
    except (tarfile.TarError, EOFError, zlib.error, pa.ArrowException, OSError) as exc:
        # OSError here is the archive's side (a truncated zstd stream): staging writes
        # fail as BackendUnavailable in _extract.
        raise InvalidInput(
            f"{path} is not a readable Slipway archive: {exc}", field="path"
        ) from None
    finally:
        source.close()
    if manifest_bytes is None:
        raise InvalidInput(
            f"{path} has no {MANIFEST}: not a Slipway archive, or a truncated one", field="path"
        )
    manifest = Manifest.parse(manifest_bytes)
    for name, expected in manifest.files.items():
        got = seen.get(name)
        if got is None:
            raise InvalidInput(
                f"the archive lacks {name}, which its manifest lists",
                field="archive",
                details={"member": name},
            )
        if got != expected:
            raise InvalidInput(
                f"{name} is corrupt: SHA-256 {got.sha256} ({got.size} bytes), the manifest"
                f" says {expected.sha256} ({expected.size} bytes)",
                field="archive",
                details={"member": name},
            )
    for name in seen.keys() - manifest.files.keys():
        raise InvalidInput(
            f"the archive holds {name}, which its manifest does not list",
            field="archive",
            details={"member": name},
        )
    return manifest


def _check_member(member: tarfile.TarInfo) -> str:
    name = _member_name(member.name)
    if not (member.isreg() or member.isdir()):
        kind = (
            "a symbolic link"
            if member.issym()
            else "a hard link"
            if member.islnk()
            else ("a device or pipe")
        )
        raise InvalidInput(
            f"archive member {member.name!r} is {kind}; a Slipway archive holds only files",
            field="archive",
            details={"member": member.name},
        )
    return name


def _duplicate(name: str) -> InvalidInput:
    return InvalidInput(
        f"archive member {name!r} appears twice", field="archive", details={"member": name}
    )


def _extract(reader: IO[bytes], dest: Path, on_bytes: Callable[[int], None] | None) -> FileEntry:
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with dest.open("xb") as out:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            try:
                out.write(chunk)
            except OSError as exc:
                raise BackendUnavailable(
                    f"cannot write {dest} while restoring: {exc.strerror}",
                    details={"path": str(dest)},
                ) from None
            if on_bytes is not None:
                on_bytes(len(chunk))
    return FileEntry(size, digest.hexdigest())
