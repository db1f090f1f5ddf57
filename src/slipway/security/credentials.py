"""The API token a request carries, however its client sends it.

Slipway's own clients send ``Authorization: Bearer <token>``. MLflow's client sends the
same header when ``MLFLOW_TRACKING_TOKEN`` is set, or HTTP Basic when
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` are; a browser opening MLflow's
UI answers a Basic challenge with what its user types. For Basic the password is the
token and the user name is ignored (the token already says who is calling), so one token
signs in every client.
"""

from __future__ import annotations

import base64
import binascii

from slipway.core.errors import Unauthorized

_MISSING = "this route needs an API token: send 'Authorization: Bearer <token>'"


def bearer_token(authorization: str) -> str:
    """The token in an ``Authorization: Bearer <token>`` header, else :class:`Unauthorized`."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized(_MISSING)
    return credentials.strip()


def any_token(authorization: str) -> str:
    """The token of a Bearer header or the password of a Basic one, else
    :class:`Unauthorized` (a missing header, another scheme, malformed Basic)."""
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return bearer_token(authorization)
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials") from None
    _user, separator, password = decoded.partition(":")
    if not separator or not password:
        raise Unauthorized("Basic credentials need the API token as the password")
    return password
