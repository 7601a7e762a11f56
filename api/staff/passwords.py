"""Staff passwords: argon2id (argon2-cffi's defaults), at least ``MIN_LENGTH`` characters."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024
"""Longer input is refused before hashing (it would only cost time)."""


@cache
def hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong password or a broken hash."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (rehash at login)."""
    return hasher().check_needs_rehash(password_hash)


@cache
def dummy_hash() -> str:
    """A hash to verify against for unknown usernames, so they take as long as known ones."""
    return hash_password("not-a-password-of-anyone")


def verify_unknown_user(password: str) -> None:
    """Spend the time a real verification would take (the result is always a failure)."""
    verify_password(dummy_hash(), password)


def password_problem(password: str, confirm: str | None = None) -> str | None:
    """A sentence saying what is wrong with a new password, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"The password must be at least {MIN_LENGTH} characters long."
    if len(password) > MAX_LENGTH:
        return f"The password must be at most {MAX_LENGTH} characters long."
    if not password.strip():
        return "The password cannot be only spaces."
    if confirm is not None and confirm != password:
        return "The two passwords are not the same."
    return None
