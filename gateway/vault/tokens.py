"""Link tokens: 256 random bits in the client's link; the database keeps
only their SHA-256."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """A fresh 256-bit link token: 43 URL-safe base64 characters, no padding."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex digest of a token: what the database stores."""
    if not isinstance(token, str):
        raise TypeError(f"token must be str, not {type(token).__name__}")
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
