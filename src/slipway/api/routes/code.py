"""Code bundles over REST: upload the code a job runs, and look one up by its digest.

``POST /code-bundles`` takes a gzipped tar (``application/gzip``) of the caller's code —
the remote client packs ``source_dir`` and ``code_paths`` folders itself — checks every
member and keeps it under its SHA-256; a job then names it as ``bundle:sha256:<hex>``
(:mod:`slipway.runtime.bundles`, :mod:`slipway.api.code`). The body is bounded by
``server.max_body_bytes`` like any other.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request

from slipway.api.auth import authorize, services_of
from slipway.api.limits import whole_body
from slipway.core.errors import UnsupportedMediaType
from slipway.runtime import bundles
from slipway.runtime.bundles import CodeBundle

# Any workspace's jobs and pipelines run uploaded code: bundles are kept by their digest,
# one copy for every workspace that uploads the same files.
router = APIRouter(tags=["code"], dependencies=[Depends(authorize(scoped=True))])
_MEDIA_TYPES = frozenset({bundles.MEDIA_TYPE, "application/x-gzip", "application/octet-stream"})
Digest = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]


@router.post(
    "/code-bundles",
    status_code=201,
    responses={415: {"description": "The body is not a gzipped tar"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {bundles.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_bundle(request: Request) -> CodeBundle:
    """Store a code bundle (once per content: the same files give the same digest)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"a code bundle is sent as {bundles.MEDIA_TYPE} (a gzipped tar), not {media!r}"
        )
    data = await whole_body(request)  # bounded by RequestLimits, not copied again
    services = services_of(request)
    limits = services.settings.code
    return await anyio.to_thread.run_sync(
        lambda: bundles.store(
            services.artifacts,
            data,
            max_files=limits.max_bundle_files,
            max_unpacked_bytes=limits.max_bundle_unpacked_bytes,
        )
    )


@router.get("/code-bundles/{digest}")
def get_bundle(digest: Digest, request: Request) -> CodeBundle:
    return bundles.describe(services_of(request).artifacts, f"{bundles.PREFIX}{digest}")
