"""Data roots: the folders and object-store prefixes a remote caller may point the server
at. Without them a token allowed to submit a batch job could make the server read any
file it can read (``/etc/...``) and write wherever it can write: an editor would be a
shell. :func:`confine` is the one check; the API applies it to every path a request
names (api/paths.py).

Local paths are compared after resolving symlinks (a link inside a root that points
outside is outside), component by component (``/data2`` is not under ``/data``). A glob
is judged by the folder holding its first wildcard, and the files it matches now are
resolved too. Object-store URIs must share the root's store, bucket and key components.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass

from slipway.core.errors import InvalidInput
from slipway.core.uris import check_uri

SETTING = "data.allowed_roots"
ENVIRONMENT = "SLIPWAY_DATA__ALLOWED_ROOTS"
# The aliases fsspec accepts for one store are one store.
_STORES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "abfs"}
_WILDCARDS = "*?["


@dataclass(frozen=True)
class _Place:
    """Where a URI points: a store (``""`` for local files) and path components."""

    store: str
    parts: tuple[str, ...]

    def under(self, root: _Place) -> bool:
        return self.store == root.store and self.parts[: len(root.parts)] == root.parts


def _fixed(path: str) -> tuple[str, bool]:
    """The part of ``path`` no wildcard can vary — up to the folder that holds the first
    wildcard — and whether it is a glob."""
    cut = min((i for i in (path.find(c) for c in _WILDCARDS) if i >= 0), default=-1)
    if cut < 0:
        return path, False
    return path[: path.rfind("/", 0, cut) + 1] or ".", True


def _local(path: str) -> _Place:
    real = os.path.realpath(path)
    return _Place("", tuple(p for p in real.split(os.sep) if p))


def _place(uri: str) -> tuple[_Place, list[_Place]] | None:
    """The place ``uri`` lies in and, for a local glob, the files it matches now; None for
    a local path that is not absolute. Relative paths, ``~`` and fsspec's ``file:/x`` or
    ``local:/x`` are resolved differently by different readers (against the server's
    working folder, the server's home, or the root): none has one meaning to check."""
    scheme, sep, rest = uri.partition("://")
    if sep and scheme.lower() != "file":
        store = _STORES.get(scheme.lower(), scheme.lower())
        fixed, _ = _fixed(rest)
        parts = tuple(p for p in fixed.split("/") if p not in ("", "."))
        return _Place(store, parts), []
    path = rest if sep else uri
    if not path.startswith("/"):
        return None
    fixed, is_glob = _fixed(path)
    matches = [_local(match) for match in glob.glob(path, recursive=True)] if is_glob else []
    return _local(fixed), matches


def _root(root: str) -> _Place:
    """A root's place. Roots come from the admin's settings, so a relative artifact root
    (``artifacts.root: ./artifacts``) means what it means to the server."""
    place = _place(root)
    if place is not None:
        return place[0]
    return _local(os.path.expanduser(root.removeprefix("file://")))


@dataclass(frozen=True)
class RootSetting:
    """The setting that declares a kind of roots, named in a refusal so an admin knows
    what to change."""

    what: str
    setting: str
    environment: str


DATA_ROOTS = RootSetting("data roots", SETTING, ENVIRONMENT)


def confine(
    uri: str, roots: Sequence[str], *, field: str, setting: RootSetting = DATA_ROOTS
) -> str:
    """``uri`` when it lies under one of ``roots``; :class:`InvalidInput` naming ``field``
    otherwise, with the roots allowed and the setting that adds one.

    Local paths must be absolute (or ``file:///...``). Chained fsspec URLs (``a::b``)
    are refused: the place they read is their last link, not where they seem to point."""
    check_uri(uri, field=field)
    allowed = [_root(root) for root in roots]
    found = None if "::" in uri else _place(uri)
    if found is not None:
        place, matches = found
        if any(place.under(root) for root in allowed) and all(
            any(match.under(root) for root in allowed) for match in matches
        ):
            return uri
    shown = ", ".join(roots) or "none"
    raise InvalidInput(
        f"{field}: {uri!r} is not an absolute path or URI under the {setting.what} this"
        f" server allows ({shown}); an admin can add one to the setting {setting.setting}"
        f" ({setting.environment})",
        field=field,
        details={"allowed_roots": list(roots), "setting": setting.setting},
    )


def keys_under(uri: str, root: str) -> list[str]:
    """Where ``uri`` lies below ``root``, as keys (``a/b``): its place and, for a local
    glob, each file it matches now; empty when it is not under ``root``. What a check of
    the root's partition (slipway.core.workspace.key_workspace) needs to see."""
    found = None if "::" in uri else _place(uri)
    if found is None:
        return []
    base = _root(root)
    place, matches = found
    return [
        "/".join(where.parts[len(base.parts) :]) for where in (place, *matches) if where.under(base)
    ]
