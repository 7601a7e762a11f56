"""Erasing conversations on purpose: one at an admin's request, or all those past the
retention period (``MESO_RETENTION_DAYS``, run by ``python -m api.cli retention``).

Both go through :func:`api.retention.erase_conversation` (Rasa's tracker events first, then
the row, whose messages, callback requests, tags and notes go with it by cascade) and are
audited with ids and counts only.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime, timedelta

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.locks import KeyedLocks
from api.models import Base, Conversation, StaffUser
from api.retention import erase_conversation
from api.staff.audit import audit
from api.tracker_store import TrackerStore


def _dependent_tables() -> list[Table]:
    """Every table holding rows of a conversation (a ``conversation_id`` column)."""
    return [table for table in Base.metadata.sorted_tables if "conversation_id" in table.c]


async def conversation_counts(session: AsyncSession, conversation_id: str) -> dict[str, int]:
    """How many rows each dependent table holds for the conversation, by table name."""
    counts: dict[str, int] = {}
    for table in _dependent_tables():
        counts[table.name] = int(
            await session.scalar(
                select(func.count())
                .select_from(table)
                .where(table.c.conversation_id == conversation_id)
            )
            or 0
        )
    return counts


def _hold(locks: KeyedLocks | None, key: str) -> AbstractAsyncContextManager[None]:
    return locks.hold(key) if locks is not None else nullcontext()


async def erase(
    session: AsyncSession,
    tracker: TrackerStore,
    conversation_id: str,
    actor: StaffUser | str | None,
    *,
    locks: KeyedLocks | None = None,
) -> dict[str, int] | None:
    """Erase one conversation everywhere, audited with what was deleted, and commit.

    Returns the counts of deleted rows (``rasa_events`` included), or None when there is no
    such conversation (then nothing is changed or audited).
    """
    async with _hold(locks, conversation_id):
        if await session.get(Conversation, conversation_id) is None:
            return None
        counts = await conversation_counts(session, conversation_id)
        counts["rasa_events"] = await tracker.erase(conversation_id)
        audit(session, actor, "conversation_erased", "conversation", conversation_id, **counts)
        await erase_conversation(session, tracker, conversation_id)  # commits the audit too
        return counts


async def apply_retention(
    session: AsyncSession,
    tracker: TrackerStore,
    days: int,
    now: datetime,
    actor: StaffUser | None,
    *,
    locks: KeyedLocks | None = None,
) -> int:
    """Erase every conversation whose last activity is more than ``days`` days before
    ``now`` (Rasa's events included); audit the run with the count and commit. ``days`` 0
    (or less) keeps everything and does nothing."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    ids = (
        await session.scalars(
            select(Conversation.id).where(Conversation.last_activity_at < cutoff)
        )
    ).all()
    await session.commit()  # ends the read (nothing to write); unlike a rollback, keeps objects
    deleted = 0
    for conversation_id in ids:
        async with _hold(locks, conversation_id):
            still_old = await session.scalar(
                select(Conversation.id).where(
                    Conversation.id == conversation_id, Conversation.last_activity_at < cutoff
                )
            )
            if still_old is not None and await erase_conversation(
                session, tracker, conversation_id
            ):
                deleted += 1
            else:
                await session.commit()
    audit(
        session, actor, "retention", "conversation", None, days=days, cutoff=cutoff.isoformat(),
        deleted=deleted,
    )
    await session.commit()
    return deleted


async def count_older(session: AsyncSession, days: int, now: datetime) -> int:
    """How many conversations :func:`apply_retention` would erase (for a dry run)."""
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.last_activity_at < cutoff)
        )
        or 0
    )
