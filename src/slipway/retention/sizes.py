"""Bytes under the artifact root, per file, read straight from its filesystem.

The artifact store lists keys but not their sizes; retention reports the bytes it frees
and ``slipway status`` the bytes each folder holds, so both list the root once through
fsspec with details (one ``find`` — a walk locally, paged listings on an object store).
The store's temp folder is left out, as the store itself leaves it out of listings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, cast

import fsspec.core
from fsspec.implementations.local import LocalFileSystem

from slipway.core.artifacts import TMP_DIR


class RootSizes:
    """Sizes of the files under one artifact root URI."""

    def __init__(self, root: str) -> None:
        fs, path = fsspec.core.url_to_fs(root, use_listings_cache=False)
        self._fs: Any = fs
        path = cast(str, path)
        local = isinstance(fs, LocalFileSystem)
        self._base = (os.path.realpath(path) if local else path).rstrip("/")

    def files(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """(key, bytes) of every file under ``prefix`` (all files for ``""``)."""
        base = f"{self._base}/{prefix}" if prefix else self._base
        try:
            found = self._fs.find(base, detail=True)
        except FileNotFoundError:
            return
        start = len(self._base) + 1
        for path, info in found.items():
            key = cast(str, path)[start:]
            if key and key.split("/")[0] != TMP_DIR and info.get("type") != "directory":
                yield key, int(info.get("size") or 0)

    def folders(self) -> list[str]:
        """The names of the folders directly under the root."""
        try:
            found = self._fs.ls(self._base, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            cast(str, info["name"]).rstrip("/").rsplit("/", 1)[-1]
            for info in found
            if info.get("type") == "directory"
        )

    def total(self, prefix: str) -> int:
        return sum(size for _, size in self.files(prefix))
