"""A workspace's view of the shared online store.

One online store (one Redis, one SQLite file) holds every workspace's records and
events: a group ``churn`` of workspace ``fraud`` is the store's group ``fraud/churn``
(:func:`~slipway.core.workspace.scoped_name`), and the default workspace's groups keep
their bare names, so a store written before workspaces reads the same. The feature store
of a workspace talks to this view and cannot name another workspace's groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slipway.core.workspace import scoped_name
from slipway.features.online.base import OnlineRecordWrite, OnlineStore, StoredRecord


class ScopedOnlineStore:
    """``inner`` with every group name qualified by ``workspace``."""

    def __init__(self, inner: OnlineStore, workspace: str) -> None:
        self.inner = inner
        self.workspace = workspace

    def _group(self, group: str) -> str:
        return scoped_name(self.workspace, group)

    def write(self, group: str, records: Sequence[OnlineRecordWrite]) -> int:
        return self.inner.write(self._group(group), records)

    def read(self, requests: Mapping[str, Sequence[str]]) -> dict[str, list[StoredRecord | None]]:
        answers = self.inner.read({self._group(g): keys for g, keys in requests.items()})
        return {group: answers[self._group(group)] for group in requests}

    def delete(self, group: str, keys: Sequence[str]) -> int:
        return self.inner.delete(self._group(group), keys)

    def drop_group(self, group: str) -> None:
        self.inner.drop_group(self._group(group))

    def append_events(
        self, group: str, events: Sequence[OnlineRecordWrite], horizon_us: int
    ) -> None:
        self.inner.append_events(self._group(group), events, horizon_us)

    def read_events(
        self, group: str, keys: Sequence[str], since_us: int, until_us: int
    ) -> list[list[StoredRecord]]:
        return self.inner.read_events(self._group(group), keys, since_us, until_us)

    def delete_events(self, group: str, keys: Sequence[str]) -> int:
        return self.inner.delete_events(self._group(group), keys)

    def count(self, group: str) -> int:
        return self.inner.count(self._group(group))

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        """The shared store stays open: the platform that opened it closes it."""
