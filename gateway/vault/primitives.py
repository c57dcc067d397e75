"""What every part of the vault shares: sizes, the error for data that
fails authentication, and argument checks whose messages never show a
secret."""

from __future__ import annotations

from typing import Any

TAG_SIZE = 16
KEY_SIZE = 32
NONCE_SIZE = 12


class TamperedError(Exception):
    """Sealed data failed authentication: it was altered, truncated,
    reordered, mixed with other data, or the key is wrong."""


def bytes_arg(value: Any, name: str, size: int | None = None) -> bytes:
    """Return ``value`` as bytes, checking type and length.

    The message names the argument and sizes only, never the content.
    """
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    value = bytes(value)
    if size is not None and len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return value


def int_arg(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value
