"""The notifications outbox (``api.models.StaffNotification``): what the chat writes, and
how a dispatcher claims what is due and records how it went."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import Conversation, StaffNotification
from contract.levels import severity

REMIND_LEVELS: tuple[str, ...] = ("same_day", "emergency", "crisis")
"""Levels whose flag is notified again when nobody has reviewed it in time."""
CLAIM_BATCH = 20
"""Notices one dispatcher round takes at most."""


def red_flag_rises(before: str | None, after: str | None) -> bool:
    """Whether a turn that left the conversation at level ``after`` (from ``before``) is news
    to staff: its first flag, or a more severe one."""
    if after is None:
        return False
    return before is None or severity(after) > severity(before)


def turn_notices(
    conversation_id: str, *, before: str | None, after: str | None, callbacks: int, now: datetime
) -> list[dict[str, Any]]:
    """The rows a stored turn adds: one for a rising red flag, one per callback request."""
    rows = []
    if red_flag_rises(before, after):
        rows.append(_row(conversation_id, "red_flag", after, now))
    rows.extend(_row(conversation_id, "callback", None, now) for _ in range(callbacks))
    return rows


def _row(conversation_id: str, kind: str, level: str | None, now: datetime) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "kind": kind, "level": level, "created_at": now,
            "status": "pending", "attempts": 0, "next_attempt_at": now, "delivered": []}


INSERT = insert(StaffNotification)
"""Executed with :func:`turn_notices`' rows (one statement for them all)."""


async def claim_due(
    session: AsyncSession, now: datetime, lease: timedelta
) -> list[StaffNotification]:
    """The pending notices due at ``now``, each taken for this dispatcher (:func:`take`);
    committed."""
    taken = await take(session, await due(session, now), now, lease)
    if not taken:
        return []
    rows = (await session.scalars(
        select(StaffNotification).where(StaffNotification.id.in_(taken))
        .order_by(StaffNotification.id)
    )).all()
    await session.commit()
    return list(rows)


async def due(session: AsyncSession, now: datetime) -> list[int]:
    """The ids of pending notices due at ``now``, oldest first (at most a batch)."""
    return list((await session.scalars(
        select(StaffNotification.id)
        .where(StaffNotification.status == "pending", StaffNotification.next_attempt_at <= now)
        .order_by(StaffNotification.next_attempt_at, StaffNotification.id)
        .limit(CLAIM_BATCH)
    )).all())


async def take(
    session: AsyncSession, ids: Sequence[int], now: datetime, lease: timedelta
) -> list[int]:
    """Those of ``ids`` this caller gets: each still due is moved to ``now + lease`` by a
    conditional update, so a dispatcher that read the same ids a moment earlier or later
    (another worker's) finds it moved and skips it; committed."""
    taken = []
    for notice_id in ids:
        result = await session.execute(
            update(StaffNotification)
            .where(StaffNotification.id == notice_id, StaffNotification.status == "pending",
                   StaffNotification.next_attempt_at <= now)
            .values(next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            taken.append(notice_id)
    await session.commit()
    return taken


async def record(
    session: AsyncSession, notice: StaffNotification, *, delivered: Sequence[str],
    errors: dict[str, str], now: datetime, retry_at: datetime | None,
) -> None:
    """How a try went: the channels that took it so far; ``errors`` by channel; ``retry_at``
    None when no more tries are left (then it is ``failed``). Committed."""
    status = "sent" if not errors else ("pending" if retry_at is not None else "failed")
    detail = "; ".join(f"{channel}: {why}" for channel, why in sorted(errors.items()))[:200]
    await session.execute(
        update(StaffNotification)
        .where(StaffNotification.id == notice.id)
        .values(status=status, attempts=StaffNotification.attempts + 1,
                delivered=sorted(delivered), last_error=detail or None,
                sent_at=now if status == "sent" else None,
                next_attempt_at=retry_at if retry_at is not None else now)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def add_reminders(session: AsyncSession, now: datetime, after: timedelta) -> int:
    """A reminder for every conversation flagged same-day or worse more than ``after`` ago
    that nobody has marked reviewed since, unless it had one for that flag; committed."""
    reminded = exists().where(
        StaffNotification.conversation_id == Conversation.id,
        StaffNotification.kind == "reminder",
        StaffNotification.created_at >= Conversation.red_flag_at,
    )
    rows = (await session.execute(
        select(Conversation.id, Conversation.red_flag_level).where(
            Conversation.red_flag_level.in_(REMIND_LEVELS),
            Conversation.red_flag_at <= now - after,
            or_(Conversation.reviewed_at.is_(None),
                Conversation.reviewed_at < Conversation.red_flag_at),
            Conversation.expired_at.is_(None),
            ~reminded,
        )
    )).all()
    if rows:
        await session.execute(INSERT, [_row(cid, "reminder", level, now) for cid, level in rows])
    await session.commit()
    return len(rows)


async def count_failing(session: AsyncSession) -> int:
    """Notices that have not got through: given up, or tried and waiting for a retry."""
    return int(await session.scalar(
        select(func.count()).select_from(StaffNotification).where(
            or_(StaffNotification.status == "failed",
                and_(StaffNotification.status == "pending", StaffNotification.attempts > 0)))
    ) or 0)
