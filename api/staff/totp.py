"""The second factor: time-based one-time codes (RFC 6238, 30 s, 6 digits).

Required for admins (``MESO_STAFF_REQUIRE_TOTP=all``: for everyone). A code is accepted
once: the account keeps the time step of the last code accepted
(``StaffUser.totp_last_step``) and refuses that step and every earlier one, claimed with a
conditional UPDATE so two requests racing with the same code cannot both win. Wrong codes
are counted on the account, over all its sign-ins (``totp_failures``); from
:data:`MAX_FAILURES` in a row each further one locks the check for a doubling time capped at
``MESO_STAFF_LOCKOUT_MAX_SECONDS`` (``totp_locked_until``).
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from api.models import StaffUser
from api.settings import Settings

ISSUER = "Meso staff console"
MAX_FAILURES = 5
"""Wrong codes in a row (per account) before a sign-in is ended and the check locked."""
FIRST_LOCK_SECONDS = 15
"""The first lock; each further wrong code doubles it, up to the settings' cap."""
STEP_SECONDS = 30
VALID_WINDOW = 1
"""Steps accepted either side of now (clock drift)."""


def new_secret() -> str:
    """A fresh base32 secret (160 bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app accepts (typed in or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def grouped(secret: str) -> str:
    """The secret in groups of four characters, easier to type."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def required(user: StaffUser, settings: Settings) -> bool:
    """Whether ``user`` must sign in with a code (and so must set one up)."""
    return settings.staff_require_totp == "all" or user.is_admin


def matching_step(
    secret: str, code: str, *, after: int | None = None, now: float | None = None
) -> int | None:
    """The time step whose code ``code`` is (now, or one step either side), if it is later
    than ``after``; else None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        expected = totp.generate_otp(step)
        if hmac.compare_digest(expected.encode(), code.encode()) and found is None:
            found = step
    if found is None or (after is not None and found <= after):
        return None
    return found


async def claim_step(db: AsyncSession, user: StaffUser, step: int) -> bool:
    """Record ``step`` as the account's last used one, unless it (or a later one) already is.

    False when another request used it first; the UPDATE is flushed, not committed.
    """
    result = await db.execute(
        update(StaffUser)
        .where(
            StaffUser.id == user.id,
            or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def locked_for(user: StaffUser, now: datetime) -> int:
    """Whole seconds before the account's codes are checked again (0: now)."""
    if user.totp_locked_until is None or user.totp_locked_until <= now:
        return 0
    return max(1, int((user.totp_locked_until - now).total_seconds() + 0.999))


def lock_seconds(failures: int, free: int, cap: int) -> int:
    """The wait after the ``failures``-th wrong answer in a row: none before ``free`` of
    them, then :data:`FIRST_LOCK_SECONDS`, doubling with each further one, at most ``cap``."""
    if failures < free:
        return 0
    return min(cap, FIRST_LOCK_SECONDS * 2 ** min(failures - free, 20))


async def check_code(
    db: AsyncSession, user: StaffUser, code: str, *, now: datetime, settings: Settings
) -> bool:
    """Check a code of ``user`` (who has a secret and is not locked): True and the step
    claimed and the failures reset when right and unused; else the failure counted (and the
    lock set from :data:`MAX_FAILURES` on). Nothing is committed."""
    assert user.totp_secret is not None
    step = matching_step(user.totp_secret, code, after=user.totp_last_step)
    if step is not None and await claim_step(db, user, step):
        user.totp_failures = 0
        user.totp_locked_until = None
        return True
    user.totp_failures = (user.totp_failures or 0) + 1
    wait = lock_seconds(user.totp_failures, MAX_FAILURES, settings.staff_lockout_max_seconds)
    if wait:
        user.totp_locked_until = now + timedelta(seconds=wait)
    return False


def was_reused(user: StaffUser, code: str) -> bool:
    """Whether ``code`` is a right code already used (for the audit detail only)."""
    assert user.totp_secret is not None
    return matching_step(user.totp_secret, code) is not None
