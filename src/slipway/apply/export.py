"""``slipway export``: a platform written as spec documents that plan as unchanged.

One file per kind (``endpoints.yaml``, ...) and a ``spec-set.yaml`` naming the set. Each
document holds the fields whose values differ from their defaults. What the platform
does not show cannot be exported: a webhook channel's URL path comes out as ``/***``
(write the real one into the file before applying it elsewhere), and batch jobs — records
of work done, not infrastructure — are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from slipway.apply.kinds import Platform, all_kinds
from slipway.core.errors import InvalidInput
from slipway.core.names import validate_name


def _file_name(kind: str) -> str:
    """``AlertRule`` → ``alert-rules.yaml``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower() + "s.yaml"


def export_documents(platform: Platform) -> dict[str, list[dict[str, Any]]]:
    """Every exported resource of ``platform`` as documents, per kind, by name."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in all_kinds().values():
        if not kind.exported:
            continue
        lives = kind.live_all(platform)
        documents = [
            {"kind": kind.name, "name": name, **kind.export(live)}
            for name, live in sorted(lives.items())
        ]
        if documents:
            out[kind.name] = documents
    return out


def export_to(platform: Platform, folder: Path, *, spec_set: str) -> list[Path]:
    """Write ``platform`` as a spec set named ``spec_set`` into ``folder`` (created; an
    existing file of the same name is replaced); the files written."""
    validate_name(spec_set, field="spec_set")
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{folder} is not a directory", field="folder")
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "spec-set.yaml"]
    written[0].write_text(yaml.safe_dump({"kind": "SpecSet", "name": spec_set}, sort_keys=False))
    for kind, documents in export_documents(platform).items():
        path = folder / _file_name(kind)
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        written.append(path)
    return written
