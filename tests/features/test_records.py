"""Per-record verdicts at batch speed: a record's verdict and values never depend on the
records around it, and each invalid record carries its own reasons."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa

from slipway.features.definitions import FeatureGroup
from slipway.features.records import split_records
from slipway.features.validation import BatchInvalid, as_arrow, validate_batch

GROUP = FeatureGroup.parse(
    {
        "name": "weather",
        "record_identifiers": [{"name": "origin"}],
        "event_time": "time_hour",
        "features": [
            {"name": "temp", "type": "float"},
            {"name": "wind", "type": "int"},
            {"name": "desc", "type": "string"},
            {"name": "shape", "type": "vector", "length": 2},
        ],
    }
)


def _good(i: int) -> dict[str, Any]:
    return {
        "origin": f"A{i}",
        "time_hour": "2024-01-01T00:00:00Z",
        "temp": 20 if i % 3 == 0 else 20.5,  # JSON writers drop ".0": both are numbers
        "wind": i,
        "desc": "calm",
    }


TRICKY: list[dict[str, Any]] = [
    _good(100) | {"wind": "gusty"},
    _good(101) | {"desc": 5},  # a number where text belongs: refused alone, so always
    _good(102) | {"time_hour": "2024-01-01T00:00:00"},  # naive among offsets
    _good(103) | {"origin": None},
    _good(104) | {"colour": "red"},
    _good(105) | {"shape": [1, "a"]},
    _good(106) | {"shape": [1, 2]},  # valid
    _good(107) | {"time_hour": "yesterday"},
    _good(108) | {"wind": 2**70},
    _good(109) | {"wind": 3.0},  # valid: a whole number
    _good(110) | {"temp": None, "desc": None},  # valid: nullable features
]


def _alone(record: dict[str, Any]) -> list[dict[str, Any]] | str:
    """The verdict of batch ingestion for a batch of just this record."""
    try:
        return validate_batch(GROUP, as_arrow([record])).to_pylist()
    except BatchInvalid as exc:
        return "; ".join(f"column {p['column']!r}: {p['message']}" for p in exc.details["problems"])
    except Exception:
        return "unreadable"


def test_each_verdict_is_the_verdict_of_the_record_alone() -> None:
    records = [_good(i) for i in range(60)] + TRICKY
    expected = {r["origin"]: _alone(r) for r in records}
    shuffler = random.Random(7)
    for _ in range(5):
        shuffler.shuffle(records)
        verdicts = split_records(GROUP, records)
        assert verdicts.indices == sorted(verdicts.indices)
        rows = verdicts.valid.to_pylist()
        assert len(rows) + len(verdicts.rejected) == len(records)
        for index, row in zip(verdicts.indices, rows, strict=True):
            assert expected[records[index]["origin"]] == [row]
        for rejection in verdicts.rejected:
            alone = expected[records[rejection.index]["origin"]]
            assert isinstance(alone, str)
            assert rejection.reason == alone or alone == "unreadable"


def test_valid_rows_keep_their_input_order() -> None:
    records = [_good(i) | {"wind": i} for i in range(10)]
    records[3]["wind"] = 1.5
    records[4] |= {"desc": None}  # another shape, between the others
    verdicts = split_records(GROUP, records)
    assert verdicts.indices == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert verdicts.valid.column("wind").to_pylist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert [r.index for r in verdicts.rejected] == [3]
    assert verdicts.rejected[0].problems == [{"column": "wind", "message": "values are not int64"}]


def test_no_valid_record_gives_an_empty_table_of_the_group_schema() -> None:
    verdicts = split_records(GROUP, [{"origin": "x"}])
    assert verdicts.valid.num_rows == 0 and verdicts.indices == []
    assert verdicts.valid.schema.names == ["origin", "time_hour", "temp", "wind", "desc", "shape"]
    assert isinstance(verdicts.valid, pa.Table)
    assert verdicts.rejected[0].reason == "column 'time_hour': required column is missing"
