"""The contract every online store backend implements.

Backends store opaque payloads: the feature store encodes a record's feature values to
bytes with the group's schema and decodes them on the way out, so a backend only has to
be fast and correct about three things — event-time ordering, atomicity per key, and
reading many keys of many groups in one round trip.

Besides the latest record per key, a store keeps an *event log* per key: the group's
recent events, which feature views aggregate over time windows at read time. Only the
events a window can still reach are kept: a window read at or after a key's latest event
never looks further back than the longest window (the *horizon*), so events older than
the key's latest event minus the horizon are dropped as new ones arrive. Records and
events are separate: writing one never touches the other.

Keys are the feature store's canonical encoding of a record identifier (a string).
Event times are integers: microseconds since the Unix epoch, UTC, within ±(2**53 - 1)
(every backend compares them exactly there; others are refused with ``InvalidInput``
naming ``event_time``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

from slipway.core.errors import InvalidInput


class StoredRecord(NamedTuple):
    event_time_us: int
    payload: bytes


class OnlineRecordWrite(NamedTuple):
    key: str
    event_time_us: int
    payload: bytes


class OnlineStore(Protocol):
    """Latest-record-per-key storage, ordered by event time, with a bounded log of each
    key's recent events."""

    def write(self, group: str, records: Sequence[OnlineRecordWrite]) -> int:
        """Upsert ``records`` into ``group``; return how many were applied.

        A record is applied only when its event time is greater than or equal to the
        stored record's (ties: the incoming record wins), so an older event never
        overwrites a newer one, whatever order writers run in. The check and the write are
        atomic per key against every other writer, in every process. Records for the same
        key within one call are applied in order.
        """
        ...

    def read(self, requests: Mapping[str, Sequence[str]]) -> dict[str, list[StoredRecord | None]]:
        """For each group, the stored record of each key (``None`` when absent), in the
        order of the keys asked for. All groups are read in one round trip."""
        ...

    def delete(self, group: str, keys: Sequence[str]) -> int:
        """Remove ``keys`` from ``group``, their records and their events; return how
        many records existed."""
        ...

    def drop_group(self, group: str) -> None:
        """Remove every record and every event of ``group`` (when the group is deleted)."""
        ...

    def append_events(
        self, group: str, events: Sequence[OnlineRecordWrite], horizon_us: int
    ) -> None:
        """Add ``events`` to their keys' event logs in ``group``, then prune them.

        An event is identified by its (key, event time): an event whose pair is already
        stored replaces the stored payload (the later write wins, as a re-ingested record
        does), and the same pair twice in one call keeps the later one. Then, for each key
        the call touched, every event with ``event_time_us < latest - horizon_us`` is
        dropped, ``latest`` being the key's newest stored event time after the call's
        events are in. So an event arriving late, older than its key's latest minus the
        horizon, is not stored at all; ``horizon_us = 0`` keeps only the latest time.

        Upsert and prune are atomic per key against every other writer, in every
        process: a reader never sees a key's log half-written or not yet pruned, and
        concurrent appends to one key end with the union of their events.
        ``horizon_us`` below zero is ``InvalidInput`` (``horizon_us``); an event time
        out of range is ``InvalidInput`` (``event_time``) and nothing of the call is
        written. Nothing is returned: counting what a call kept cost SQLite a look-up of
        every key's newest event, a third of an append (the log's state is what
        :meth:`read_events` shows).
        """
        ...

    def read_events(
        self, group: str, keys: Sequence[str], since_us: int, until_us: int
    ) -> list[list[StoredRecord]]:
        """For each of ``keys`` (in the order asked, repeats included), its events of
        ``group`` with ``since_us <= event_time_us <= until_us``, oldest first; an empty
        list for a key without any (and for every key when ``since_us > until_us``).
        All keys are read in one round trip. Each key's log is read atomically (never
        half-appended or half-pruned); different keys may be read moments apart."""
        ...

    def delete_events(self, group: str, keys: Sequence[str]) -> int:
        """Remove every event of ``keys`` in ``group`` (their records stay); return how
        many events were removed."""
        ...

    def count(self, group: str) -> int:
        """How many keys ``group`` holds (for statistics and tests)."""
        ...

    def ping(self) -> None:
        """Raise ``BackendUnavailable`` unless the store answers."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


# The event times every backend accepts: Redis compares them as doubles, exact to 2**53.
MAX_EVENT_TIME_US = 2**53 - 1
# A horizon this long prunes nothing (every event time is within ±MAX_EVENT_TIME_US);
# longer ones are cut to it, so ``latest - horizon`` stays a 64-bit integer (and within
# what Lua formats as an integer).
HORIZON_CAP = 2 * MAX_EVENT_TIME_US + 1


def check_event_times(events: Sequence[OnlineRecordWrite]) -> None:
    """Refuse an event time outside the range every backend stores exactly."""
    for event in events:
        if not -MAX_EVENT_TIME_US <= event.event_time_us <= MAX_EVENT_TIME_US:
            raise InvalidInput(
                f"event time {event.event_time_us} µs is out of range", field="event_time"
            )


def checked_horizon(horizon_us: int) -> int:
    """An event log's horizon: not negative, and at most :data:`HORIZON_CAP`."""
    if horizon_us < 0:
        raise InvalidInput(
            f"event horizon {horizon_us} µs must not be negative", field="horizon_us"
        )
    return min(horizon_us, HORIZON_CAP)
