"""Slipway's ``log_metric`` writes exactly what MLflow's ORM implementation writes.

The same metrics go to two runs of one store on each database: one through MLflow's own
``SqlAlchemyStore.log_metric``, one through the replacement the tracking server installs.
Both tables — every logged point, and ``latest_metrics`` — must match row for row, and the
errors (unknown run, deleted run, bad key) must be MLflow's own.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from sqlalchemy import text

from slipway.core.db.engine import Database
from slipway.tracking import metrics as fast_metrics
from slipway.tracking.config import backend_store_uri, install_sqlite_pragmas

TS = 1_790_000_000_000
# (key, value, timestamp, step): in order, out of order, ties broken by timestamp then
# value, exact duplicates, NaN and infinities, a second key.
SEQUENCE = [
    ("loss", 0.9, TS, 0),
    ("loss", 0.7, TS + 10, 1),
    ("loss", 0.8, TS + 5, 0),  # an older step: history only
    ("loss", 0.7, TS + 10, 1),  # identical: dropped
    ("loss", 0.6, TS + 10, 1),  # same step and time, smaller value: not the latest
    ("loss", 0.75, TS + 10, 1),  # same step and time, larger value: the latest
    ("loss", 0.5, TS + 20, 1),  # same step, later: the latest
    ("loss", float("nan"), TS + 30, 2),
    ("loss", float("nan"), TS + 30, 2),  # identical NaN: dropped
    ("acc", float("inf"), TS, 0),
    ("acc", float("-inf"), TS + 1, 0),
    ("acc", 0.5, TS, 3),
    ("acc", 0.4, TS + 99, 2),
]


@pytest.fixture
def store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlAlchemyStore]:
    install_sqlite_pragmas()
    # install() replaces a method process-wide: put MLflow's back afterwards.
    monkeypatch.setattr(SqlAlchemyStore, "log_metric", SqlAlchemyStore.log_metric)
    opened = SqlAlchemyStore(backend_store_uri(database_url), "/tmp/unused-artifacts")
    yield opened
    opened.engine.dispose()


def _rows(db: Database, table: str, run_id: str) -> list[tuple[Any, ...]]:
    columns = "key, value, timestamp, step, is_nan"
    with db.engine.connect() as conn:
        result = conn.execute(
            text(f"SELECT {columns} FROM {table} WHERE run_uuid = :r ORDER BY {columns}"),
            {"r": run_id},
        )
        return [tuple(row) for row in result]


def _new_run(store: SqlAlchemyStore) -> str:
    run = store.create_run("0", "tester", TS, [], "r")
    return str(run.info.run_id)


def test_tables_match_mlflow_row_for_row(store: SqlAlchemyStore, database_url: str) -> None:
    mlflow_log_metric = SqlAlchemyStore.log_metric
    fast_metrics.install()
    assert SqlAlchemyStore.log_metric is not mlflow_log_metric
    theirs, ours = _new_run(store), _new_run(store)
    for key, value, timestamp, step in SEQUENCE:
        mlflow_log_metric(store, theirs, Metric(key, value, timestamp, step))
        store.log_metric(ours, Metric(key, value, timestamp, step))
    db = Database(database_url)
    try:
        for table in ("metrics", "latest_metrics"):
            assert _rows(db, table, ours) == _rows(db, table, theirs), table
        assert len(_rows(db, "metrics", ours)) == len(SEQUENCE) - 2
    finally:
        db.dispose()
    latest = {m.key: m for m in store.get_run(ours).data._metric_objs}
    assert (latest["loss"].step, math.isnan(latest["loss"].value)) == (2, True)
    assert (latest["acc"].step, latest["acc"].value) == (3, 0.5)
    history = store.get_metric_history(ours, "loss")
    assert [m.step for m in history] == [m.step for m in store.get_metric_history(theirs, "loss")]


def test_errors_are_mlflows_own(store: SqlAlchemyStore) -> None:
    mlflow_log_metric = SqlAlchemyStore.log_metric
    fast_metrics.install()
    deleted = _new_run(store)
    store.delete_run(deleted)
    cases = [
        ("0" * 32, Metric("loss", 1.0, TS, 0)),  # no such run
        (deleted, Metric("loss", 1.0, TS, 0)),  # not active
        (_new_run(store), Metric("../escape", 1.0, TS, 0)),  # bad key
    ]
    for run_id, metric in cases:
        with pytest.raises(MlflowException) as ours:
            store.log_metric(run_id, metric)
        with pytest.raises(MlflowException) as theirs:
            mlflow_log_metric(store, run_id, metric)
        assert (ours.value.error_code, ours.value.message) == (
            theirs.value.error_code,
            theirs.value.message,
        )


def test_concurrent_writers_keep_the_newest_point(store: SqlAlchemyStore) -> None:
    fast_metrics.install()
    run_id = _new_run(store)

    def writer(offset: int) -> None:
        for step in range(offset, 60, 2):
            store.log_metric(run_id, Metric("loss", float(step), TS + step, step))

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.get_metric_history(run_id, "loss")) == 60
    (latest,) = store.get_run(run_id).data._metric_objs
    assert (latest.step, latest.value) == (59, 59.0)
