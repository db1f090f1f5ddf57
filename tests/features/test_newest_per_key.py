"""Writing only each key's newest record leaves the online store as writing every row in
order would (ties: the later row wins), and the offline store still gets every fact: each
(key, event time) of a batch once, its last statement."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from slipway.core.settings import load_settings
from slipway.features.definitions import FeatureGroup
from slipway.features.ingest import last_per_event, newest_per_key
from slipway.services import Services

GROUP = FeatureGroup.model_validate(
    {
        "name": "g",
        "record_identifiers": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}],
        "event_time": "t",
        "features": [{"name": "v", "type": "int"}],
    }
)

rows = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["x", "y"]), st.integers(0, 4)),
    max_size=60,
)


def _oracle(records: list[tuple[int, str, int]]) -> dict[tuple[int, str], tuple[int, int]]:
    """Apply every row in order with the online store's rule: at least as new wins."""
    stored: dict[tuple[int, str], tuple[int, int]] = {}
    for position, (a, b, t) in enumerate(records):
        if (a, b) not in stored or t >= stored[(a, b)][0]:
            stored[(a, b)] = (t, position)
    return stored


@settings(max_examples=200, deadline=None)
@given(rows)
def test_newest_per_key_matches_writing_every_row(records: list[tuple[int, str, int]]) -> None:
    table = pa.table(
        {
            "a": pa.array([r[0] for r in records], pa.int64()),
            "b": pa.array([r[1] for r in records], pa.string()),
            "t": pa.array([r[2] for r in records], pa.int64()),
            "v": pa.array(range(len(records)), pa.int64()),
        }
    )
    kept = newest_per_key(GROUP, table).to_pylist()
    assert {(r["a"], r["b"]): (r["t"], r["v"]) for r in kept} == _oracle(records)
    assert len(kept) == len({(a, b) for a, b, _ in records})


@settings(max_examples=200, deadline=None)
@given(rows)
def test_last_per_event_keeps_the_last_statement_of_each_fact_in_order(
    records: list[tuple[int, str, int]],
) -> None:
    table = pa.table(
        {
            "a": pa.array([r[0] for r in records], pa.int64()),
            "b": pa.array([r[1] for r in records], pa.string()),
            "t": pa.array([r[2] for r in records], pa.int64()),
            "v": pa.array(range(len(records)), pa.int64()),
        }
    )
    last = {record: position for position, record in enumerate(records)}
    kept = last_per_event(GROUP, table).to_pylist()
    assert [r["v"] for r in kept] == sorted(last.values())


def test_ingest_writes_each_key_once_and_every_fact_offline(tmp_path: Path) -> None:
    services = Services.open(load_settings(home=tmp_path / "home"))
    try:
        fs = services.features
        fs.create_group(
            {
                "name": "sensors",
                "record_identifiers": [{"name": "id", "type": "int"}],
                "event_time": "at",
                "features": [{"name": "reading", "type": "float"}],
            }
        )
        at = pd.Timestamp("2026-01-01", tz="UTC")
        frame = pd.DataFrame(
            {
                "id": [1, 2, 1, 1, 2, 3],
                "at": [at + pd.Timedelta(minutes=m) for m in (5, 1, 9, 9, 0, 2)],
                "reading": [0.5, 0.2, 0.9, 0.95, 0.1, 0.3],
            }
        )
        result = fs.ingest("sensors", frame)
        # id 1 at minute 9 is one fact stated twice: the later statement is it.
        assert result.rows == 5 and result.online_applied == 3
        got = fs.get_online_features(["sensors:reading"], [{"id": 1}, {"id": 2}, {"id": 3}])
        # id 1: the later row of minute 9 wins; id 2: minute 1 beats minute 0.
        assert [v.values["reading"] for v in got] == [0.95, 0.2, 0.3]
        offline = fs.query('SELECT id, reading FROM sensors ORDER BY id, "at"').to_pylist()
        assert [(r["id"], r["reading"]) for r in offline] == [
            (1, 0.5), (1, 0.95), (2, 0.1), (2, 0.2), (3, 0.3)
        ]  # fmt: skip
    finally:
        services.close()
