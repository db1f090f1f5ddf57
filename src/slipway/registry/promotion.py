"""Promoting a model version from one Slipway to another (dev → stage → prod).

:func:`promote` takes two platforms — each the embedded platform in a workspace
(``Services.in_workspace(...)``) or a remote :class:`slipway.Client` — exports the version
from the source and imports it on the target (:mod:`slipway.registry.transfer` holds
both halves and every check). It works embedded → remote and remote → remote alike,
since both faces' registries have the same ``export_version`` and ``import_version``.
"""

from __future__ import annotations

from typing import Protocol

from slipway.registry.archive import ModelExport
from slipway.registry.models import ModelTampered
from slipway.registry.resources import ImportedVersion


class _Registry(Protocol):
    def export_version(self, name: str, ref: int | str) -> ModelExport: ...

    def import_version(
        self, name: str, data: bytes, *, sha256: str, actor: str
    ) -> ImportedVersion: ...


class Platform(Protocol):
    """What :func:`promote` needs of a platform: its registry."""

    @property
    def registry(self) -> _Registry: ...


def promote(
    source: Platform, target: Platform, name: str, version: int | str, *, actor: str
) -> ImportedVersion:
    """Copy version ``version`` (a number or an alias) of ``name`` from ``source`` to
    ``target``: the files (their digest checked on both sides), signature, metrics,
    lineage as references to the source, and approval history. It arrives
    PendingManualApproval unless the target's ``registry.promotion_status`` says
    otherwise; promoting the same version again answers the version it became
    (``created`` False). ``actor`` names the caller in process (a remote target records
    its token's holder)."""
    exported = source.registry.export_version(name, version)
    result = target.registry.import_version(
        name, exported.data, sha256=exported.sha256, actor=actor
    )
    if result.version.digest != exported.manifest.digest:
        raise ModelTampered(
            f"{name} version {exported.manifest.version} arrived with digest"
            f" {result.version.digest[:12]}…, not the source's {exported.manifest.digest[:12]}…",
            details={"expected": exported.manifest.digest, "actual": result.version.digest},
        )
    return result


__all__ = ["Platform", "promote"]
