"""Slowing down password guessing without letting anyone lock a colleague out.

Three limits apply to a staff login (``POST /staff/login``):

* per client address: ``MESO_LOGIN_ATTEMPTS_PER_MINUTE`` (``runtime.login_limiter``);
* per account, for browsers not trusted for it: after ``MESO_STAFF_LOCKOUT_FAILURES`` wrong
  passwords in a row each further one makes the next attempt wait, 15 seconds doubling up
  to ``MESO_STAFF_LOCKOUT_MAX_SECONDS``. Attempts during the wait are refused unchecked
  and not counted, so the wait never grows beyond the cap after the last wrong password
  and a right password waits at most that long. Unknown usernames are counted the same way,
  so the answer says nothing about which accounts exist;
* per trusted browser: a browser that has signed in to the account completely before holds
  a device cookie for it (the OWASP "device cookie" scheme); its attempts count against
  that cookie, not against the account, so someone guessing (or deliberately failing) from
  elsewhere cannot keep the account's owner out on their usual browser.

The counts live in this process's memory (like the other rate limits): a restart forgets
them, and with several workers each counts its own.

The device cookie is ``<user id>.<random>.<MAC>``, keyed by the account's password hash, so
a new password distrusts every browser. It goes only to ``/staff/login``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.models import StaffUser
from api.staff.totp import lock_seconds

DEVICE_COOKIE = "meso_staff_device"
DEVICE_DAYS = 90
FORGET_SECONDS = 24 * 3600
"""A key with no wrong password for this long starts again from nothing."""


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Wrong passwords in a row per key (``account:<name>`` or ``device:<random>``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, prune_every: int = 1000):
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._prune_every = prune_every
        self._since_prune = 0

    def __len__(self) -> int:
        return len(self._entries)

    def wait(self, key: str) -> int:
        """Whole seconds before ``key`` may try again (0: now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0
        left = entry.locked_until - self._clock()
        return max(1, int(left + 0.999)) if left > 0 else 0

    def failed(self, key: str, *, free: int, cap: int) -> int:
        """Count one wrong password; return the wait it starts (0: none)."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or now - entry.last_failure > FORGET_SECONDS:
            entry = self._entries[key] = _Entry()
        entry.failures += 1
        entry.last_failure = now
        seconds = lock_seconds(entry.failures, free, cap)
        entry.locked_until = now + seconds if seconds else 0.0
        self._since_prune += 1
        if self._since_prune >= self._prune_every:
            self._prune(now)
        return seconds

    def succeeded(self, key: str) -> None:
        self._entries.pop(key, None)

    def _prune(self, now: float) -> None:
        self._since_prune = 0
        stale = [k for k, e in self._entries.items() if now - e.last_failure > FORGET_SECONDS]
        for key in stale:
            del self._entries[key]


def _mac(user: StaffUser, nonce: str) -> str:
    message = f"staff-device:{user.id}.{nonce}".encode()
    return hmac.new(user.password_hash.encode(), message, hashlib.sha256).hexdigest()


def device_token(user: StaffUser) -> str:
    """A new device cookie value for ``user``'s browser."""
    nonce = secrets.token_urlsafe(16)
    return f"{user.id}.{nonce}.{_mac(user, nonce)}"


def trusted_device(token: str | None, user: StaffUser | None) -> str | None:
    """The random part of a valid device cookie of ``user``, else None."""
    if not token or user is None or len(token) > 200:
        return None
    user_id, _, rest = token.partition(".")
    nonce, _, mac = rest.partition(".")
    if user_id != str(user.id) or not nonce or not mac:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(user, nonce).encode()):
        return None
    return nonce


def throttle_key(name: str, device: str | None) -> str:
    """The key a login attempt counts against."""
    return f"device:{device}" if device else f"account:{name}"
