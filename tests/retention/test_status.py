"""Sizes for ``slipway status`` on each database engine."""

from __future__ import annotations

from slipway.core.db import Database
from slipway.core.events import EventLog
from slipway.retention.status import database_sizes, table_group


def test_rows_and_bytes_per_table_group(db: Database) -> None:
    events = EventLog(db)
    for n in range(4):
        events.append("test.happened", f"thing/{n}")
    groups, total = database_sizes(db)
    by_name = {g["group"]: g for g in groups}
    assert by_name["events"]["rows"] == 4 and by_name["events"]["tables"] == 2
    assert by_name["queue"]["rows"] == 0
    assert total is not None and total > 0
    if not db.is_sqlite:  # PostgreSQL sizes each table; SQLite is one file
        assert by_name["events"]["bytes"] > 0


def test_tables_are_grouped_by_what_they_hold() -> None:
    assert table_group("slipway_work_items") == "queue"
    assert table_group("slipway_serving_stats") == "serving"
    assert table_group("slipway_something_new") == "other"
    assert table_group("runs") == "tracking"  # MLflow's, in the same database
