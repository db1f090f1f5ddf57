"""The archive a model version travels in from one Slipway to another (promotion).

One gzipped tar: ``manifest.json`` — what the source platform knows of the version (its
digest and per-file digests, metrics and params, lineage, output and classes, card
fields, the approval history) as plain JSON — and the model's files under ``model/``,
exactly the files the source's digest covers. Packing is deterministic (sorted members,
no times, owners or modes beyond 0644), so the same version exports to the same bytes.

Unpacking trusts nothing: members are checked one by one before any byte is written —
relative names without ``..``, only ``manifest.json`` and plain files under ``model/``
(no links, devices or folders outside it), within a file count and a size bound — and
nothing in the archive is unpickled or imported here; the manifest is JSON read into a
model that forbids unknown fields. Checking the files against the manifest's digest is
the importer's (:mod:`slipway.registry.transfer`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from slipway.core.artifacts import tree_hash
from slipway.core.errors import InvalidInput
from slipway.registry.models import ApprovalStatus, Output

MEDIA_TYPE = "application/gzip"
MANIFEST = "manifest.json"
MODEL_FOLDER = "model"
FORMAT: Literal["slipway.model-export/1"] = "slipway.model-export/1"
SHA256_HEADER = "X-Slipway-Sha256"
_MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_DIGEST = r"^[0-9a-f]{64}$"
_CHUNK = 1024 * 1024


class ExportedTransition(BaseModel):
    """One change of approval at the source: who, when, why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_status: ApprovalStatus | None
    to_status: ApprovalStatus
    actor: str = Field(max_length=255)
    comment: str = Field(default="", max_length=10_000)
    time: AwareDatetime


class ExportManifest(BaseModel):
    """What the source platform knows of the version, beside its files."""

    # NaN and infinite metrics exist (MLflow keeps them): written as JSON's extensions.
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")

    format: Literal["slipway.model-export/1"] = FORMAT
    platform: str = Field(max_length=2048, description="the source control plane's URL")
    workspace: str = Field(max_length=63)
    name: str = Field(max_length=63)
    version: int = Field(ge=1, le=2**31 - 1)
    digest: str = Field(pattern=_DIGEST, description="the source's digest of model/")
    files: dict[str, str] = Field(description="relative path -> SHA-256, under model/")
    approval_status: ApprovalStatus
    approvals: list[ExportedTransition] = Field(default_factory=list, max_length=10_000)
    run_id: str | None = Field(default=None, max_length=64)
    experiment_id: str | None = Field(default=None, max_length=64)
    metrics: dict[str, float] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)
    description: str = Field(default="", max_length=100_000)
    output: Output = Output.LABEL
    classes: list[Any] | None = None
    owner: str = ""
    intended_use: str = ""
    registered_by: str = Field(max_length=255)
    registered_at: AwareDatetime
    exported_at: AwareDatetime


@dataclass(frozen=True)
class ModelExport:
    """An exported version: its manifest, the archive's bytes and their SHA-256 (which
    the importer is told separately and checks before reading anything)."""

    manifest: ExportManifest
    data: bytes
    sha256: str


def _add(tar: tarfile.TarFile, name: str, size: int, handle: IO[bytes]) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    tar.addfile(info, handle)


class _Hashing:
    """A reader that hashes what is read through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.hash.update(chunk)
        return chunk


def pack(manifest: ExportManifest, open_file: Callable[[str], IO[bytes]]) -> tuple[bytes, str]:
    """The archive of ``manifest`` and the model files it lists (``open_file`` opens one
    by its relative path; each is read once, in path order), and the tree digest of the
    files as they were read — which the exporter compares with the version's, so what
    was packed is what was registered."""
    raw = io.BytesIO()
    digests: dict[str, str] = {}
    text = manifest.model_dump_json().encode()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, len(text), io.BytesIO(text))
        for rel in sorted(manifest.files):
            with open_file(rel) as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(0)
                reader = _Hashing(handle)
                _add(tar, f"{MODEL_FOLDER}/{rel}", size, cast(IO[bytes], reader))
            digests[rel] = reader.hash.hexdigest()
    return gzip.compress(raw.getvalue(), mtime=0), tree_hash(digests)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _refuse(reason: str) -> InvalidInput:
    return InvalidInput(f"archive: {reason}", field="archive")


def _checked_name(member: tarfile.TarInfo) -> str:
    name = member.name
    parts = name.rstrip("/").split("/")
    if (
        name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise _refuse(f"member {name!r} is not a relative path inside the archive")
    return "/".join(parts)


def _manifest(text: bytes) -> ExportManifest:
    try:
        return ExportManifest.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "manifest"
        raise InvalidInput(
            f"archive: {MANIFEST}: {where}: {first['msg']}", field=f"manifest.{where}"
        ) from None


def read_manifest(data: bytes) -> ExportManifest:
    """The manifest of an archive, without unpacking its files (members are checked)."""
    return _walk(data, None, max_files=None, max_bytes=None)


def unpack(data: bytes, dest: Path, *, max_files: int, max_bytes: int) -> ExportManifest:
    """Write the archive's model files into the new folder ``dest`` and return its
    manifest; any member that is not ``manifest.json`` or a plain file under ``model/``
    with a safe name, or past the bounds, is an ``InvalidInput`` naming ``archive``."""
    dest.mkdir(parents=True)
    return _walk(data, dest, max_files=max_files, max_bytes=max_bytes)


def _walk(
    data: bytes, dest: Path | None, *, max_files: int | None, max_bytes: int | None
) -> ExportManifest:
    manifest: bytes | None = None
    files = 0
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                name = _checked_name(member)
                inside = name.startswith(f"{MODEL_FOLDER}/")
                if member.isdir() and (inside or name == MODEL_FOLDER):
                    continue
                if not member.isfile():
                    raise _refuse(f"member {name!r} is not a plain file (links are refused)")
                if name == MANIFEST:
                    if manifest is not None or member.size > _MAX_MANIFEST_BYTES:
                        raise _refuse(f"{MANIFEST} appears twice or is too large")
                    manifest = _read(tar, member)
                    continue
                if not inside:
                    raise _refuse(f"member {name!r} is neither {MANIFEST} nor under model/")
                files += 1
                total += member.size
                if max_files is not None and files > max_files:
                    raise _refuse(f"more than {max_files} files")
                if max_bytes is not None and total > max_bytes:
                    raise _refuse(
                        f"unpacks to more than {max_bytes} bytes"
                        " (registry.max_import_unpacked_bytes)"
                    )
                if dest is not None:
                    _write(tar, member, dest, name.removeprefix(f"{MODEL_FOLDER}/"))
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise _refuse(f"not a gzipped tar archive ({exc})") from None
    if manifest is None:
        raise _refuse(f"holds no {MANIFEST}")
    if dest is not None and files == 0:
        raise _refuse("holds no model file under model/")
    return _manifest(manifest)


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise _refuse(f"member {member.name!r} cannot be read")
    with handle:
        return handle.read()


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, rel: str) -> None:
    """One model file into ``dest``: never through a link, never over another file."""
    target = dest.joinpath(*rel.split("/"))
    if not target.resolve().is_relative_to(dest.resolve()):
        raise _refuse(f"member {member.name!r} lands outside the model's folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tar.extractfile(member)
    if handle is None:
        raise _refuse(f"member {member.name!r} cannot be read")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise _refuse(f"member {member.name!r} appears twice") from None
    with handle, os.fdopen(fd, "wb") as out:
        while chunk := handle.read(_CHUNK):
            out.write(chunk)


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` by its relative POSIX path (what the
    artifact store's digests list for the same tree)."""
    digests: dict[str, str] = {}
    for current, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(current) / name
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
            digests[path.relative_to(folder).as_posix()] = digest.hexdigest()
    return digests


__all__ = [
    "FORMAT",
    "MANIFEST",
    "MEDIA_TYPE",
    "SHA256_HEADER",
    "ExportManifest",
    "ExportedTransition",
    "ModelExport",
    "file_digests",
    "pack",
    "read_manifest",
    "sha256_of",
    "unpack",
]
