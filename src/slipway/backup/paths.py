"""Rewriting stored locations after a restore into another home or artifact root.

Slipway's own tables keep artifact *keys*, relative to the root, but MLflow stores
absolute locations: experiments' ``artifact_location``, runs' ``artifact_uri``, logged
models' ``artifact_location``, model versions' ``source`` and ``storage_location``, often as
``file:///…``. Users' values (lineage, parameters, ingest sources, work payloads) may hold
paths under the home too. So every text and JSON column of every table is scanned for the
source's prefixes and each occurrence that starts a path (not preceded by a name character,
followed by ``/``, a quote, whitespace or the end) is replaced, in one transaction.

The model files themselves are left alone: MLflow's ``MLmodel`` records the
``artifact_path`` it was logged at, but the file is covered by the version's digest and
MLflow loads a model from the folder it is in, not from that field.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    MetaData,
    String,
    Text,
    and_,
    cast,
    create_engine,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.pool import NullPool

from slipway.core.db.engine import normalize_url


def replacer(mapping: Mapping[str, str]) -> Callable[[str], str]:
    """A function replacing every path-starting occurrence of ``mapping``'s keys."""
    olds = sorted((old for old in mapping if old), key=len, reverse=True)
    if not olds:
        return lambda text: text
    pattern = re.compile(
        r"(?<![\w.-])(" + "|".join(re.escape(o) for o in olds) + r")(?=$|[/\"'\s?#])"
    )
    return lambda text: pattern.sub(lambda m: mapping[m.group(1)], text)


def rewrite_value(value: Any, swap: Callable[[str], str]) -> Any:
    """``value`` with every string in it (nested in JSON too) passed through ``swap``."""
    if isinstance(value, str):
        return swap(value)
    if isinstance(value, dict):
        return {k: rewrite_value(v, swap) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_value(v, swap) for v in value]
    return value


def rewrite_locations(url: str, mapping: Mapping[str, str]) -> dict[str, int]:
    """Replace the old prefixes (``mapping``'s keys) by the new ones in every text and
    JSON column of the database at ``url``; returns rows changed per ``table.column``."""
    mapping = {old: new for old, new in mapping.items() if old and old != new}
    if not mapping:
        return {}
    swap = replacer(mapping)
    engine = create_engine(normalize_url(url), poolclass=NullPool)
    find = func.instr if engine.dialect.name == "sqlite" else func.strpos
    counts: Counter[str] = Counter()
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.begin() as conn:
            for table in metadata.sorted_tables:
                keys = list(table.primary_key.columns)
                for column in table.columns:
                    if not isinstance(column.type, String | JSON):
                        continue
                    if not keys and isinstance(column.type, JSON):
                        continue  # no way to address the row; no such table holds paths
                    text = cast(column, Text)
                    hit = or_(*(find(text, old) > 0 for old in mapping))
                    for row in conn.execute(select(*keys, column).where(hit)).all():
                        value = row[-1]
                        new = rewrite_value(value, swap)
                        if new == value:
                            continue
                        where = (
                            and_(*(key == row[i] for i, key in enumerate(keys)))
                            if keys
                            else column == value
                        )
                        conn.execute(update(table).where(where).values({column.name: new}))
                        counts[f"{table.name}.{column.name}"] += 1
    finally:
        engine.dispose()
    return dict(sorted(counts.items()))
