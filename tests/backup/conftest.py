"""A target to restore into: a fresh home, and for PostgreSQL a fresh database too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from slipway.core.settings import Settings, load_settings
from tests.conftest import fresh_postgres_database


@pytest.fixture
def target_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the engine of ``database_url``: an SQLite file that does not
    exist yet (inside the target home), or a new PostgreSQL database, dropped afterwards."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'target' / 'home' / 'slipway.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def target(target_url: str, tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "target" / "home", database={"url": target_url})


def drop_postgres(url: str) -> None:
    """Drop the PostgreSQL database of ``url`` (the original, after its backup)."""
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
