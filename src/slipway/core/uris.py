"""Paths and URIs a user may point Slipway at: local files and object stores, never
anything with ``..`` in it or a scheme that reaches elsewhere (``http``, ``ftp``...)."""

from __future__ import annotations

from pathlib import PurePosixPath

from slipway.core.errors import InvalidInput

# fsspec protocols jobs may read from and write to: local files and object stores.
SCHEMES = ("file", "s3", "s3a", "gs", "gcs", "az", "abfs", "memory")


def check_uri(value: str, *, field: str) -> str:
    """``value`` when it is a local path or an object-store URI; InvalidInput otherwise."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise InvalidInput(f"{field} must be a path or URI", field=field)
    scheme = value.split("://", 1)[0].lower() if "://" in value else "file"
    if scheme not in SCHEMES:
        raise InvalidInput(
            f"{field}: the scheme {scheme!r} is not one of {', '.join(SCHEMES)}", field=field
        )
    if ".." in PurePosixPath(value.split("://", 1)[-1]).parts:
        raise InvalidInput(f"{field} must not contain '..'", field=field)
    return value
