"""Where a remote caller may point the server: the data roots (batch inputs and
outputs, baseline sources) and the code a submitted job may import, with the canonical
spelling of a root both share.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from slipway.core.settings.base import Area, comma_list

# Object stores a data root may name; the aliases fsspec accepts for one store are one.
_STORE_SCHEMES = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "abfs": "abfs"}


def _data_root(entry: str) -> str:
    """One data root in its canonical spelling: an absolute local path without ``.`` or
    ``..`` parts or a trailing slash, or ``scheme://bucket[/key/prefix]`` (lower-case
    scheme, its canonical alias). Anything else is refused rather than never matched."""
    text = entry.strip()
    if not text or "\x00" in text or "::" in text or any(c in text for c in "*?["):
        raise ValueError(f"{entry!r} is not a local folder or an object-store prefix")
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() != "file":
        canonical = _STORE_SCHEMES.get(scheme.lower())
        parts = [p for p in rest.split("/") if p not in ("", ".")]
        if canonical is None or not parts or ".." in parts:
            raise ValueError(
                f"{entry!r}: an object-store root is {'|'.join(sorted(set(_STORE_SCHEMES)))}"
                "://bucket[/prefix]"
            )
        return f"{canonical}://{'/'.join(parts)}"
    path = os.path.expanduser(rest if sep else text)
    if not os.path.isabs(path):
        raise ValueError(f"{entry!r}: a local data root must be an absolute path")
    return os.path.normpath(path).replace("//", "/")


class DataSettings(Area):
    """Where a remote caller (a REST client with an editor's token) may point the server
    at data: batch job inputs and outputs, baseline sources. Without these roots an
    editor's token could make the server read ``/etc/...`` or write anywhere it can — an
    editor would be a shell (api/paths.py, core/roots.py). The artifact root is always
    allowed; in-process callers (the embedded SDK, the CLI without ``--url``) are the
    machine's own users and are not confined."""

    # NoDecode: a plain comma-separated value in the environment is not JSON.
    allowed_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="folders (absolute paths) and object-store prefixes (s3://bucket/prefix)"
        " remote callers may read and write data under, besides the artifact root."
        " Comma-separated in the environment",
    )

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("allowed_roots")
    @classmethod
    def _normalized(cls, value: list[str]) -> list[str]:
        return [_data_root(entry) for entry in value]


class CodeSettings(Area):
    """Where the code a remote caller submits (training jobs, tuning trials, pipeline
    steps) may come from. A token allowed to submit a job could otherwise make the workers
    import code from any folder the server can read: a code bundle the caller uploaded
    (``POST /api/v1/code-bundles``, kept by digest in the artifact store) is always
    allowed, host folders only under ``allowed_roots``, and an entry point outside the
    job's own code only from a module under ``allowed_modules`` (runtime/bundles.py,
    api/code.py). In-process callers are the machine's own users and are not confined."""

    allowed_roots: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host folders (absolute paths) remote callers may name as a job's"
        " source_dir or code_paths. Comma-separated in the environment",
    )
    allowed_modules: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["slipway.steps"],
        description="modules (and their submodules) a remote job may name as its entry point"
        " without shipping them: the built-in steps, and packages the admin installed on"
        " the workers. Comma-separated in the environment",
    )
    max_bundle_files: int = Field(
        default=10_000, ge=1, description="files one code bundle may hold"
    )
    max_bundle_unpacked_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1024,
        description="bytes one code bundle may unpack to (its upload is bounded by"
        " server.max_body_bytes)",
    )

    @field_validator("allowed_roots", "allowed_modules", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return comma_list(value)

    @field_validator("allowed_roots")
    @classmethod
    def _local_folders(cls, value: list[str]) -> list[str]:
        roots = [_data_root(entry) for entry in value]
        if any("://" in root for root in roots):
            raise ValueError("code roots are local folders (workers import from them)")
        return roots

    @field_validator("allowed_modules")
    @classmethod
    def _module_names(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not all(part.isidentifier() for part in entry.split(".")):
                raise ValueError(f"{entry!r} is not a dotted module name")
        return value
