"""One error root for all of Slipway.

Every error a user can see derives from :class:`SlipwayError` and knows its HTTP status
and a stable machine-readable ``code``, so the REST layer, the CLI and the SDK can report
it the same way: ``{"error": {"code", "message", "details"}}``. Foreign exceptions are
translated at the edge (``raise NotFound(...) from None``) and never leak through.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class SlipwayError(Exception):
    """Root of every error Slipway raises on purpose."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this error as the REST API returns it."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def http_headers(self) -> dict[str, str]:
        """Headers the HTTP answer carries besides the body; none unless a subclass says."""
        return {}


def _whole_seconds(seconds: float) -> int:
    """``Retry-After`` takes whole seconds (RFC 9110); never 0, which invites a hot loop."""
    return max(1, math.ceil(seconds))


class InvalidInput(SlipwayError):
    """The caller sent something malformed; ``field`` names what was wrong."""

    status_code = 400
    code = "invalid_input"

    def __init__(
        self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        merged = dict(details or {})
        if field is not None:
            merged.setdefault("field", field)
        super().__init__(message, details=merged)
        self.field = field


class Unauthorized(SlipwayError):
    """No credentials, or credentials that are unknown, malformed or revoked."""

    status_code = 401
    code = "unauthorized"


class Forbidden(SlipwayError):
    """Valid credentials whose role does not allow the action."""

    status_code = 403
    code = "forbidden"


class NotFound(SlipwayError):
    """The named resource does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(SlipwayError):
    """The action contradicts the resource's current state (exists already, wrong state)."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(SlipwayError):
    """The request body is larger than the server accepts."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(SlipwayError):
    """The request body's content type is not one the route reads."""

    status_code = 415
    code = "unsupported_media_type"


class BackendUnavailable(SlipwayError):
    """A backend (database, Redis, Kafka, object store, Ray) cannot be reached, or what
    should answer is not ready yet: 503, retry after ``retry_after`` whole seconds."""

    status_code = 503
    code = "backend_unavailable"

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, retry_after: float = 2.0
    ) -> None:
        self.retry_after = _whole_seconds(retry_after)
        super().__init__(message, details={**(details or {}), "retry_after": self.retry_after})

    def http_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Overloaded(SlipwayError):
    """Too much in flight or waiting: shed at once with 429, so that what is accepted stays
    fast; the caller should retry after ``retry_after`` whole seconds, with backoff."""

    status_code = 429
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        self.retry_after = _whole_seconds(retry_after)
        super().__init__(message, details={"retry_after": self.retry_after})

    def http_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ModelError(SlipwayError):
    """The model raised while predicting on input that passed validation."""

    status_code = 500
    code = "model_error"


class LeaseLost(Conflict):
    """A worker acted on a work item it no longer holds (lease expired, cancelled, reclaimed)."""

    code = "lease_lost"
