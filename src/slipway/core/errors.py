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

    def http_headers(self) -> dict[str, str]:
        # RFC 9110: a 401 names the scheme that would be accepted.
        return {"WWW-Authenticate": "Bearer"}


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


class InsufficientStorage(SlipwayError):
    """The disk (or quota) under a store is full, so a write could not be completed.

    507 (WebDAV's Insufficient Storage), not 503: retrying soon does not help until an
    operator frees space, and the service itself is up. ``path`` names where the write
    went; nothing of the write is visible there, the previous content is intact."""

    status_code = 507
    code = "insufficient_storage"

    def __init__(self, message: str, *, path: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details={**(details or {}), "path": path})
        self.path = path


# errno 28 (ENOSPC) and 122 (EDQUOT on Linux), as OSError carries them, and as the Rust
# libraries under deltalake spell them in their messages ("... (os error 28)").
_OUT_OF_SPACE_ERRNOS = frozenset({28, 122})
_OUT_OF_SPACE_TEXT = ("(os error 28)", "(os error 122)", "No space left on device")


def is_out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) means the disk or quota is full."""
    current: BaseException | None = exc
    visited: set[int] = set()
    while current is not None and id(current) not in visited:
        visited.add(id(current))
        if isinstance(current, OSError) and current.errno in _OUT_OF_SPACE_ERRNOS:
            return True
        if any(text in str(current) for text in _OUT_OF_SPACE_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


class ModelError(SlipwayError):
    """The model raised while predicting on input that passed validation."""

    status_code = 500
    code = "model_error"


class LeaseLost(Conflict):
    """A worker acted on a work item it no longer holds (lease expired, cancelled, reclaimed)."""

    code = "lease_lost"


def _by_code() -> dict[str, type[SlipwayError]]:
    found: dict[str, type[SlipwayError]] = {}
    pending: list[type[SlipwayError]] = [SlipwayError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from(status: int, body: Any) -> SlipwayError:
    """The exception an HTTP error answer (``{"error": {"code", "message", "details"}}``)
    stands for: the same subclass with the same message and details, so a caller of the
    control plane or of the gateway handles them like the embedded API's own errors."""
    document = body.get("error") if isinstance(body, dict) else None
    if not isinstance(document, dict):
        return SlipwayError(f"the server answered {status} without an error body")
    code, message = str(document.get("code", "")), str(document.get("message", ""))
    raw = document.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    cls = _by_code().get(code)
    if cls is InvalidInput:
        return InvalidInput(message, field=details.get("field"), details=details)
    if cls is not None:
        try:
            return cls(message, details=details)
        except TypeError:  # a subclass with its own constructor (retry_after, path)
            error = cls.__new__(cls)
            SlipwayError.__init__(error, message, details=details)
            return error
    error = SlipwayError(message, details=details)
    error.code = code or error.code  # type: ignore[misc]
    return error
