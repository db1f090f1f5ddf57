"""The OnlineStore event-log contract (``append_events``, ``read_events``,
``delete_events``), run against every backend like ``test_online_store.py``.

The event log is what feature views aggregate over time windows online: per key, the
events of the last ``horizon`` before the key's latest one, one event per event time.
Atomicity per key is promised "against every other writer, in every process", so the
race test runs real subprocesses while a thread of this one reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slipway.core.errors import InvalidInput
from slipway.features.online.base import OnlineRecordWrite, OnlineStore, StoredRecord
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.online.scoped import ScopedOnlineStore
from tests.conftest import REPO, service_url
from tests.contract.test_online_store import Target
from tests.waiting import eventually

W = OnlineRecordWrite
R = StoredRecord
T0 = 1_700_000_000_000_000  # an event time in µs (November 2023)
HOUR = 3_600_000_000
DAY = 24 * HOUR
FOREVER = 2**62  # a horizon past every event time: nothing is pruned


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
        # Records and event logs alike (``{prefix}:`` and ``{prefix}#ev:``).
        leftovers = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if leftovers:
            client.delete(*leftovers)
    finally:
        client.close()


@pytest.fixture
def store(target: Target) -> Iterator[OnlineStore]:
    opened = target.open()
    yield opened
    opened.close()


def _all(store: OnlineStore, group: str, *keys: str) -> list[list[StoredRecord]]:
    return store.read_events(group, list(keys), -(2**53), 2**53)


# --------------------------------------------------------------------------- basics


def test_append_then_read_in_time_order_within_inclusive_bounds(store: OnlineStore) -> None:
    times = [T0 + 5, T0 + 1, T0 + 3, T0 + 2, T0 + 4]  # appended out of order
    store.append_events("clicks", [W("u1", t, b"%d" % (t - T0)) for t in times], DAY)
    assert _all(store, "clicks", "u1") == [[R(T0 + n, b"%d" % n) for n in range(1, 6)]]
    # [since, until] includes both ends.
    assert store.read_events("clicks", ["u1"], T0 + 2, T0 + 4) == [
        [R(T0 + 2, b"2"), R(T0 + 3, b"3"), R(T0 + 4, b"4")]
    ]
    assert store.read_events("clicks", ["u1"], T0 + 5, T0 + 5) == [[R(T0 + 5, b"5")]]
    assert store.read_events("clicks", ["u1"], T0 + 6, T0 + 99) == [[]]
    assert store.read_events("clicks", ["u1"], T0 + 4, T0 + 2) == [[]]  # since > until
    # A later call adds to the log.
    store.append_events("clicks", [W("u1", T0 + 6, b"6")], DAY)
    assert [e.event_time_us - T0 for e in _all(store, "clicks", "u1")[0]] == [1, 2, 3, 4, 5, 6]


def test_bounds_beyond_the_event_time_range_read_everything(store: OnlineStore) -> None:
    store.append_events("g", [W("k", -(2**53) + 1, b"min"), W("k", 2**53 - 1, b"max")], FOREVER)
    assert store.read_events("g", ["k"], -(2**64), 2**64) == [
        [R(-(2**53) + 1, b"min"), R(2**53 - 1, b"max")]
    ]


def test_the_same_event_time_again_replaces_the_event(store: OnlineStore) -> None:
    store.append_events("g", [W("k", T0, b"first"), W("k", T0 + 1, b"other")], DAY)
    store.append_events("g", [W("k", T0, b"second")], DAY)
    assert _all(store, "g", "k") == [[R(T0, b"second"), R(T0 + 1, b"other")]]
    # Twice in one call: the later one wins.
    store.append_events("g", [W("k", T0, b"a"), W("k", T0, b"b")], DAY)
    assert _all(store, "g", "k") == [[R(T0, b"b"), R(T0 + 1, b"other")]]
    # Replacing an older event than the latest (within the horizon) works too.
    store.append_events("g", [W("k", T0, b"corrected")], DAY)
    assert _all(store, "g", "k") == [[R(T0, b"corrected"), R(T0 + 1, b"other")]]


def test_pruning_is_relative_to_the_keys_latest_event(store: OnlineStore) -> None:
    latest = T0 + 10 * DAY
    events = [W("k", latest - n * DAY, b"%d" % n) for n in range(10)]
    # Horizon 7 days: events 0..7 days before the latest stay (the boundary included).
    store.append_events("g", events, 7 * DAY)
    kept = _all(store, "g", "k")[0]
    assert [(latest - e.event_time_us) // DAY for e in kept] == [7, 6, 5, 4, 3, 2, 1, 0]
    # A late event older than latest - horizon is dropped at once ...
    store.append_events("g", [W("k", latest - 7 * DAY - 1, b"late")], 7 * DAY)
    assert [(latest - e.event_time_us) // DAY for e in _all(store, "g", "k")[0]] == [
        7,
        6,
        5,
        4,
        3,
        2,
        1,
        0,
    ]
    # ... whereas one within the horizon is kept, in time order.
    store.append_events("g", [W("k", latest - 7 * DAY + 1, b"in")], 7 * DAY)
    assert _all(store, "g", "k")[0][:2] == [
        R(latest - 7 * DAY, b"7"),
        R(latest - 7 * DAY + 1, b"in"),
    ]
    # A newer event moves the cutoff: everything before new - horizon goes.
    newer = latest + 3 * DAY
    store.append_events("g", [W("k", newer, b"new")], 7 * DAY)
    assert [newer - e.event_time_us for e in _all(store, "g", "k")[0]] == [
        n * DAY for n in (7, 6, 5, 4, 3, 0)
    ]


def test_a_call_is_pruned_by_its_own_newest_event(store: OnlineStore) -> None:
    # Within one call, the oldest events fall outside the newest one's horizon.
    events = [W("k", T0 + n * HOUR, b"%d" % n) for n in range(48)]
    store.append_events("g", events, 24 * HOUR)
    assert [e.payload for e in _all(store, "g", "k")[0]] == [b"%d" % n for n in range(23, 48)]
    # A replacement of an event outside the horizon is dropped as well: it cannot revive it.
    store.append_events("g", [W("k", T0, b"zombie")], 24 * HOUR)
    assert _all(store, "g", "k")[0][0] == R(T0 + 23 * HOUR, b"23")


def test_zero_and_huge_horizons(store: OnlineStore) -> None:
    store.append_events("g", [W("k", T0, b"a"), W("k", T0 + 1, b"b")], 0)
    assert _all(store, "g", "k") == [[R(T0 + 1, b"b")]]
    store.append_events("g", [W("k", T0 + 1, b"c")], 0)  # same time: replaced
    assert _all(store, "g", "k") == [[R(T0 + 1, b"c")]]
    far = [W("j", -(2**53) + 1, b"oldest"), W("j", 2**53 - 1, b"newest")]
    store.append_events("g", far, 2**80)
    assert _all(store, "g", "j") == [[R(-(2**53) + 1, b"oldest"), R(2**53 - 1, b"newest")]]
    store.append_events("g", [W("i", T0, b"x")], 2**54 - 2)  # cut to the cap: nothing goes
    assert _all(store, "g", "i") == [[R(T0, b"x")]]


def test_keys_and_groups_are_independent(store: OnlineStore) -> None:
    store.append_events("g", [W("a", T0, b"a0"), W("b", T0, b"b0")], HOUR)
    store.append_events("h", [W("a", T0, b"h-a0")], HOUR)
    # A's new latest event prunes only A's log, in this group only.
    store.append_events("g", [W("a", T0 + DAY, b"a1")], HOUR)
    assert _all(store, "g", "a", "b") == [[R(T0 + DAY, b"a1")], [R(T0, b"b0")]]
    assert _all(store, "h", "a") == [[R(T0, b"h-a0")]]
    # Events and records are separate: neither write touches the other.
    store.write("g", [W("a", T0 + 2 * DAY, b"record")])
    assert store.read({"g": ["a", "b"]})["g"] == [R(T0 + 2 * DAY, b"record"), None]
    assert _all(store, "g", "a") == [[R(T0 + DAY, b"a1")]]
    assert store.count("g") == 1


def test_unknown_keys_read_empty_in_the_order_asked(store: OnlineStore) -> None:
    store.append_events("g", [W("b", T0, b"B"), W("d", T0 + 1, b"D")], DAY)
    assert _all(store, "g", "a", "b", "c", "d", "b") == [
        [],
        [R(T0, b"B")],
        [],
        [R(T0 + 1, b"D")],
        [R(T0, b"B")],
    ]
    assert _all(store, "never-written", "a") == [[]]
    assert store.read_events("g", [], 0, 1) == []


def test_many_keys_in_one_call_keep_their_order(store: OnlineStore) -> None:
    # More keys than one SQL statement may bind, and more events than one script call.
    keys = [f"k{i}" for i in range(1_300)]
    events = [W(k, T0 + j, f"{k}/{j}".encode()) for k in keys[::2] for j in range(3)]
    store.append_events("g", events, DAY)
    asked = list(reversed(keys))
    got = store.read_events("g", asked, T0 + 1, T0 + 2)
    assert got == [
        [R(T0 + 1, f"{k}/1".encode()), R(T0 + 2, f"{k}/2".encode())] if int(k[1:]) % 2 == 0 else []
        for k in asked
    ]


def test_one_key_with_more_events_than_a_batch(store: OnlineStore) -> None:
    events = [W("k", T0 + n, b"%d" % n) for n in range(1_700)]
    store.append_events("g", events, 999)
    assert [e.event_time_us - T0 for e in _all(store, "g", "k")[0]] == list(range(700, 1_700))


def test_delete_events_removes_only_those_keys_events(store: OnlineStore) -> None:
    store.append_events("g", [W("a", T0, b"a0"), W("a", T0 + 1, b"a1"), W("b", T0, b"b")], DAY)
    store.append_events("other", [W("a", T0, b"other")], DAY)
    store.write("g", [W("a", T0, b"record")])
    assert store.delete_events("g", ["a", "missing", "a"]) == 2
    assert _all(store, "g", "a", "b") == [[], [R(T0, b"b")]]
    assert _all(store, "other", "a") == [[R(T0, b"other")]]
    assert store.read({"g": ["a"]})["g"] == [R(T0, b"record")]  # the record stays
    assert store.delete_events("g", ["a"]) == 0
    assert store.delete_events("g", []) == 0
    # A deleted log starts afresh: an old event is accepted again.
    store.append_events("g", [W("a", 1, b"again")], DAY)


def test_deleting_records_deletes_their_events(store: OnlineStore) -> None:
    store.write("g", [W("a", T0, b"A"), W("b", T0, b"B")])
    store.append_events("g", [W("a", T0, b"a"), W("b", T0, b"b"), W("c", T0, b"c")], DAY)
    # Counts records only; "c" has events but no record.
    assert store.delete("g", ["a", "c"]) == 1
    assert store.read({"g": ["a", "b"]})["g"] == [None, R(T0, b"B")]
    assert _all(store, "g", "a", "b", "c") == [[], [R(T0, b"b")], []]


def test_drop_group_removes_its_events_only(store: OnlineStore) -> None:
    store.append_events(
        "doomed", [W(f"k{i}", T0 + j, b"x") for i in range(25) for j in range(2)], DAY
    )
    store.write("doomed", [W("k1", T0, b"record")])
    store.append_events("kept", [W("k1", T0, b"kept")], DAY)
    store.append_events("doomed-not", [W("k1", T0, b"prefix-alike")], DAY)
    store.drop_group("doomed")
    assert store.count("doomed") == 0
    assert _all(store, "doomed", "k0", "k1", "k24") == [[], [], []]
    assert _all(store, "kept", "k1") == [[R(T0, b"kept")]]
    assert _all(store, "doomed-not", "k1") == [[R(T0, b"prefix-alike")]]
    store.drop_group("never-written")


@pytest.mark.parametrize(
    "payload",
    [b"", b"|", b"1|2|3", b"\x00tail", bytes(range(256)), os.urandom(64 * 1024)],
    ids=["empty", "bar", "bars", "nul", "all-bytes", "64KiB"],
)
def test_binary_payloads_round_trip_exactly(store: OnlineStore, payload: bytes) -> None:
    store.append_events("g", [W("k", T0, payload), W("k", T0 + 1, payload[::-1])], DAY)
    got = _all(store, "g", "k")[0]
    assert got == [R(T0, payload), R(T0 + 1, payload[::-1])]
    assert all(type(e.payload) is bytes for e in got)


def test_keys_may_hold_any_text(store: OnlineStore) -> None:
    keys = ["", "a:b", "a:b:c", "*", "[x]", "ünï\u2603", "with space", "\\", "#ev:x"]
    store.append_events("g", [W(k, T0 + i, k.encode()) for i, k in enumerate(keys)], DAY)
    assert _all(store, "g", *keys) == [[R(T0 + i, k.encode())] for i, k in enumerate(keys)]
    store.drop_group("g")
    assert _all(store, "g", *keys) == [[] for _ in keys]


def test_empty_calls(store: OnlineStore) -> None:
    store.append_events("g", [], DAY)
    assert store.delete_events("g", []) == 0
    assert store.read_events("g", [], T0, T0) == []


def test_invalid_input_is_refused_and_nothing_written(store: OnlineStore) -> None:
    for bad_time in (2**53, -(2**53), 2**63):
        with pytest.raises(InvalidInput) as caught:
            store.append_events("g", [W("k", T0, b"ok"), W("k", bad_time, b"x")], DAY)
        assert caught.value.field == "event_time"
    with pytest.raises(InvalidInput) as caught:
        store.append_events("g", [W("k", T0, b"x")], -1)
    assert caught.value.field == "horizon_us"
    for call in (
        lambda: store.append_events("Bad:Group", [W("k", T0, b"x")], DAY),
        lambda: store.read_events("a:b", ["k"], 0, 1),
        lambda: store.delete_events("a#b", ["k"]),
    ):
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == "group"
    assert _all(store, "g", "k") == [[]]


def test_workspaces_keep_their_event_logs_apart(store: OnlineStore) -> None:
    default = ScopedOnlineStore(store, "default")
    fraud = ScopedOnlineStore(store, "fraud")
    default.append_events("churn", [W("k", T0, b"default")], DAY)
    fraud.append_events("churn", [W("k", T0, b"fraud"), W("k", T0 + 1, b"f1")], DAY)
    assert default.read_events("churn", ["k"], T0, T0 + 1) == [[R(T0, b"default")]]
    assert fraud.read_events("churn", ["k"], T0, T0 + 1) == [[R(T0, b"fraud"), R(T0 + 1, b"f1")]]
    # The shared store holds them under the workspace's group name.
    assert _all(store, "fraud/churn", "k") == [[R(T0, b"fraud"), R(T0 + 1, b"f1")]]
    assert _all(store, "churn", "k") == [[R(T0, b"default")]]
    assert fraud.delete_events("churn", ["k"]) == 2
    assert default.read_events("churn", ["k"], T0, T0) == [[R(T0, b"default")]]
    fraud.append_events("churn", [W("k", T0, b"again")], DAY)
    fraud.drop_group("churn")
    assert _all(store, "fraud/churn", "k") == [[]]
    assert _all(store, "churn", "k") == [[R(T0, b"default")]]
    fraud.append_events("churn", [W("k", T0, b"again")], DAY)
    default.delete("churn", ["k"])
    assert _all(store, "churn", "k") == [[]]
    assert _all(store, "fraud/churn", "k") == [[R(T0, b"again")]]


def test_events_outlive_the_store_object(target: Target, store: OnlineStore) -> None:
    store.append_events("g", [W("k", T0, b"kept")], DAY)
    store.close()
    again = target.open()
    try:
        assert _all(again, "g", "k") == [[R(T0, b"kept")]]
    finally:
        again.close()


# ----------------------------------------------------------------- property-based

_EVENT = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 20), st.binary(max_size=4))


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    calls=st.lists(st.tuples(st.lists(_EVENT, max_size=6), st.integers(0, 8)), max_size=8),
)
def test_the_log_matches_a_model(
    store: OnlineStore, calls: list[tuple[list[tuple[str, int, bytes]], int]]
) -> None:
    """Replace by (key, time), then prune each touched key below latest - horizon."""
    group = f"p{uuid.uuid4().hex[:12]}"  # the store outlives examples: a fresh group each
    model: dict[str, dict[int, bytes]] = {"a": {}, "b": {}}
    for events, horizon in calls:
        for key, event_time, payload in events:
            model[key][event_time] = payload
        for key in {key for key, _, _ in events}:
            cutoff = max(model[key]) - horizon
            model[key] = {t: p for t, p in model[key].items() if t >= cutoff}
        assert store.append_events(group, [W(*e) for e in events], horizon) is None
        assert _all(store, group, "a", "b") == [
            [R(t, p) for t, p in sorted(model[key].items())] for key in ("a", "b")
        ]


# ------------------------------------------------------------ multi-process races

# argv: kind location prefix start writer writers count horizon signals_dir; it says it is
# ready with a file in signals_dir and starts on "go" from its standard input
# Appends event times start + writer, start + writer + writers, ... (payload "<t>:1"),
# each call also replacing the writer's previous event (payload "<t>:2"), all to one key.
_APPENDER = """
import os, sys
from slipway.features.online.base import OnlineRecordWrite as W
from slipway.features.online.redis import RedisOnlineStore
from slipway.features.online.sqlite import SQLiteOnlineStore

kind, location, prefix = sys.argv[1:4]
start, writer, writers, count, horizon = (int(a) for a in sys.argv[4:9])
signals = sys.argv[9]
if kind == "sqlite":
    store = SQLiteOnlineStore(location)
else:
    store = RedisOnlineStore(location, prefix=prefix)
store.ping()
open(os.path.join(signals, f"ready-{writer}"), "w").close()
if sys.stdin.readline().strip() != "go":  # blocks until the test starts both writers
    sys.exit("no go")
previous = None
for i in range(count):
    t = start + i * writers + writer
    batch = [W("k", t, f"{t}:1".encode())]
    if previous is not None:
        batch.append(W("k", previous, f"{previous}:2".encode()))
    store.append_events("race", batch, horizon)
    previous = t
store.close()
"""


@pytest.mark.parametrize("horizon", [FOREVER, 40], ids=["union", "pruned"])
def test_concurrent_appends_from_two_processes(
    target: Target, store: OnlineStore, tmp_path: Path, horizon: int
) -> None:
    writers, count = 2, 300
    signals = tmp_path / "signals"
    signals.mkdir()
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-c", _APPENDER, *target.argv()),
                *map(str, (T0, w, writers, count, horizon, signals)),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    done = threading.Event()
    failures: list[BaseException] = []
    reads = 0

    def watch() -> None:
        # Every read is one consistent log: ordered, pruned below its own latest event,
        # and a replacement once seen is never undone.
        nonlocal reads
        replaced: set[int] = set()
        try:
            while not done.is_set():
                [events] = _all(store, "race", "k")
                reads += 1
                times = [e.event_time_us for e in events]
                assert times == sorted(set(times))
                if times:
                    assert times[0] >= times[-1] - horizon
                for t, payload in events:
                    assert payload in (f"{t}:1".encode(), f"{t}:2".encode())
                    if payload.endswith(b":2"):
                        replaced.add(t)
                    else:
                        assert t not in replaced, f"the replacement of {t} was lost"
        except BaseException as exc:
            failures.append(exc)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        eventually(
            lambda: all((signals / f"ready-{w}").exists() for w in range(writers)),
            what="both appenders ready",
            timeout=60,
            interval=0.005,
        )
        for proc in procs:  # as close together as two writes to two pipes get
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        done.set()
        watcher.join()
    assert not failures, failures
    assert reads > 0

    last = {w: T0 + (count - 1) * writers + w for w in range(writers)}
    union = {
        T0 + i * writers + w: f"{T0 + i * writers + w}:{1 if i == count - 1 else 2}".encode()
        for w in range(writers)
        for i in range(count)
    }
    newest = max(last.values())
    expected = [R(t, p) for t, p in sorted(union.items()) if t >= newest - horizon]
    assert _all(store, "race", "k") == [expected]
    if horizon == FOREVER:
        assert len(expected) == writers * count


# ------------------------------------------------------------ backend-specific edges


@pytest.mark.redis
def test_redis_append_recovers_when_the_server_forgets_the_script() -> None:
    url = service_url("redis")
    store = RedisOnlineStore(url, prefix=f"test-{uuid.uuid4().hex}")
    try:
        store.append_events("g", [W("k", 1, b"a")], DAY)
        redis.Redis.from_url(url).script_flush()
        store.append_events("g", [W("k", 2, b"b"), W("k", 1, b"a2")], DAY)
        assert _all(store, "g", "k") == [[R(1, b"a2"), R(2, b"b")]]
        # Many script calls: every batch runs, in order.
        redis.Redis.from_url(url).script_flush()
        many = [W(f"m{i % 700}", i, b"%d" % i) for i in range(1_700)]
        store.append_events("g", many, DAY)
        assert _all(store, "g", "m1") == [[R(1, b"1"), R(701, b"701"), R(1_401, b"1401")]]
    finally:
        store.drop_group("g")
        store.close()


@pytest.mark.redis
def test_redis_event_logs_live_apart_from_records() -> None:
    url = service_url("redis")
    prefix = f"test-{uuid.uuid4().hex}"
    store = RedisOnlineStore(url, prefix=prefix)
    admin = redis.Redis.from_url(url)
    try:
        store.write("g", [W("k", T0, b"record")])
        store.append_events("g", [W("k", T0, b"event")], DAY)
        assert admin.type(f"{prefix}:g:k") == b"string"
        assert admin.type(f"{prefix}#ev:g:k") == b"zset"
        assert admin.zrange(f"{prefix}#ev:g:k", 0, -1, withscores=True) == [
            (b"%d|event" % T0, float(T0))
        ]
        assert store.count("g") == 1  # counts records, not logs
        store.drop_group("g")
        assert list(admin.scan_iter(match=f"{prefix}*")) == []
    finally:
        admin.close()
        store.close()


@pytest.mark.redis
def test_redis_event_reads_use_the_threads_read_connection() -> None:
    url = service_url("redis")
    name = f"events-{uuid.uuid4().hex[:12]}"
    store = RedisOnlineStore(f"{url}?client_name={name}", prefix=f"test-{name}")
    admin = redis.Redis.from_url(url)

    def mine() -> list[dict[str, str]]:
        clients = admin.client_list()
        return [c for c in clients if c.get("name") == name]

    try:
        store.write("g", [W("k", T0, b"record")])
        store.append_events("g", [W("k", T0, b"event")], DAY)
        assert store.read({"g": ["k"]})["g"] == [R(T0, b"record")]
        [reader] = [c for c in mine() if c["cmd"] == "mget"]
        for keys in (["k"], ["k", "j"]):  # one command, and a pipeline of them
            assert store.read_events("g", keys, T0, T0)[0] == [R(T0, b"event")]
            [again] = [c for c in mine() if c["cmd"] == "zrangebyscore"]
            assert again["id"] == reader["id"]
    finally:
        store.drop_group("g")
        store.close()
        admin.close()


# ------------------------------------------------------------------ measurement


def test_read_events_latency_is_printed(
    target: Target, store: OnlineStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a pass/fail check: prints p50/p99 of reading one key's 50 events (a 7-day
    window over an event every ~3 hours), the read a window aggregation makes online."""
    events = [W("u", T0 + n * 3 * HOUR, os.urandom(40)) for n in range(50)]
    store.append_events("bench", events, 7 * DAY)
    until = T0 + 49 * 3 * HOUR
    assert len(store.read_events("bench", ["u"], until - 7 * DAY, until)[0]) == 50
    samples = []
    for _ in range(2_000):
        started = time.perf_counter_ns()
        store.read_events("bench", ["u"], until - 7 * DAY, until)
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    p50, p99 = samples[len(samples) // 2] / 1e3, samples[int(len(samples) * 0.99)] / 1e3
    with capsys.disabled():
        print(
            f"\nread_events, 1 key x 50 events, {target.kind}: p50 {p50:.1f} µs, p99 {p99:.1f} µs"
        )
