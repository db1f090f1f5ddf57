"""The OnlineStore contract, run against every backend.

Every test takes the ``store`` fixture, parametrized over SQLite (a file in ``tmp_path``)
and Redis (the test server, under a random key prefix removed afterwards). A new backend
joins by adding a parameter to ``target`` and passing this file unchanged.

The ordering tests use real subprocesses, since the contract promises atomicity "against
every other writer, in every process", which threads in one process cannot show.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipway.core.errors import BackendUnavailable, InvalidInput
from slipway.features.online.base import OnlineRecordWrite, OnlineStore, StoredRecord
from slipway.features.online.factory import open_online_store
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.online.sqlite import SQLiteOnlineStore
from tests.conftest import REPO, service_url

W = OnlineRecordWrite
R = StoredRecord
T0 = 1_700_000_000_000_000  # an event time in µs (November 2023)


@dataclass(frozen=True)
class Target:
    """Where a backend's data lives, enough to open it again in another process."""

    kind: str
    location: str  # the SQLite file, or the Redis URL
    prefix: str  # the Redis key prefix; unused for SQLite

    def open(self) -> OnlineStore:
        if self.kind == "sqlite":
            return SQLiteOnlineStore(self.location)
        return RedisOnlineStore(self.location, prefix=self.prefix)

    def argv(self) -> list[str]:
        return [self.kind, self.location, self.prefix]


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "sqlite":
        yield Target("sqlite", str(tmp_path / "online.db"), "")
        return
    url = service_url("redis")
    prefix = f"test-{uuid.uuid4().hex}"
    yield Target("redis", url, prefix)
    client = redis.Redis.from_url(url)
    try:
        leftovers = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if leftovers:
            client.delete(*leftovers)
    finally:
        client.close()


@pytest.fixture
def store(target: Target) -> Iterator[OnlineStore]:
    opened = target.open()
    yield opened
    opened.close()


# --------------------------------------------------------------------------- basics


def test_write_then_read_round_trip(store: OnlineStore) -> None:
    assert store.write("users", [W("u1", T0, b"one"), W("u2", T0 + 1, b"two")]) == 2
    assert store.read({"users": ["u1", "u2"]}) == {"users": [R(T0, b"one"), R(T0 + 1, b"two")]}


def test_absent_keys_are_none_in_request_order(store: OnlineStore) -> None:
    store.write("users", [W("b", T0, b"B"), W("d", T0, b"D")])
    got = store.read({"users": ["a", "b", "c", "d", "e", "b"]})
    assert got == {"users": [None, R(T0, b"B"), None, R(T0, b"D"), None, R(T0, b"B")]}


def test_many_groups_in_one_read(store: OnlineStore) -> None:
    for n in range(5):
        store.write(f"g{n}", [W("k", T0 + n, f"g{n}".encode())])
    got = store.read({"g0": ["k"], "g3": ["k", "x"], "empty": [], "unknown": ["k"], "g4": ["k"]})
    assert got == {
        "g0": [R(T0, b"g0")],
        "g3": [R(T0 + 3, b"g3"), None],
        "empty": [],
        "unknown": [None],
        "g4": [R(T0 + 4, b"g4")],
    }


def test_many_keys_across_groups_keep_their_order(store: OnlineStore) -> None:
    # More keys than one SQL statement may bind, to cross chunk boundaries.
    keys = [f"k{i}" for i in range(1_300)]
    assert store.write("a", [W(k, T0 + i, k.encode()) for i, k in enumerate(keys[::2])]) == 650
    store.write("b", [W("k1", T0, b"b")])
    asked = list(reversed(keys))
    got = store.read({"a": asked, "b": ["k0", "k1"]})
    present = set(keys[::2])
    assert [r.payload.decode() if r else None for r in got["a"]] == [
        k if k in present else None for k in asked
    ]
    assert got["b"] == [None, R(T0, b"b")]


def test_event_time_ordering(store: OnlineStore) -> None:
    assert store.write("g", [W("k", T0, b"first")]) == 1
    assert store.write("g", [W("k", T0 + 10, b"newer")]) == 1
    assert store.read({"g": ["k"]})["g"] == [R(T0 + 10, b"newer")]
    # An older event never overwrites a newer one.
    assert store.write("g", [W("k", T0 + 5, b"older")]) == 0
    assert store.read({"g": ["k"]})["g"] == [R(T0 + 10, b"newer")]
    # Equal event time: the incoming record wins.
    assert store.write("g", [W("k", T0 + 10, b"tie")]) == 1
    assert store.read({"g": ["k"]})["g"] == [R(T0 + 10, b"tie")]


def test_same_key_twice_in_one_call_is_applied_in_order(store: OnlineStore) -> None:
    assert store.write("g", [W("k", 5, b"a"), W("k", 7, b"b")]) == 2
    assert store.read({"g": ["k"]})["g"] == [R(7, b"b")]
    assert store.write("g", [W("k", 9, b"c"), W("k", 8, b"d")]) == 1
    assert store.read({"g": ["k"]})["g"] == [R(9, b"c")]
    assert store.write("g", [W("k", 10, b"e"), W("k", 10, b"f")]) == 2
    assert store.read({"g": ["k"]})["g"] == [R(10, b"f")]


def test_delete_counts_existing_keys_and_removes_them(store: OnlineStore) -> None:
    store.write("g", [W("a", T0, b"A"), W("b", T0, b"B"), W("c", T0, b"C")])
    store.write("other", [W("a", T0, b"other")])
    assert store.delete("g", ["a", "missing", "c", "a"]) == 2
    assert store.read({"g": ["a", "b", "c"], "other": ["a"]}) == {
        "g": [None, R(T0, b"B"), None],
        "other": [R(T0, b"other")],
    }
    assert store.delete("g", ["a"]) == 0
    # A deleted key starts afresh: any event time is accepted again.
    assert store.write("g", [W("a", 1, b"again")]) == 1


def test_drop_group_removes_only_that_group(store: OnlineStore) -> None:
    store.write("doomed", [W(f"k{i}", T0, b"x") for i in range(25)])
    store.write("kept", [W("k1", T0, b"kept")])
    store.write("doomed-not", [W("k1", T0, b"prefix-alike")])
    store.drop_group("doomed")
    assert store.count("doomed") == 0
    assert store.read({"doomed": ["k1"], "kept": ["k1"], "doomed-not": ["k1"]}) == {
        "doomed": [None],
        "kept": [R(T0, b"kept")],
        "doomed-not": [R(T0, b"prefix-alike")],
    }
    store.drop_group("never-written")


def test_count(store: OnlineStore) -> None:
    assert store.count("g") == 0
    store.write("g", [W(f"k{i}", T0, b"") for i in range(30)])
    store.write("g", [W("k0", T0 + 1, b"again")])
    store.write("h", [W("k0", T0, b"")])
    assert store.count("g") == 30
    store.delete("g", ["k0", "k1"])
    assert store.count("g") == 28


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00", b"\x00\x00tail", b"\xff\xfe\xfd", bytes(range(256)), os.urandom(256 * 1024)],
    ids=["empty", "nul", "nuls", "non-utf8", "all-bytes", "256KiB"],
)
def test_binary_payloads_round_trip_exactly(store: OnlineStore, payload: bytes) -> None:
    store.write("g", [W("k", T0, payload)])
    [got] = store.read({"g": ["k"]})["g"]
    assert got == R(T0, payload)
    assert type(got.payload) is bytes


def test_keys_may_hold_any_text(store: OnlineStore) -> None:
    keys = ["", "a:b", "a:b:c", "*", "[x]", "ünï\u2603", "with space", "\\"]
    assert store.write("g", [W(k, T0 + i, k.encode()) for i, k in enumerate(keys)]) == len(keys)
    got = store.read({"g": keys})["g"]
    assert got == [R(T0 + i, k.encode()) for i, k in enumerate(keys)]
    assert store.count("g") == len(keys)


def test_empty_calls(store: OnlineStore) -> None:
    assert store.write("g", []) == 0
    assert store.read({}) == {}
    assert store.read({"g": []}) == {"g": []}
    assert store.delete("g", []) == 0


def test_invalid_input_is_refused(store: OnlineStore) -> None:
    with pytest.raises(InvalidInput):
        store.write("Bad:Group", [W("k", T0, b"x")])
    with pytest.raises(InvalidInput):
        store.read({"a:b": ["k"]})
    with pytest.raises(InvalidInput):
        store.write("g", [W("k", 2**53, b"x")])
    assert store.count("g") == 0


def test_data_outlives_the_store_object(target: Target, store: OnlineStore) -> None:
    store.ping()
    store.write("g", [W("k", T0, b"kept")])
    store.close()
    again = target.open()
    try:
        again.ping()
        assert again.read({"g": ["k"]})["g"] == [R(T0, b"kept")]
    finally:
        again.close()


# ----------------------------------------------------------------- property-based

_WRITE = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 6), st.binary(max_size=6))


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(_WRITE, max_size=6), max_size=8))
def test_latest_event_time_wins(
    store: OnlineStore, batches: list[list[tuple[str, int, bytes]]]
) -> None:
    group = f"p{uuid.uuid4().hex[:12]}"  # the store outlives examples: a fresh group each
    model: dict[str, StoredRecord] = {}
    for batch in batches:
        expected_applied = 0
        for key, event_time, payload in batch:
            if key not in model or event_time >= model[key].event_time_us:
                model[key] = R(event_time, payload)
                expected_applied += 1
        assert store.write(group, [W(*write) for write in batch]) == expected_applied
    keys = ["a", "b", "c"]
    assert store.read({group: keys})[group] == [model.get(k) for k in keys]


# ------------------------------------------------------------ multi-process ordering

_CHILD_PRELUDE = """
import os, sys, time
from slipway.features.online.base import OnlineRecordWrite
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.online.sqlite import SQLiteOnlineStore

kind, location, prefix = sys.argv[1:4]
if kind == "sqlite":
    store = SQLiteOnlineStore(location)
else:
    store = RedisOnlineStore(location, prefix=prefix)
store.ping()  # connect now, so the first write does not lag behind the other process's

def wait_for(path):
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {path}")
        time.sleep(0.0001)

def touch(path):
    open(path, "w").close()
"""

# argv: kind location prefix event_time payload iterations role signals_dir
#   first:    write n//2 + 1 times, signal "half", wait until the second has written once,
#             then write the rest while the second writes too.
#   second:   wait for "half", write once, signal "started", write the rest.
#   together: signal "ready-<event_time>", wait for "go", write n times.
_RACER = (
    _CHILD_PRELUDE
    + """
event_time, payload, n = int(sys.argv[4]), sys.argv[5].encode(), int(sys.argv[6])
role, signals = sys.argv[7], sys.argv[8]
record = [OnlineRecordWrite("k", event_time, payload)]
if role == "second":
    wait_for(os.path.join(signals, "half"))
elif role == "together":
    touch(os.path.join(signals, f"ready-{event_time}"))
    wait_for(os.path.join(signals, "go"))
applied = 0
for i in range(n):
    applied += store.write("race", record)
    if role == "first" and i == n // 2:
        touch(os.path.join(signals, "half"))
        wait_for(os.path.join(signals, "started"))
    if role == "second" and i == 0:
        touch(os.path.join(signals, "started"))
store.close()
print(applied)
"""
)

_ITERATIONS = 200


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out.strip()


def _wait_for_files(paths: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"children never signalled {paths}"
        time.sleep(0.001)


@pytest.mark.parametrize("order", ["t1_first", "t2_first", "together"])
def test_two_processes_newest_event_wins(target: Target, tmp_path: Path, order: str) -> None:
    t1, t2 = T0, T0 + 1
    signals = tmp_path / "signals"
    signals.mkdir()
    roles = {
        "t1_first": {t1: "first", t2: "second"},
        "t2_first": {t1: "second", t2: "first"},
        "together": {t1: "together", t2: "together"},
    }[order]
    target.open().close()  # create the schema before the race, not during it
    start_order = [t2, t1] if order == "t2_first" else [t1, t2]
    procs = {
        t: _spawn(
            _RACER, *target.argv(), str(t), f"payload-{t}", str(_ITERATIONS), roles[t], str(signals)
        )
        for t in start_order
    }
    if order == "together":
        _wait_for_files([signals / f"ready-{t1}", signals / f"ready-{t2}"])
        (signals / "go").touch()
    applied = {t: int(_finish(proc)) for t, proc in procs.items()}

    store = target.open()
    try:
        assert store.read({"race": ["k"]})["race"] == [R(t2, f"payload-{t2}".encode())]
    finally:
        store.close()
    # The newest writer always applies (ties win); the stale one never does once the
    # newer record is stored.
    assert applied[t2] == _ITERATIONS
    if order == "t1_first":
        assert applied[t1] == _ITERATIONS // 2 + 1
    elif order == "t2_first":
        assert applied[t1] == 0


# argv: kind location prefix writer writers count signals_dir
# Writes event times writer, writer + writers, writer + 2 * writers, ... (increasing).
_SERIES = (
    _CHILD_PRELUDE
    + """
writer, writers, count, signals = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
touch(os.path.join(signals, f"ready-{writer}"))
wait_for(os.path.join(signals, "go"))
for i in range(count):
    t = i * writers + writer
    store.write("series", [OnlineRecordWrite("k", t, str(t).encode())])
store.close()
"""
)


def test_concurrent_increasing_writes_end_at_the_maximum(target: Target, tmp_path: Path) -> None:
    processes, threads, count = 3, 3, 150
    writers = processes + threads
    signals = tmp_path / "signals"
    signals.mkdir()
    store = target.open()
    procs = [
        _spawn(_SERIES, *target.argv(), str(w), str(writers), str(count), str(signals))
        for w in range(processes)
    ]
    go = threading.Event()
    done = threading.Event()
    failures: list[BaseException] = []

    def write_series(writer: int) -> None:
        go.wait()
        for i in range(count):
            t = i * writers + writer
            store.write("series", [W("k", t, str(t).encode())])

    def watch() -> None:
        # Concurrent readers must never see the stored event time go backwards.
        last = -1
        try:
            while not done.is_set():
                [record] = store.read({"series": ["k"]})["series"]
                if record is not None:
                    assert record.event_time_us >= last
                    assert record.payload == str(record.event_time_us).encode()
                    last = record.event_time_us
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=write_series, args=(processes + n,)) for n in range(threads)]
    watcher = threading.Thread(target=watch)
    for thread in [*workers, watcher]:
        thread.start()
    _wait_for_files([signals / f"ready-{w}" for w in range(processes)])
    (signals / "go").touch()
    go.set()
    for proc in procs:
        _finish(proc)
    for thread in workers:
        thread.join()
    done.set()
    watcher.join()
    assert not failures, failures
    top = (count - 1) * writers + writers - 1
    assert store.read({"series": ["k"]})["series"] == [R(top, str(top).encode())]
    store.close()


def test_store_keeps_working_in_a_forked_child(store: OnlineStore) -> None:
    store.write("g", [W("k", 1, b"parent")])
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        status = 1
        try:
            ok = store.read({"g": ["k"]})["g"] == [R(1, b"parent")]
            status = 0 if ok and store.write("g", [W("k", 2, b"child")]) == 1 else 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.read({"g": ["k"]})["g"] == [R(2, b"child")]


# ------------------------------------------------------------ backend-specific edges


@pytest.mark.redis
def test_redis_recovers_when_the_server_forgets_the_script() -> None:
    url = service_url("redis")
    store = RedisOnlineStore(url, prefix=f"test-{uuid.uuid4().hex}")
    try:
        store.write("g", [W("k", 1, b"a")])
        redis.Redis.from_url(url).script_flush()
        assert store.write("g", [W("k", 2, b"b"), W("k", 1, b"stale"), W("j", 1, b"c")]) == 2
        assert store.read({"g": ["k", "j"]})["g"] == [R(2, b"b"), R(1, b"c")]
        # Many script calls (records go in batches): every batch runs, in order.
        redis.Redis.from_url(url).script_flush()
        many = [W(f"m{i % 700}", i, str(i).encode()) for i in range(1700)]
        assert store.write("g", [*many, W("m1", 0, b"old")]) == 1700
        keys = [f"m{i}" for i in range(700)]
        newest = {f"m{i % 700}": i for i in range(1700)}
        assert store.read({"g": keys})["g"] == [R(newest[k], str(newest[k]).encode()) for k in keys]
        # A flushed script cache does not concern reads (MGET), however many batches.
        redis.Redis.from_url(url).script_flush()
        wide = [f"m{i}" for i in range(1300)]
        assert store.read({"g": wide})["g"] == [
            R(newest[k], str(newest[k]).encode()) if k in newest else None for k in wide
        ]
    finally:
        store.drop_group("g")
        store.close()


def _read_connections(admin: redis.Redis, name: str) -> list[dict[str, str]]:
    """The server's view of ``name``'s connections whose last command was a read."""
    clients = cast("list[dict[str, str]]", admin.client_list())
    return [c for c in clients if c.get("name") == name and c.get("cmd") == "mget"]


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@dataclass(frozen=True)
class NamedRedis:
    """A Redis store whose connections carry a client name, so the server's ``CLIENT LIST``
    shows exactly this store's connections; ``admin`` is a separate client to look."""

    store: RedisOnlineStore
    admin: redis.Redis
    name: str

    def readers(self) -> list[dict[str, str]]:
        return _read_connections(self.admin, self.name)


@pytest.fixture
def named_redis() -> Iterator[NamedRedis]:
    url = service_url("redis")
    name = f"reads-{uuid.uuid4().hex[:12]}"
    store = RedisOnlineStore(f"{url}?client_name={name}", prefix=f"test-{name}")
    admin = redis.Redis.from_url(url)
    try:
        store.write("g", [W("k", 1, b"v"), W("j", 2, b"w")])
        yield NamedRedis(store, admin, name)
    finally:
        cleanup = RedisOnlineStore(url, prefix=f"test-{name}")
        cleanup.drop_group("g")
        cleanup.close()
        store.close()
        admin.close()


@pytest.mark.redis
def test_redis_reads_hold_one_connection_per_thread_and_close_them(
    named_redis: NamedRedis,
) -> None:
    store = named_redis.store
    for _ in range(5):
        assert store.read({"g": ["k"]})["g"] == [R(1, b"v")]
    first = named_redis.readers()
    assert len(first) == 1  # five reads, one connection

    barrier = threading.Barrier(3)

    def together() -> None:
        barrier.wait()  # all three threads alive at once: three connections
        for _ in range(3):
            assert store.read({"g": ["k"]})["g"] == [R(1, b"v")]

    with ThreadPoolExecutor(max_workers=3) as pool:
        for future in [pool.submit(together) for _ in range(3)]:
            future.result()
        assert len(named_redis.readers()) == 4
    # The pool's threads have ended: their connections are closed with them, without
    # waiting for the garbage collector (which then finds no open socket to warn about).
    assert _eventually(lambda: len(named_redis.readers()) == 1, timeout=1.0)
    gc.collect()
    assert named_redis.readers()[0]["id"] == first[0]["id"]
    store.close()
    assert _eventually(lambda: not named_redis.readers())


@pytest.mark.redis
def test_redis_read_reconnects_when_the_server_drops_the_connection(
    named_redis: NamedRedis,
) -> None:
    store = named_redis.store
    assert store.read({"g": ["k"]})["g"] == [R(1, b"v")]
    (held,) = named_redis.readers()
    named_redis.admin.client_kill_filter(_id=held["id"])  # as Redis does to an idle client
    assert store.read({"g": ["k", "j"]})["g"] == [R(1, b"v"), R(2, b"w")]
    (again,) = named_redis.readers()
    assert again["id"] != held["id"]


@pytest.mark.redis
def test_redis_forked_child_reads_on_its_own_connection(named_redis: NamedRedis) -> None:
    store = named_redis.store
    assert store.read({"g": ["k"]})["g"] == [R(1, b"v")]
    (parent,) = named_redis.readers()
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        status = 1
        try:
            ok = store.read({"g": ["k"]})["g"] == [R(1, b"v")]
            ids = {c["id"] for c in named_redis.readers()}
            status = 0 if ok and len(ids) == 2 and parent["id"] in ids else 1
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection was neither used nor closed by the child.
    assert store.read({"g": ["k"]})["g"] == [R(1, b"v")]
    assert _eventually(lambda: [c["id"] for c in named_redis.readers()] == [parent["id"]])


def test_unreachable_redis_is_backend_unavailable() -> None:
    store = RedisOnlineStore("redis://127.0.0.1:1/0")
    with pytest.raises(BackendUnavailable):
        store.ping()
    with pytest.raises(BackendUnavailable):
        store.read({"g": ["k"]})
    with pytest.raises(BackendUnavailable):
        store.write("g", [W("k", 1, b"x")])
    store.close()


def test_factory_chooses_by_scheme(tmp_path: Path) -> None:
    sqlite_store = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    assert isinstance(sqlite_store, SQLiteOnlineStore)
    sqlite_store.close()
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0"):
        redis_store = open_online_store(url)
        assert isinstance(redis_store, RedisOnlineStore)
        redis_store.close()
    for bad in ("postgresql://u:secret@h/db", "online.db", "sqlite://", "sqlite:///:memory:"):
        with pytest.raises(InvalidInput) as caught:
            open_online_store(bad)
        assert caught.value.field == "online_store.url"
        assert "secret" not in caught.value.message
