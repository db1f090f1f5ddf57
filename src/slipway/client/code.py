"""Shipping the caller's code to the platform: ``client.code``.

A remote job cannot name a folder on the caller's machine — the workers would look for it
on theirs, and the control plane accepts host folders only under ``code.allowed_roots``.
So the client packs the folder (:func:`slipway.runtime.bundles.pack`), uploads it to
``POST /code-bundles`` (once per content: the same files give the same digest) and puts
the bundle's reference (``bundle:sha256:<hex>``) in the spec in its place. Training jobs
ship their whole ``source_dir``, as SageMaker uploads it; tuning jobs and pipelines ship,
from each of their ``code_paths``, the top-level packages their entry points import.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from pathlib import Path

from slipway.client.transport import Transport
from slipway.runtime import bundles
from slipway.runtime.bundles import CodeBundle

# Importable on every worker already, never shipped: the platform itself.
_INSTALLED = frozenset({"slipway"})


class RemoteCode:
    """``client.code``: upload code bundles and read what one holds."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def upload(
        self, folder: str | os.PathLike[str], *, only: Collection[str] | None = None
    ) -> CodeBundle:
        """Pack ``folder`` (``only`` these top-level names, if given) and store it."""
        data = bundles.pack(folder, only=only)
        response = self.transport.request(
            "POST",
            "/code-bundles",
            content=[data],
            headers={"content-type": bundles.MEDIA_TYPE},
            repeatable=True,  # content-addressed: sending it twice stores it once
        )
        return CodeBundle.model_validate(response.json())

    def get(self, ref: str) -> CodeBundle:
        digest = bundles.digest_of(ref, field="ref")
        return CodeBundle.model_validate(
            self.transport.request("GET", f"/code-bundles/{digest}").json()
        )

    def ship_source_dir(self, source_dir: str | None) -> str | None:
        """A training job's ``source_dir`` as the server will take it: a folder on this
        machine is uploaded whole; a bundle reference or a path this machine does not
        have (a folder the admin declared on the workers) is sent as it is."""
        if source_dir is None or bundles.is_bundle(source_dir):
            return source_dir
        folder = Path(source_dir).expanduser()
        if not folder.is_dir():
            return source_dir
        return self.upload(folder).uri

    def ship_code_paths(self, paths: Iterable[str], targets: Iterable[str]) -> list[str]:
        """``code_paths`` as the server will take them: from each folder on this machine,
        the top-level packages or modules the ``targets`` (``module:attribute``) import
        from it, as one bundle; a folder they import nothing from is left out, and the
        platform's own package is never shipped (every worker has it)."""
        tops = {target.partition(":")[0].split(".")[0] for target in targets} - _INSTALLED
        shipped: list[str] = []
        for path in paths:
            folder = Path(path).expanduser()
            if bundles.is_bundle(path) or not folder.is_dir():
                shipped.append(path)
                continue
            names = {n for n in tops if (folder / n).is_dir() or (folder / f"{n}.py").is_file()}
            if names:
                shipped.append(self.upload(folder, only=names).uri)
        return shipped
