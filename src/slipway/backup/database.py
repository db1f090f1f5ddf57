"""The metadata database in an archive: a consistent snapshot of a database in use, and
loading one into an empty database.

SQLite: the online backup API (``sqlite3.Connection.backup`` in one step) copies the file
inside one read transaction, so writers (WAL mode) go on and the copy is the database as of
one commit. Optuna's ``optuna.db`` beside it is copied the same way, as a second snapshot:
Optuna is the system of record for its own trials and nothing in Slipway's tables counts
them.

PostgreSQL: a ``REPEATABLE READ`` transaction exports its snapshot (``pg_export_snapshot``)
and ``pg_dump --snapshot`` dumps exactly that snapshot, every schema (MLflow's tables,
Slipway's, Optuna's ``slipway_optuna``) in the custom format; queries the backup needs to
make about the same state run in the exporting transaction. The password travels in
``PGPASSWORD``, never on a command line.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import URL, make_url

from slipway.core.db.engine import normalize_url
from slipway.core.errors import BackendUnavailable, InvalidInput

OPTUNA_FILE = "optuna.db"
PG_ROOT = Path("/usr/lib/postgresql")
_SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"


def engine_of(url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    try:
        backend = make_url(normalize_url(url)).get_backend_name()
    except Exception:
        raise InvalidInput("database url is not a valid URL", field="database.url") from None
    if backend not in ("sqlite", "postgresql"):
        raise InvalidInput(f"unsupported database {backend!r}", field="database.url")
    return backend


def sqlite_file(url: str) -> Path:
    """The file of an ``sqlite:///`` URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise InvalidInput("an in-memory SQLite database cannot be backed up", field="database.url")
    return Path(database).expanduser().resolve()


def sqlite_backup(source: Path, dest: Path) -> None:
    """Copy the SQLite database ``source`` to ``dest`` as of one commit, while it is used."""
    src = sqlite3.connect(str(source), timeout=60)
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)  # pages=-1: the whole file inside one read transaction
        finally:
            dst.close()
    finally:
        src.close()


@dataclass
class Snapshot:
    """A database snapshot written to local files, and queries against the same state."""

    engine: str
    files: dict[str, Path] = field(default_factory=dict)  # "main", "optuna" -> dump file
    _query: Any = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` (``?`` placeholders on SQLite, ``%s`` on PostgreSQL) as of the
        snapshot."""
        rows: list[tuple[Any, ...]] = self._query(sql, params)
        return rows

    @property
    def placeholder(self) -> str:
        return "?" if self.engine == "sqlite" else "%s"


@contextmanager
def snapshot(url: str, workdir: Path, *, pg_bin: Path | None = None) -> Iterator[Snapshot]:
    """Snapshot the database at ``url`` into files under ``workdir``; while the block runs,
    :meth:`Snapshot.query` reads the same state the files hold."""
    engine = engine_of(url)
    if engine == "sqlite":
        source = sqlite_file(url)
        if not source.exists():
            raise InvalidInput(f"the database {source} does not exist", field="database.url")
        main = workdir / "slipway.sqlite"
        sqlite_backup(source, main)
        taken = Snapshot(engine, {"main": main})
        if (source.parent / OPTUNA_FILE).exists():
            taken.files["optuna"] = workdir / "optuna.sqlite"
            sqlite_backup(source.parent / OPTUNA_FILE, taken.files["optuna"])
        reader = sqlite3.connect(f"file:{main}?mode=ro", uri=True)
        try:
            taken._query = lambda sql, params: reader.execute(sql, tuple(params)).fetchall()
            yield taken
        finally:
            reader.close()
        return
    conninfo, env = _libpq(url)
    dump = workdir / "postgres.dump"
    try:
        conn = psycopg.connect(conninfo, password=env.get("PGPASSWORD"), connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise BackendUnavailable(f"metadata database unreachable: {exc}") from None
    try:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        _run(
            [
                str(pg_tool("pg_dump", pg_bin)),
                "--format=custom",
                f"--snapshot={row[0]}",
                f"--file={dump}",
                f"--dbname={conninfo}",
            ],
            env,
            "pg_dump",
        )
        taken = Snapshot(engine, {"main": dump})
        taken._query = lambda sql, params: conn.execute(sql, tuple(params)).fetchall()
        yield taken
    finally:
        conn.close()


def is_empty(url: str) -> bool:
    """Whether the database at ``url`` holds no table at all (a missing SQLite file is
    empty)."""
    if engine_of(url) == "sqlite":
        path = sqlite_file(url)
        if not path.exists():
            return True
        with sqlite3.connect(str(path)) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()
        return int(count) == 0
    rows = _pg_execute(
        url,
        f"SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN"
        f" {_SYSTEM_SCHEMAS}",
    )
    return int(rows[0][0]) == 0


def clear(url: str) -> None:
    """Remove everything from the database at ``url`` (``restore --force``): the SQLite
    files (with Optuna's beside them), or every schema of the PostgreSQL database."""
    if engine_of(url) == "sqlite":
        path = sqlite_file(url)
        for base in (path, path.parent / OPTUNA_FILE):
            for suffix in ("", "-wal", "-shm", "-journal"):
                base.with_name(base.name + suffix).unlink(missing_ok=True)
        return
    schemas = _pg_execute(
        url,
        f"SELECT nspname FROM pg_namespace WHERE nspname NOT IN {_SYSTEM_SCHEMAS}"
        " AND nspname NOT LIKE 'pg_%'",
    )
    statements = [f'DROP SCHEMA "{name}" CASCADE' for (name,) in schemas]
    statements += [
        "CREATE SCHEMA public",
        "ALTER SCHEMA public OWNER TO pg_database_owner",
        "GRANT USAGE ON SCHEMA public TO PUBLIC",
    ]
    _pg_execute(url, *statements)


def load(engine: str, files: dict[str, Path], url: str, *, pg_bin: Path | None = None) -> None:
    """Load the snapshot ``files`` (as :func:`snapshot` named them) into the empty database
    at ``url``, which must be of the same ``engine``."""
    target = engine_of(url)
    if target != engine:
        raise InvalidInput(
            f"the archive holds a {engine} database; restore it into {engine}, not {target}",
            field="database.url",
        )
    if engine == "sqlite":
        path = sqlite_file(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        _install(files["main"], path)
        if "optuna" in files:
            _install(files["optuna"], path.parent / OPTUNA_FILE)
        return
    conninfo, env = _libpq(url)
    _run(
        [
            str(pg_tool("pg_restore", pg_bin)),
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={conninfo}",
            str(files["main"]),
        ],
        env,
        "pg_restore",
    )


def _install(source: Path, dest: Path) -> None:
    """Put a copy of ``source`` at ``dest`` atomically, with no stale WAL beside it."""
    for suffix in ("-wal", "-shm", "-journal"):
        dest.with_name(dest.name + suffix).unlink(missing_ok=True)
    part = dest.with_name(dest.name + ".restoring")
    shutil.copyfile(source, part)
    fd = os.open(part, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, dest)


def pg_tool(name: str, bin_dir: Path | None = None) -> Path:
    """PostgreSQL's ``pg_dump`` or ``pg_restore``: from ``bin_dir`` when given, else the
    newest Debian-style ``/usr/lib/postgresql/<version>/bin`` (as ``scripts/services``
    finds it; ``pg_dump`` must be at least the server's version), else the ``PATH``."""
    folders = [bin_dir] if bin_dir is not None else _pg_bin_dirs()
    for folder in folders:
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name) if bin_dir is None else None
    if found:
        return Path(found)
    raise BackendUnavailable(
        f"{name} not found{f' in {bin_dir}' if bin_dir else ''}: install PostgreSQL's client"
        " tools (Debian: postgresql-client) of at least the server's version"
    )


def _pg_bin_dirs() -> list[Path]:
    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", folder.parent.name)) or (0,)

    return sorted(PG_ROOT.glob("*/bin"), key=version, reverse=True)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment carrying it."""
    parsed: URL = make_url(normalize_url(url))
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _pg_execute(url: str, *statements: str) -> list[tuple[Any, ...]]:
    conninfo, env = _libpq(url)
    try:
        with psycopg.connect(
            conninfo, password=env.get("PGPASSWORD"), connect_timeout=10, autocommit=False
        ) as conn:
            rows: list[tuple[Any, ...]] = []
            for statement in statements:
                cursor = conn.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
            return rows
    except psycopg.OperationalError as exc:
        raise BackendUnavailable(f"metadata database unreachable: {exc}") from None


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BackendUnavailable(f"{what} failed (exit {done.returncode}): {tail}")
