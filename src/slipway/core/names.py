"""The one validator for the names of resources Slipway creates.

A name appears in URLs, file paths, table names, Redis keys and Kafka headers, so it is
kept to a conservative alphabet everywhere: lower-case ASCII letters, digits, ``-`` and
``_``, starting with a letter, at most 63 characters (a DNS label's length).
"""

from __future__ import annotations

import re

from slipway.core.errors import InvalidInput

MAX_NAME_LENGTH = 63
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


def validate_name(value: object, *, field: str = "name") -> str:
    """Return ``value`` if it is a valid resource name, else raise :class:`InvalidInput`.

    The error names ``field`` so callers can point at the offending request field.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if not value:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{field} is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed",
            field=field,
        )
    if not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{field} {value!r} is not a valid name: use lower-case letters, digits, '-' and"
            " '_', starting with a letter",
            field=field,
        )
    return value


def is_valid_name(value: object) -> bool:
    """True when :func:`validate_name` would accept ``value``."""
    try:
        validate_name(value)
    except InvalidInput:
        return False
    return True
