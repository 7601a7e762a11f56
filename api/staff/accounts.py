"""Staff accounts: creating them and changing role, activity, password or second factor.

Shared by the console's admin pages and the command line (``api.cli``). Every change is
audited here and left uncommitted: the caller commits it with the audit entry. Bad input
raises :class:`AccountError` with a sentence for the person before anything is changed (so
the caller need not roll back, which would expire the objects its page still shows).
"""

from __future__ import annotations

import re

from anyio import to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import STAFF_ROLES, StaffSession, StaffUser
from api.staff.audit import audit
from api.staff.passwords import hash_password, password_problem
from api.staff.sessions import end_sessions

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
USERNAME_RULE = (
    "A username has 2 to 64 characters: letters, digits, dots, dashes or underscores, "
    "starting with a letter or digit."
)
TARGET = "staff_user"

Actor = StaffUser | None
"""Who makes the change: a signed-in admin, or None for the command line (the system)."""


class AccountError(ValueError):
    """A change that cannot be made, with the reason in plain words."""


def normalise_username(raw: str) -> str:
    """The stored (lower-case) form of a username, or AccountError."""
    username = raw.strip().lower()
    if not USERNAME.fullmatch(username):
        raise AccountError(USERNAME_RULE)
    return username


def _check_role(role: str) -> str:
    if role not in STAFF_ROLES:
        raise AccountError("The role must be admin or reviewer.")
    return role


def _check_password(password: str, confirm: str | None = None) -> None:
    problem = password_problem(password, confirm)
    if problem:
        raise AccountError(problem)


async def hash_in_thread(password: str) -> str:
    """argon2id takes a noticeable moment: hash away from the event loop."""
    return await to_thread.run_sync(hash_password, password)


async def find_user(db: AsyncSession, username: str) -> StaffUser | None:
    return await db.scalar(select(StaffUser).where(StaffUser.username == username.strip().lower()))


async def active_admins(db: AsyncSession) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(StaffUser)
            .where(StaffUser.role == "admin", StaffUser.is_active.is_(True))
        )
        or 0
    )


async def _keep_an_admin(db: AsyncSession, user: StaffUser) -> None:
    """Refuse a change that would leave no active admin."""
    if user.is_admin and user.is_active and await active_admins(db) <= 1:
        raise AccountError(
            f"{user.username} is the last active admin. Make another account an admin first."
        )


async def create_user(
    db: AsyncSession,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str,
    actor: Actor,
    confirm_password: str | None = None,
) -> StaffUser:
    """Add an active account (flushed, so it has its id) and audit it. With
    ``confirm_password`` (a form's second field) the two must be the same."""
    username = normalise_username(username)
    display = " ".join(display_name.split()) or username
    if len(display) > 128:
        raise AccountError("The display name must be at most 128 characters.")
    _check_role(role)
    _check_password(password, confirm_password)
    if await find_user(db, username) is not None:
        raise AccountError(f"There is already an account called {username}.")
    user = StaffUser(
        username=username,
        display_name=display,
        role=role,
        password_hash=await hash_in_thread(password),
        is_active=True,
    )
    db.add(user)
    await db.flush()
    audit(db, actor, "user_created", TARGET, str(user.id), username=username, role=role)
    return user


async def set_role(db: AsyncSession, user: StaffUser, role: str, actor: Actor) -> None:
    _check_role(role)
    if role == user.role:
        return
    if role != "admin":
        await _keep_an_admin(db, user)
    audit(db, actor, "user_role_changed", TARGET, str(user.id), old=user.role, new=role)
    user.role = role


async def set_active(db: AsyncSession, user: StaffUser, active: bool, actor: Actor) -> None:
    """Deactivate (every session of the account ends) or reactivate an account."""
    if active == user.is_active:
        return
    if not active:
        await _keep_an_admin(db, user)
        await end_sessions(db, user.id)
    user.is_active = active
    action = "user_reactivated" if active else "user_deactivated"
    audit(db, actor, action, TARGET, str(user.id))


async def set_password(
    db: AsyncSession,
    user: StaffUser,
    password: str,
    actor: Actor,
    *,
    confirm: str | None = None,
    keep: StaffSession | None = None,
) -> None:
    """Set a new password; every session of the account ends but ``keep`` (the caller's own).

    Audited as ``password_changed`` when the account's owner changes it, else
    ``user_password_set`` (an admin, or the command line).
    """
    _check_password(password, confirm)
    user.password_hash = await hash_in_thread(password)
    await end_sessions(db, user.id, keep=keep)
    own = actor is not None and actor.id == user.id
    audit(db, actor, "password_changed" if own else "user_password_set", TARGET, str(user.id))


async def reset_totp(db: AsyncSession, user: StaffUser, actor: Actor) -> None:
    """Turn the second factor off (an admin helping someone who lost their device). Where
    one is required they set a new one up right after their next password."""
    if user.totp_secret is None:
        return
    user.totp_secret = None
    user.totp_failures = 0
    user.totp_locked_until = None
    audit(db, actor, "user_totp_reset", TARGET, str(user.id))
