"""Staff sessions: a random token in the browser's cookie, only its SHA-256 in the database.

A new token is issued at every sign-in (and again once the second factor is given or set
up), so a token known before sign-in is worthless after it. A session ends at logout, after
``MESO_STAFF_IDLE_MINUTES`` without a request, ``MESO_STAFF_SESSION_MAX_HOURS`` after
sign-in however active it is, or when its account is deactivated.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import StaffSession, StaffUser

TOKEN_BYTES = 32


def session_id(token: str) -> str:
    """The stored id of a cookie token (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: AsyncSession,
    user: StaffUser,
    *,
    now: datetime,
    mfa_pending: bool = False,
    csrf_token: str | None = None,
) -> str:
    """Add a new session for ``user`` (not committed) and return its cookie token.

    ``csrf_token``: keep the one of the session this one replaces (forms already open in
    other tabs stay usable); by default a new one.
    """
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        StaffSession(
            id=session_id(token),
            user_id=user.id,
            csrf_token=csrf_token or secrets.token_urlsafe(TOKEN_BYTES),
            mfa_pending=mfa_pending,
            created_at=now,
            last_seen_at=now,
            authenticated_at=now,
        )
    )
    return token


async def find_session(
    session: AsyncSession,
    token: str | None,
    *,
    now: datetime,
    idle: timedelta,
    lifetime: timedelta | None = None,
) -> StaffSession | None:
    """The live session of ``token``, its ``last_seen_at`` moved to ``now`` (not committed).

    None for no token, an unknown one, an idle-expired one, one started ``lifetime`` or
    longer ago, or an inactive account; an expired session's row is deleted (and that
    deletion committed).
    """
    if not token or len(token) > 256:
        return None
    row = await session.scalar(select(StaffSession).where(StaffSession.id == session_id(token)))
    if row is None:
        return None
    too_old = lifetime is not None and row.created_at <= now - lifetime
    if row.last_seen_at <= now - idle or too_old or not row.user.is_active:
        await session.delete(row)
        await session.commit()
        return None
    row.last_seen_at = now
    return row


async def end_sessions(
    session: AsyncSession, user_id: int, *, keep: StaffSession | None = None
) -> None:
    """Delete every session of a user (but ``keep``), e.g. after a password change."""
    statement = delete(StaffSession).where(StaffSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(StaffSession.id != keep.id)
    await session.execute(statement)
