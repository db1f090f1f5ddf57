"""``slipway backup`` and ``slipway restore``: the order of the steps, and why.

Backup, while the platform runs:

1. The SQLite online store, by the backup API, *first*: it can then only be behind the
   offline store the archive holds, and the restore's materialization brings every online
   and offline group up to it (a copy taken last could hold records of ingestions the
   archive's database never saw). Groups kept only online are restored as copied.
2. Each feature group's newest Delta version, listed before the snapshot.
3. The metadata database snapshot (:mod:`slipway.backup.database`), and, in that same
   state, the ingestion states that decide each table's cut (:mod:`slipway.backup.offline`).
4. The Delta tables as of their cuts, then every other file under the artifact root
   (models, MLflow's artifacts, capture, reports, baselines). Artifacts are written once
   and atomically, so everything the snapshot references is there to copy; files written
   after it are copied too and simply unreferenced after a restore.
5. The settings without secrets (:mod:`slipway.backup.portable`), and the manifest last.

Restore checks the target first (an existing database, artifact root or online file
refuses unless ``force``), reads and verifies the whole archive into a staging folder
beside the target home, and only then writes: the artifact root, the online file, the
database, the rewrite of stored locations (:mod:`slipway.backup.paths`), and
materialization of every group that is both online and offline — the way a Redis online
store, which no archive holds, is filled again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, cast

import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from slipway import __version__
from slipway.backup import database
from slipway.backup.archive import SETTINGS, ArchiveWriter, Manifest, extract_verified
from slipway.backup.offline import Commit, DeltaTables, choose_cut
from slipway.backup.paths import rewrite_locations
from slipway.backup.portable import portable_settings
from slipway.core.db.migrate import VERSION_TABLE
from slipway.core.errors import Conflict, InvalidInput
from slipway.core.settings import Settings

FEATURES = "features"
TMP = ".tmp"
MEMBERS = {"main": "database/slipway.sqlite", "optuna": "database/optuna.sqlite"}
PG_MEMBER = "database/postgres.dump"
ONLINE_MEMBER = "online/online.sqlite"
ARTIFACTS = "artifacts"
RESTORE_NOTES = "restored"  # folder in the target home: the archive's manifest and settings


class Progress(Protocol):
    """Where long work reports itself; the CLI draws it with Rich."""

    def phase(self, description: str, total: int | None = None) -> None:
        """A new step begins; ``total`` is its size in bytes when known."""

    def advance(self, amount: int) -> None:
        """``amount`` more bytes of the current step are done."""


class _Quiet:
    def phase(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass
class _Copy:
    """A file to put in the archive: its member name, where it is, and whether a file
    that vanished before it was read fails the backup (it is referenced) or is skipped."""

    member: str
    path: str
    size: int
    required: bool


@dataclass
class RestoreReport:
    manifest: Manifest
    rewritten: dict[str, int] = field(default_factory=dict)


def _artifact_fs(root: str) -> tuple[Any, str]:
    fs, path = fsspec.core.url_to_fs(root, use_listings_cache=False)
    if isinstance(fs, LocalFileSystem):
        return fs, os.path.realpath(cast(str, path))
    return fs, cast(str, path).rstrip("/")


def _local_online_file(settings: Settings) -> Path | None:
    url = settings.online_store_url
    if not url.startswith("sqlite:"):
        return None
    return database.sqlite_file(url)


# -- backup ---------------------------------------------------------------------------


def create_backup(
    settings: Settings,
    path: Path,
    *,
    progress: Progress | None = None,
    pg_bin: Path | None = None,
) -> Manifest:
    """Write one archive of the platform ``settings`` describes to ``path``."""
    say = progress or _Quiet()
    path = Path(path).expanduser().resolve()
    fs, root = _artifact_fs(settings.artifact_root)
    if isinstance(fs, LocalFileSystem) and path.is_relative_to(root):
        raise InvalidInput(f"{path} is inside the artifact root it would copy", field="path")
    tables = DeltaTables(fs, f"{root}/{FEATURES}")
    with (
        ArchiveWriter(path) as writer,
        tempfile.TemporaryDirectory(prefix=".slipway-backup-", dir=path.parent) as tmp,
    ):
        work = Path(tmp)
        online_file = _local_online_file(settings)
        online_member = None
        if online_file is not None and online_file.exists():
            say.phase("online store")
            database.sqlite_backup(online_file, work / "online.sqlite")
            writer.add_file(ONLINE_MEMBER, work / "online.sqlite")
            online_member = ONLINE_MEMBER
        before = {table: tables.latest(table) for table in tables.tables()}
        say.phase("database snapshot")
        with database.snapshot(settings.database_url, work, pg_bin=pg_bin) as snap:
            cuts = delta_cuts(tables, before, snap)
            rows = snap.query(f"SELECT version_num FROM {VERSION_TABLE}")
            revision = str(rows[0][0]) if rows else None
        names = {
            key: PG_MEMBER if snap.engine == "postgresql" else MEMBERS[key] for key in snap.files
        }
        for key, file in snap.files.items():
            say.phase(f"database ({names[key]})", file.stat().st_size)
            writer.add_file(names[key], file)
            say.advance(file.stat().st_size)
            file.unlink()
        plan = _plan(fs, root, tables, cuts)
        say.phase("artifacts", sum(item.size for item in plan))
        for item in plan:
            _add(fs, writer, item)
            say.advance(item.size)
        writer.add_bytes(SETTINGS, json.dumps(portable_settings(settings), indent=2).encode())
        configured = settings.artifact_root.rstrip("/")
        aliases = [root] if isinstance(fs, LocalFileSystem) and root != configured else []
        manifest = Manifest(
            slipway_version=__version__,
            engine=snap.engine,
            database=names["main"],
            home=str(settings.home),
            artifact_root=configured,
            artifact_root_aliases=aliases,
            schema_revision=revision,
            extra_databases={k: v for k, v in names.items() if k != "main"},
            online=online_member,
            delta_versions={table: cut for table, (cut, _) in cuts.items()},
        )
        return writer.commit(manifest)


def delta_cuts(
    tables: DeltaTables, before: dict[str, int | None], snap: database.Snapshot
) -> dict[str, tuple[int, list[Commit]]]:
    """Per table, its cut and the commits after the cut that the archive leaves out."""
    cuts: dict[str, tuple[int, list[Commit]]] = {}
    for table in tables.tables():
        commits = tables.commits_after(table, before.get(table))
        ids = sorted({c.ingest_id for c in commits if c.ingest_id is not None})
        states: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join([snap.placeholder] * len(chunk))
            states.update(
                (int(i), str(s))
                for i, s in snap.query(
                    f"SELECT id, state FROM slipway_feature_ingests WHERE id IN ({marks})", chunk
                )
            )
        cut = choose_cut(before.get(table), commits, states)
        if cut is not None:
            cuts[table] = (cut, [c for c in commits if c.version > cut])
    return cuts


def _plan(
    fs: Any, root: str, tables: DeltaTables, cuts: dict[str, tuple[int, list[Commit]]]
) -> list[_Copy]:
    """Every file to copy from the artifact root, Delta tables as of their cuts."""
    plan: list[_Copy] = []
    sizes = {str(k): int(v.get("size") or 0) for k, v in fs.find(root, detail=True).items()}
    base = root.rstrip("/") + "/"
    delta_roots = {f"{FEATURES}/{table}/" for table in tables.tables()}
    for table, (cut, left_out) in cuts.items():
        prefix = f"{FEATURES}/{table}"
        referenced = tables.referenced(table, cut)
        for rel in tables.log_files(table, cut):
            plan.append(_copy(base, f"{prefix}/{rel}", sizes, required=True))
        for rel in tables.data_files(table, left_out):
            plan.append(_copy(base, f"{prefix}/{rel}", sizes, required=rel in referenced))
        missing = referenced - set(tables.data_files(table, left_out))
        if missing:
            raise Conflict(
                f"feature group {table!r}: {len(missing)} file(s) of version {cut} vanished"
                " during the backup (a vacuum?); run the backup again",
                details={"group": table},
            )
    for full in sorted(sizes):
        rel = full[len(base) :] if full.startswith(base) else ""
        if not rel or rel.split("/")[0] == TMP:
            continue
        if any(rel.startswith(d) for d in delta_roots):
            continue  # copied as of its cut above, or begun after the snapshot
        plan.append(_copy(base, rel, sizes, required=False))
    return plan


def _copy(base: str, rel: str, sizes: dict[str, int], *, required: bool) -> _Copy:
    return _Copy(f"{ARTIFACTS}/{rel}", base + rel, sizes.get(base + rel, 0), required)


def _add(fs: Any, writer: ArchiveWriter, item: _Copy) -> None:
    try:
        handle: IO[bytes] = fs.open(item.path, "rb")
    except FileNotFoundError:
        if item.required:
            raise Conflict(
                f"{item.path} vanished during the backup; run the backup again",
                details={"path": item.path},
            ) from None
        return  # removed since it was listed (replaced or collected): not referenced
    with handle:
        # The size of what was opened, not of the listing: a key replaced since is read
        # whole from the version opened.
        size = (
            os.fstat(handle.fileno()).st_size
            if isinstance(fs, LocalFileSystem)
            else int(getattr(handle, "size", item.size))
        )
        writer.add_stream(item.member, handle, size)


# -- restore --------------------------------------------------------------------------


def occupied(settings: Settings) -> list[str]:
    """What of the target already holds data: ``database.url``, ``artifacts.root``,
    ``online_store.url`` (a Redis online store is not checked)."""
    found = []
    if not database.is_empty(settings.database_url):
        found.append("database.url")
    fs, root = _artifact_fs(settings.artifact_root)
    if fs.exists(root) and fs.find(root):
        found.append("artifacts.root")
    online = _local_online_file(settings)
    if online is not None and not database.is_empty(f"sqlite:///{online}"):
        found.append("online_store.url")
    return found


def restore_backup(
    settings: Settings,
    path: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    pg_bin: Path | None = None,
) -> RestoreReport:
    """Restore the archive at ``path`` into the platform ``settings`` describes."""
    say = progress or _Quiet()
    path = Path(path).expanduser().resolve()
    engine = database.engine_of(settings.database_url)
    taken = occupied(settings)
    if taken and not force:
        raise Conflict(
            f"the target is not empty ({', '.join(taken)} hold data): restore into a fresh"
            " home and database, or pass --force to replace them",
            details={"field": taken[0], "occupied": taken},
        )
    say.phase(f"verifying {path.name}")
    with _staging(settings.home) as staging:
        manifest = extract_verified(path, staging, say.advance)
        if manifest.engine != engine:
            raise InvalidInput(
                f"the archive holds a {manifest.engine} database; set database.url to an"
                f" empty {manifest.engine} database to restore it",
                field="database.url",
            )
        if force:
            _clear(settings)
        say.phase("artifacts")
        _put_artifacts(staging / ARTIFACTS, settings.artifact_root)
        online = _local_online_file(settings)
        if manifest.online is not None and online is not None:
            say.phase("online store")
            online.parent.mkdir(parents=True, exist_ok=True)
            database._install(staging / manifest.online, online)
        say.phase("database")
        files = {"main": staging / manifest.database} | {
            key: staging / member for key, member in manifest.extra_databases.items()
        }
        settings.home.mkdir(parents=True, exist_ok=True)
        database.load(manifest.engine, files, settings.database_url, pg_bin=pg_bin)
        say.phase("rewriting stored locations")
        rewritten = rewrite_locations(settings.database_url, _moves(manifest, settings))
        notes = settings.home / RESTORE_NOTES
        notes.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staging / SETTINGS, notes / SETTINGS)
        (notes / "manifest.json").write_bytes(manifest.to_json())
    # The online store is brought up to the restored offline one by whoever opens the
    # platform next (``FeatureStore.materialize_all``; the CLI does it right after): the
    # backup restores data, it does not assemble the platform.
    return RestoreReport(manifest, rewritten)


@contextmanager
def _staging(home: Path) -> Iterator[Path]:
    """A fresh folder beside the target home (same filesystem: artifacts are moved from
    it, not copied), removed afterwards whatever happens."""
    parent = home.parent if home.parent.is_dir() else None
    folder = Path(tempfile.mkdtemp(prefix=".slipway-restore-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _clear(settings: Settings) -> None:
    database.clear(settings.database_url)
    fs, root = _artifact_fs(settings.artifact_root)
    if fs.exists(root):
        fs.rm(root, recursive=True)
    online = _local_online_file(settings)
    if online is not None:
        for suffix in ("", "-wal", "-shm"):
            online.with_name(online.name + suffix).unlink(missing_ok=True)


def _put_artifacts(staged: Path, target_root: str) -> None:
    if not staged.is_dir():
        return
    fs, root = _artifact_fs(target_root)
    local = isinstance(fs, LocalFileSystem)
    for file in sorted(p for p in staged.rglob("*") if p.is_file()):
        rel = file.relative_to(staged).as_posix()
        dest = f"{root}/{rel}"
        if local:
            Path(dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(file, dest)
        else:
            fs.put_file(str(file), dest)


def _moves(manifest: Manifest, settings: Settings) -> dict[str, str]:
    """Old location prefix -> new one, for :func:`rewrite_locations`."""
    fs, real = _artifact_fs(settings.artifact_root)
    new_root = real if isinstance(fs, LocalFileSystem) else settings.artifact_root.rstrip("/")
    moves = {old: new_root for old in (manifest.artifact_root, *manifest.artifact_root_aliases)}
    moves.setdefault(manifest.home, str(settings.home))
    return moves
