"""`slipway feature-views`: apply from YAML or JSON (new versions only when changed),
list, get, versions, online reads and a training set written to Parquet, equal to the
embedded one; bad input exits 2 naming it, the entity and output paths are checked
(``..``, other schemes, chained URLs, an existing file, a symlink), and a failed training
set leaves no file. One test runs the commands against the shared ``slipway up`` and in
process on its settings: the same output."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from slipway.cli.main import app
from slipway.core.settings import load_settings
from slipway.services import Services
from tests.shared_platform import SharedPlatform

runner = CliRunner()

GROUPS = {
    "riders.yaml": """
name: riders
record_identifiers: [{name: rider_id}]
features:
  - {name: age, type: int}
""",
    "trips.yaml": """
name: trips
record_identifiers: [{name: rider_id}]
features:
  - {name: fare, type: float}
""",
}

VIEW = """
name: rider
features: ["riders:age"]
request_fields: {distance: float}
transformations:
  - name: trips_1h
    window: {group: trips, function: count, duration: 1h}
  - name: fare_sum_24h
    window: {group: trips, column: fare, function: sum, duration: 24h}
  - name: per_km
    expression: fare_sum_24h / distance
    type: float
"""

ENTITIES = """rider_id,event_timestamp,distance,label
a,2026-02-01T00:45:00Z,2.0,1
b,2026-02-01T00:45:00Z,5.0,0
a,2026-02-01T02:10:00Z,4.0,1
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A platform home with the riders and trips groups and their data."""
    monkeypatch.setenv("SLIPWAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("COLUMNS", "200")
    for name, text in GROUPS.items():
        (tmp_path / name).write_text(text)
        _ok(["features", "create", "-f", str(tmp_path / name)])
    (tmp_path / "riders.csv").write_text(
        "rider_id,event_time,age\na,2026-02-01T00:00:00Z,30\nb,2026-02-01T00:00:00Z,65\n"
    )
    (tmp_path / "trips.csv").write_text(
        "rider_id,event_time,fare\n"
        "a,2026-02-01T00:00:00Z,10.0\n"
        "a,2026-02-01T00:30:00Z,20.0\n"
        "a,2026-02-01T02:00:00Z,30.0\n"
        "b,2026-02-01T00:00:00Z,5.0\n"
    )
    _ok(["features", "ingest", "riders", str(tmp_path / "riders.csv")])
    _ok(["features", "ingest", "trips", str(tmp_path / "trips.csv")])
    (tmp_path / "view.yaml").write_text(VIEW)
    (tmp_path / "entities.csv").write_text(ENTITIES)
    return tmp_path


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _refused(args: list[str], code: int = 2) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())  # Rich wraps long lines


def test_apply_read_and_delete_a_view(home: Path) -> None:
    view = str(home / "view.yaml")
    assert "feature view rider: version 1" in _ok(["feature-views", "apply", "-f", view])
    assert "rider unchanged (version 1)" in _ok(["feature-views", "apply", "-f", view])
    changed = home / "view.json"  # JSON is read as the YAML it is
    spec = json.loads(_ok(["feature-views", "get", "rider", "-o", "json"]))["spec"]
    changed.write_text(json.dumps(spec | {"description": "recent trips"}))
    applied = json.loads(_ok(["feature-views", "apply", "-f", str(changed), "-o", "json"]))
    assert (applied["version"], applied["changed"]) == (2, True)

    listed = json.loads(_ok(["feature-views", "list", "-o", "json"]))
    assert [(v["name"], v["version"]) for v in listed] == [("rider", 2)]
    assert "rider" in _ok(["feature-views", "list"])
    table = " ".join(_ok(["feature-views", "get", "rider"]).split())
    assert "version 2" in table and "recent trips" in table
    assert "window count over trips, 1h" in table
    assert "window sum(fare) over trips, 1d" in table
    assert "expression fare_sum_24h / distance" in table and "feature riders:age" in table
    first = json.loads(_ok(["feature-views", "get", "rider", "--version", "1", "-o", "json"]))
    assert first["version"] == 1 and first["spec"]["description"] == ""
    versions = json.loads(_ok(["feature-views", "versions", "rider", "-o", "json"]))
    assert [v["version"] for v in versions] == [1, 2]
    assert first["digest"][:12] in _ok(["feature-views", "versions", "rider"])

    rows = json.loads(
        _ok(
            [
                "feature-views",
                "online",
                "rider",
                "--row",
                '{"rider_id": "a", "distance": 2.0}',
                "--row",
                '{"rider_id": "b", "distance": 5.0}',
                "--at",
                "2026-02-01T00:45:00Z",
                "-o",
                "json",
            ]
        )
    )
    assert rows == [
        {"age": 30, "trips_1h": 2, "fare_sum_24h": 30.0, "per_km": 15.0},
        {"age": 65, "trips_1h": 1, "fare_sum_24h": 5.0, "per_km": 1.0},
    ]

    assert "deleted rider" in _ok(["feature-views", "delete", "rider", "--yes"])
    assert "does not exist" in _refused(["feature-views", "get", "rider"], code=1)


def test_a_training_set_is_written_as_the_embedded_one(home: Path) -> None:
    _ok(["feature-views", "apply", "-f", str(home / "view.yaml")])
    out = home / "train.parquet"
    entities = str(home / "entities.csv")
    said = _ok(["feature-views", "training-set", "rider", entities, "--out", str(out)])
    assert f"wrote 3 rows (8 columns) to {out}" in " ".join(said.split())
    written = pq.read_table(out)
    assert written.column("trips_1h").to_pylist() == [2, 1, 1]
    assert written.column("per_km").to_pylist() == [15.0, 1.0, 15.0]

    parquet = home / "entities.parquet"
    pd.read_csv(home / "entities.csv", parse_dates=["event_timestamp"]).to_parquet(parquet)
    again = json.loads(
        _ok(
            [
                "feature-views",
                "training-set",
                "rider",
                str(parquet),
                "--out",
                str(out),
                "--force",
                "--version",
                "1",
                "-o",
                "json",
            ]
        )
    )
    services = Services.open(load_settings(home=home / "ws"))
    try:
        embedded = services.feature_views.training_set("rider", pq.read_table(parquet), version=1)
    finally:
        services.close()
    assert pq.read_table(out).equals(embedded.data)
    assert again["rows"] == 3 and again["columns"] == embedded.data.column_names
    assert again["definition"] == json.loads(json.dumps(embedded.definition.to_dict()))
    assert again["definition"]["feature_view"]["version"] == 1

    known = json.loads(
        _ok(
            [
                "feature-views",
                "training-set",
                "rider",
                entities,
                "--out",
                str(home / "known.parquet"),
                "--as-known-at",
                "-o",
                "json",
            ]
        )
    )
    assert known["definition"]["as_known_at"] is True
    # Everything was ingested now, long after the rows' 2026-02 times: nothing was known.
    assert pq.read_table(home / "known.parquet").column("age").to_pylist() == [None] * 3


def test_bad_input_exits_2_and_writes_nothing(home: Path) -> None:
    unsafe = home / "unsafe.yaml"
    unsafe.write_text("name: !!python/object/apply:os.system ['true']\nfeatures: [riders:age]\n")
    assert "cannot read" in _refused(["feature-views", "apply", "-f", str(unsafe)])
    missing = home / "missing.yaml"
    missing.write_text(VIEW.replace("group: trips, column", "group: nowhere, column"))
    assert "'nowhere' does not exist" in _refused(["feature-views", "apply", "-f", str(missing)])
    _ok(["feature-views", "apply", "-f", str(home / "view.yaml")])
    assert [
        v["version"] for v in json.loads(_ok(["feature-views", "versions", "rider", "-o", "json"]))
    ] == [1]

    online = ["feature-views", "online", "rider", "--row"]
    assert "not JSON" in _refused([*online, "{rider_id: a"])
    assert "must be a JSON object" in _refused([*online, "[1]"])
    assert "has no 'distance'" in _refused([*online, '{"rider_id": "a"}'])
    assert "needs a time zone" in _refused([*online, '{"rider_id": "a"}', "--at", "2026-02-01"])

    out = home / "train.parquet"
    training = ["feature-views", "training-set", "rider"]
    no_time = home / "no-time.csv"
    no_time.write_text("rider_id,distance\na,1.0\n")
    said = _refused([*training, str(no_time), "--out", str(out)])
    assert "no timestamp column 'event_timestamp'" in said
    assert not out.exists()  # nothing written, not even a part
    assert [p.name for p in home.iterdir() if p.name.startswith(".train")] == []
    assert "version 9 does not exist" in _refused(
        [*training, str(home / "entities.csv"), "--out", str(out), "--version", "9"], code=1
    )
    assert not out.exists()


def test_entity_and_output_paths_are_checked(home: Path) -> None:
    training = ["feature-views", "training-set", "rider"]
    _ok(["feature-views", "apply", "-f", str(home / "view.yaml")])
    entities, out = str(home / "entities.csv"), str(home / "train.parquet")
    for source, said in [
        (f"{home}/sub/../entities.csv", "must not contain '..'"),
        ("http://169.254.169.254/latest/meta-data.csv", "scheme 'http'"),
        ("ftp://example.com/entities.csv", "scheme 'ftp'"),
        (f"simplecache::{entities}", "chained URLs"),
        ("entities\x00.csv", "must be a path or URI"),
    ]:
        assert said in _refused([*training, source, "--out", out]), source
    for target, said in [
        (f"{home}/sub/../train.parquet", "must not contain '..'"),
        ("s3://bucket/train.parquet", "a local file"),
        (f"{home}/train.csv", "must name a .parquet file"),
        (f"{home}/no-such-folder/train.parquet", "does not exist"),
    ]:
        assert said in _refused([*training, entities, "--out", target]), target
    assert not (home / "train.parquet").exists()

    precious = home / "precious.parquet"
    precious.write_bytes(b"keep me")
    assert "exists; pass --force" in _refused([*training, entities, "--out", str(precious)])
    assert precious.read_bytes() == b"keep me"

    # A symlink at --out is replaced by the file, never written through.
    elsewhere = home / "elsewhere.txt"
    elsewhere.write_text("not a training set")
    link = home / "link.parquet"
    link.symlink_to(elsewhere)
    assert "exists; pass --force" in _refused([*training, entities, "--out", str(link)])
    _ok([*training, entities, "--out", str(link), "--force"])
    assert elsewhere.read_text() == "not a training set"
    assert not link.is_symlink() and pq.read_table(link).num_rows == 3


def _run(args: list[str], env: dict[str, str]) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_commands_say_the_same_remotely(
    shared_platform: SharedPlatform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    services = shared_platform.services
    suffix = uuid.uuid4().hex[:8]
    riders, trips, view = f"cli-riders-{suffix}", f"cli-trips-{suffix}", f"cli-rider-{suffix}"
    for file, name in (("riders.yaml", riders), ("trips.yaml", trips)):
        services.features.create_group(yaml.safe_load(GROUPS[file]) | {"name": name})
    services.features.ingest(
        riders,
        pd.DataFrame(
            {"rider_id": ["a"], "event_time": [pd.Timestamp("2026-02-01", tz="UTC")], "age": [30]}
        ),
    )
    spec = tmp_path / "view.yaml"
    spec.write_text(
        VIEW.replace("riders:", f"{riders}:")
        .replace("group: trips", f"group: {trips}")
        .replace("name: rider\n", f"name: {view}\n")
    )
    entities = tmp_path / "entities.csv"
    entities.write_text(ENTITIES)
    local_env = {
        "SLIPWAY_HOME": str(shared_platform.home),
        "SLIPWAY_CONFIG": str(shared_platform.home / "slipway.yaml"),
        "SLIPWAY_URL": "",
    }
    remote_env = {"SLIPWAY_URL": shared_platform.url, "SLIPWAY_TOKEN": shared_platform.token}
    applied = _run(["feature-views", "apply", "-f", str(spec)], remote_env)
    assert f"feature view {view}: version 1" in applied
    out = tmp_path / "train.parquet"
    online = ["--row", '{"rider_id": "a", "distance": 2.0}', "--at", "2026-02-01T00:45:00Z"]
    written = ["--out", str(out), "--force", "-o", "json"]
    for args in (
        ["feature-views", "get", view],
        ["feature-views", "versions", view, "-o", "json"],
        ["feature-views", "online", view, *online],
        ["feature-views", "training-set", view, str(entities), *written],
    ):
        local = _run(args, local_env)
        remote = _run(args, remote_env)
        assert remote == local, args
    said = json.loads(local)
    assert said["definition"]["feature_view"]["name"] == view
    assert pq.read_table(out).column("age").to_pylist() == [30, None, 30]
