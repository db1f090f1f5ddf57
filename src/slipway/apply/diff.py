"""Field-by-field differences between two JSON-like values."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from slipway.apply.resources import FieldChange


def digest(values: Any) -> str:
    """sha256 of ``values`` as canonical JSON: the same spec, the same digest."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def changes(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """The leaves that differ between ``old`` and ``new``, by dotted path (``variants.0.
    weight``); a key present on one side only is one change of the whole value. A list
    of another length is one change of the whole list, unless its items are named (then
    per item, by position)."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            at = f"{path}.{key}" if path else str(key)
            if key not in old:
                found.append(FieldChange(path=at, old=None, new=new[key]))
            elif key not in new:
                found.append(FieldChange(path=at, old=old[key], new=None))
            else:
                found.extend(changes(old[key], new[key], at))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found.extend(changes(a, b, f"{path}.{index}" if path else str(index)))
        return found
    if old == new and type(old) is type(new):
        return []
    if old == new and isinstance(old, int | float) and isinstance(new, int | float):
        return []  # 1 and 1.0 are the same weight
    return [FieldChange(path=path or "spec", old=old, new=new)]
