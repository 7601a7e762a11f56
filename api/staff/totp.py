"""The optional second factor: time-based one-time codes (RFC 6238, 30 s, 6 digits)."""

from __future__ import annotations

import pyotp

ISSUER = "Meso staff console"
MAX_FAILURES = 5
"""Wrong codes allowed in one sign-in before its session is deleted."""


def new_secret() -> str:
    """A fresh base32 secret (160 bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app accepts (typed in or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def grouped(secret: str) -> str:
    """The secret in groups of four characters, easier to type."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def verify_code(secret: str, code: str) -> bool:
    """True when ``code`` is the current code, or the one just before or after it."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return False
    return pyotp.TOTP(secret).verify(code, valid_window=1)
