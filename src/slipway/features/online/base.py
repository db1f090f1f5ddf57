"""The contract every online store backend implements.

Backends store opaque payloads: the feature store encodes a record's feature values to
bytes with the group's schema and decodes them on the way out, so a backend only has to
be fast and correct about three things — event-time ordering, atomicity per key, and
reading many keys of many groups in one round trip.

Keys are the feature store's canonical encoding of a record identifier (a string).
Event times are integers: microseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol


class StoredRecord(NamedTuple):
    event_time_us: int
    payload: bytes


class OnlineRecordWrite(NamedTuple):
    key: str
    event_time_us: int
    payload: bytes


class OnlineStore(Protocol):
    """Latest-record-per-key storage, ordered by event time."""

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
        """Remove ``keys`` from ``group``; return how many existed."""
        ...

    def drop_group(self, group: str) -> None:
        """Remove every record of ``group`` (when the group is deleted)."""
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
