"""How big the platform's data is, for ``slipway status``: database rows per table group,
artifact-root bytes per folder, and the online store.

Row counts are exact (``count(*)`` per table), bytes come from the engine where it can
say (PostgreSQL's ``pg_total_relation_size`` per table; SQLite is one file, given with
its write-ahead log). The artifact root is listed once; capture is broken down per
endpoint, the offline store per feature group and ``monitoring/`` per kind. The online
store gives its records per group, and its bytes as the SQLite file or Redis's
``used_memory`` (the whole server's: Redis cannot size one prefix cheaply).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from sqlalchemy import func, inspect, select, table, text

from slipway.core.db.engine import Database
from slipway.features.online.base import OnlineStore
from slipway.retention.sizes import RootSizes

TABLE_GROUPS = {
    "queue": ("work_items",),
    "events": ("events", "event_cursors"),
    "audit": ("audit",),
    "security": ("api_tokens",),
    "features": ("feature_groups", "feature_ingests"),
    "registry": ("model_versions", "approval_transitions", "model_inputs"),
    "pipelines": (
        "pipelines", "executions", "step_runs", "step_logs", "schedules", "schedule_fires",
        "triggers",
    ),
    "jobs": ("training_jobs", "tuning_jobs", "batch_jobs", "batch_chunks"),
    "serving": ("endpoints", "endpoint_configs", "gateways", "gateway_models", "serving_stats"),
    "monitoring": ("baselines", "monitors", "monitor_runs"),
    "alerts": ("alert_channels", "alert_rules", "alerts", "alert_deliveries"),
}  # fmt: skip
_GROUP_OF = {f"slipway_{name}": group for group, names in TABLE_GROUPS.items() for name in names}
# Folders whose next level is worth its own line.
_SPLIT = {"capture", "features", "monitoring"}


def table_group(name: str) -> str:
    """The group a table's rows are reported under; tables that are not Slipway's are
    MLflow's (and Optuna's, on PostgreSQL) in the shared database."""
    if name in _GROUP_OF:
        return _GROUP_OF[name]
    return "other" if name.startswith("slipway_") else "tracking"


@dataclass
class Status:
    database: list[dict[str, Any]] = field(default_factory=list)
    database_bytes: int | None = None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    artifact_bytes: int = 0
    online: list[dict[str, Any]] = field(default_factory=list)
    online_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def database_sizes(db: Database) -> tuple[list[dict[str, Any]], int | None]:
    """Rows (and bytes, on PostgreSQL) per table group, and the database's total bytes."""
    groups: dict[str, dict[str, Any]] = {}
    names = inspect(db.engine).get_table_names()
    with db.session() as session:
        for name in sorted(names):
            rows = session.scalar(select(func.count()).select_from(table(name))) or 0
            entry = groups.setdefault(table_group(name), {"rows": 0, "tables": 0, "bytes": None})
            entry["rows"] += rows
            entry["tables"] += 1
            if not db.is_sqlite:
                size = session.scalar(
                    text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": f'"{name}"'}
                )
                entry["bytes"] = (entry["bytes"] or 0) + int(size or 0)
        if db.is_sqlite:
            path = db.url.database or ""
            total = sum(
                os.path.getsize(p) for p in (path, f"{path}-wal") if path and os.path.exists(p)
            )
        else:
            total = int(session.scalar(text("SELECT pg_database_size(current_database())")) or 0)
    return [{"group": g} | v for g, v in sorted(groups.items())], total


def artifact_sizes(root: str) -> tuple[list[dict[str, Any]], int]:
    """Files and bytes per folder of the artifact root, and the root's total bytes."""
    folders: dict[str, dict[str, int]] = {}
    total = 0
    for key, size in RootSizes(root).files():
        parts = key.split("/")
        folder = "/".join(parts[:2]) if parts[0] in _SPLIT and len(parts) > 2 else parts[0]
        if len(parts) == 1:
            folder = "(top level)"
        entry = folders.setdefault(folder, {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += size
        total += size
    return [{"folder": f} | v for f, v in sorted(folders.items())], total


def online_sizes(
    store: OnlineStore, url: str, groups: list[str]
) -> tuple[list[dict[str, Any]], int | None]:
    """Records per online feature group, and the store's bytes."""
    rows = [{"group": name, "records": store.count(name)} for name in groups]
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        size = sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))
        return rows, size
    client = redis.Redis.from_url(url)
    try:
        return rows, int(client.info("memory")["used_memory"])
    finally:
        client.close()
