"""Each Delta table is cut at a version the database snapshot accounts for.

The pieces of a backup run here in the order a backup runs them, with writes placed on
purpose between them: before the snapshot, while an ingestion is still running across it,
and after it. Plus the cut rule on its own, commit by commit.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fsspec.implementations.local import LocalFileSystem

from slipway.backup import database
from slipway.backup.offline import Commit, DeltaTables, choose_cut
from slipway.backup.service import delta_cuts
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.backup.platform import BASE, TICKS, create_groups


def _rows(n: int) -> list[dict[str, object]]:
    return [{"k": f"k{k}", "at": BASE + timedelta(seconds=n), "n": n} for k in range(3)]


def test_the_cut_keeps_what_the_snapshot_knows_and_no_append_it_does_not(
    database_url: str, tmp_path: Path
) -> None:
    services = Services.open(load_settings(home=tmp_path / "home", database={"url": database_url}))
    try:
        create_groups(services)
        fs = services.features
        fs.ingest(TICKS, _rows(0))  # version 0
        fs.ingest(TICKS, _rows(1))  # version 1
        tables = DeltaTables(*_local(services))
        before = {t: tables.latest(t) for t in tables.tables()}
        assert before[TICKS] == 1
        running = fs.repo.start_ingest(TICKS, "ingest", "test")  # running across the snapshot
        fs.ingest(TICKS, _rows(2))  # version 2, finished before the snapshot
        with database.snapshot(services.settings.database_url, tmp_path) as snap:
            fs.delete_records(TICKS, [["k0"]], actor="test")  # version 3: a deletion
            group = fs.describe(TICKS).spec
            table = pa.Table.from_pylist(
                [{"k": "k9", "at": BASE, "n": 9}],
                schema=pa.schema(
                    [("k", pa.string()), ("at", pa.timestamp("us", "UTC")), ("n", pa.int64())]
                ),
            )
            services.features.offline.append(group, table.to_batches(), ingest_id=running)  # v4
            fs.ingest(TICKS, _rows(5))  # version 5: an ingestion the snapshot never saw
            cuts = delta_cuts(tables, before, snap)
    finally:
        services.close()

    cut, left_out = cuts[TICKS]
    assert cut == 3
    assert [c.version for c in left_out] == [4, 5]
    logged = tables.log_files(TICKS, cut)
    assert logged == [f"_delta_log/{v:020d}.json" for v in range(4)]
    kept = set(tables.data_files(TICKS, left_out))
    assert not kept & {rel for c in left_out for rel in c.added}
    assert tables.referenced(TICKS, cut) <= kept
    # Groups whose tables stopped before the snapshot keep their newest version.
    assert cuts["weather"][0] == tables.latest("weather")


def _local(services: Services) -> tuple[LocalFileSystem, str]:
    return LocalFileSystem(), f"{services.settings.artifact_root}/features"


def _append(version: int, ingest: int | None) -> Commit:
    return Commit(version, "WRITE", ingest, (f"part-{version}.parquet",))


@pytest.mark.parametrize(
    ("commits", "states", "cut"),
    [
        ([], {}, 4),  # nothing after the listing
        ([_append(5, 10)], {10: "succeeded"}, 5),
        ([_append(5, 10)], {10: "failed"}, 5),  # a failure is recorded after its commit
        ([_append(5, 10)], {10: "running"}, 4),  # either side of the snapshot
        ([_append(5, 10)], {}, 4),  # began after the snapshot
        ([_append(5, None)], {}, 4),  # an append whose ingestion cannot be read
        ([Commit(5, "DELETE", None, ()), _append(6, 11)], {}, 5),  # deletions are kept
        ([_append(5, 11), Commit(6, "DELETE", None, ())], {}, 4),  # not past an unproven one
        ([_append(5, 10), _append(6, 11), _append(7, 12)], {10: "succeeded", 12: "succeeded"}, 5),
    ],
)
def test_the_cut_rule(commits: list[Commit], states: dict[int, str], cut: int) -> None:
    assert choose_cut(4, commits, states) == cut


def test_a_table_begun_after_the_snapshot_is_left_out() -> None:
    assert choose_cut(None, [_append(0, 3)], {}) is None
    assert choose_cut(None, [_append(0, 3)], {3: "succeeded"}) == 0
