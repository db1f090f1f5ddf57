"""HTTP to a Slipway control plane: a token, timeouts, retries, and errors turned back
into the exceptions the embedded API raises.

Every error the server sends is ``{"error": {"code", "message", "details"}}``; the code
names a :class:`~slipway.core.errors.SlipwayError` subclass, which is raised with the same
message and details (an :class:`~slipway.core.errors.InvalidInput` names its field), so
code written against the embedded API handles the remote one's errors unchanged.

Retries: a call that is safe to repeat — a read, a PUT or DELETE, or a write carrying an
``Idempotency-Key`` — is sent again after a connection error, a timeout, 429 or 503,
with exponential backoff (and the server's ``Retry-After`` when it gives one), up to
``retries`` times. Anything else is sent once: repeating it could apply it twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import httpx

from slipway.core.errors import BackendUnavailable, error_from
from slipway.core.resource import Listing, Resource
from slipway.core.workspace import WORKSPACE_HEADER, validate_workspace

API_PREFIX = "/api/v1"
# How often a remote wait asks again: each poll is a request to a shared control plane.
POLL_SECONDS = 0.5
RETRY_STATUSES = frozenset({429, 503})


class Transport:
    """One HTTP connection pool to ``url`` (the control plane's base URL)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        workspace: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Every request acts in this workspace (the server's default one when None).
        self.workspace = None if workspace is None else validate_workspace(workspace)
        if self.workspace is not None:
            headers[WORKSPACE_HEADER] = self.workspace
        # The same token calls the gateway (endpoints it is granted ``invoke`` on).
        self.token = token
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        repeatable: bool | None = None,
        json: Any = None,
        content: Iterable[bytes] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send, retrying what is ``repeatable`` (by default: GET, PUT, DELETE, and any
        call with an ``Idempotency-Key``); a 4xx or 5xx answer raises its SlipwayError.
        ``content`` is a body streamed in pieces as it is produced (an
        :class:`~slipway.core.arrowipc.IpcChunks`; chunked): it must be iterable again
        (not a generator) for a retry to send it whole. Handed one large ``bytes``,
        httpcore re-copies the unsent rest after every partial send (0.5 s for 94 MB over
        loopback), which is why tables never go as one buffer."""
        if repeatable is None:
            repeatable = method in ("GET", "HEAD", "PUT", "DELETE") or bool(
                headers and "Idempotency-Key" in headers
            )
        attempts = 1 + (self.retries if repeatable else 0)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.http.request(
                    method,
                    f"{API_PREFIX}{path}",
                    json=json,
                    content=content,
                    params=params,
                    headers=headers,
                )
            except (httpx.ConnectError, httpx.TimeoutException, httpx.RemoteProtocolError) as exc:
                if last:
                    raise BackendUnavailable(
                        f"the control plane at {self.url} did not answer: {exc}"
                    ) from None
                time.sleep(self.backoff * 2**attempt)
                continue
            if response.status_code in RETRY_STATUSES and not last:
                wait = response.headers.get("Retry-After", "")
                time.sleep(float(wait) if wait.isdigit() else self.backoff * 2**attempt)
                continue
            if response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                raise error_from(response.status_code, body)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")


R = TypeVar("R", bound=Resource)


def listing(kind: type[R], documents: Iterable[Any]) -> Listing[R]:
    """The resources of a JSON array."""
    return Listing(kind.model_validate(d) for d in documents)


__all__ = ["POLL_SECONDS", "Transport", "error_from", "listing"]
