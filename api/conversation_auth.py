"""A conversation's bearer token: made once, stored only as a hash, compared in constant time.

The conversation id names a conversation (it appears in paths, logs and staff links); the
token, returned once by ``POST /api/v1/conversations`` and sent back as
``Authorization: Bearer <token>``, is what opens it. The id alone opens nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32
"""256 random bits, as 43 URL-safe characters."""


def new_token() -> str:
    """A fresh conversation token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What is stored for ``token``: its SHA-256 in hex (the token has 256 random bits, so
    a plain hash is enough; nothing to stretch)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def matches(token: str | None, stored_hash: str | None) -> bool:
    """True when ``token`` is the one whose hash was stored (constant-time comparison)."""
    if not token or not stored_hash:
        return False
    return hmac.compare_digest(token_hash(token), stored_hash)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
