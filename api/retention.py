"""Erasing conversations everywhere: the API's rows and Rasa's tracker events.

* :func:`erase_conversation`: one conversation, completely (its messages, callback requests,
  record and summary, and its events in Rasa).
* :func:`purge_unconsented`: conversations without transcript consent idle longer than
  ``idle`` (``MESO_TRANSCRIPT_IDLE_MINUTES``). Rasa's events go in every case; the row goes
  too, unless it holds what the patient consented to keep on its own (a callback request,
  a decision-support record): then only its summary is deleted and it is marked expired
  (``expired_at``), which the chat routes answer with 404.
* :func:`purge_forever`: runs the purge every ``MESO_PURGE_INTERVAL_SECONDS`` (started by
  the app's lifespan), in one worker a round however many there are.

Rasa's events are deleted first: if that fails, the row stays and the next run tries again.
Logs carry counts and short ids only; a purge run that erased something is audited with its
counts (actor "system").

Nothing erased stays in the database files: both databases' connections run with SQLite's
``secure_delete`` (deleted content is overwritten with zeros), and once an erasure has
committed, :func:`api.db.scrub_erased` copies the WAL into the file and truncates it (on
PostgreSQL: vacuums the tables it deleted from); :meth:`TrackerStore.erase` does the same for
Rasa's database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, null, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from api.db import scrub_erased
from api.background import pause
from api.jobs import claim_round
from api.locks import KeyedLocks
from api.models import CONVERSATION_TABLES, CallbackRequest, Conversation, utcnow
from api.staff.audit import audit
from api.tracker_store import TrackerStore

logger = logging.getLogger(__name__)

PURGE_JOB = "purge_unconsented"
"""The idle purge's name among the background jobs (``api.models.JobRun``)."""


@dataclass
class PurgeResult:
    deleted: int = 0
    """Conversations erased completely."""
    expired: int = 0
    """Conversations kept for their callback requests or record, their transcript erased."""


async def scrub_session(session: AsyncSession) -> None:
    """:func:`api.db.scrub_erased` of the conversation tables on the database of
    ``session`` (after its commit)."""
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        bind = bind.engine
    if isinstance(bind, AsyncEngine):
        await scrub_erased(bind, CONVERSATION_TABLES)


async def erase_conversation(
    session: AsyncSession, tracker: TrackerStore, conversation_id: str
) -> bool:
    """Erase one conversation everywhere and commit; False if there was no such row.

    Rasa's events are erased even then (nothing may be left of the id). After the commit,
    both databases are scrubbed: no copy of the erased rows is left in their files.
    """
    await tracker.erase(conversation_id)
    result = await session.execute(delete(Conversation).where(Conversation.id == conversation_id))
    await session.commit()
    await scrub_session(session)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _idle_unconsented(cutoff: datetime) -> ColumnElement[bool]:
    return (
        Conversation.transcript_consent.is_(False)
        & Conversation.expired_at.is_(None)
        & (Conversation.last_activity_at < cutoff)
    )


async def _holds_consented_data(session: AsyncSession, conversation: Conversation) -> bool:
    if conversation.record:
        return True
    has_callback = await session.scalar(
        select(exists().where(CallbackRequest.conversation_id == conversation.id))
    )
    return bool(has_callback)


@asynccontextmanager
async def _held(locks: KeyedLocks | None, key: str) -> AsyncIterator[None]:
    hold: AbstractAsyncContextManager[None] = locks.hold(key) if locks else nullcontext()
    async with hold:
        yield


async def purge_unconsented(
    session: AsyncSession,
    tracker: TrackerStore,
    *,
    now: datetime,
    idle: timedelta,
    locks: KeyedLocks | None = None,
) -> PurgeResult:
    """Close every conversation without transcript consent whose last message is older
    than ``now - idle`` (see the module's docstring); commit after each one.

    With ``locks`` (the app's per-conversation locks) a turn in progress is waited for, and
    a conversation that became active meanwhile is left alone.
    """
    cutoff = now - idle
    ids = (await session.scalars(select(Conversation.id).where(_idle_unconsented(cutoff)))).all()
    await session.rollback()
    result = PurgeResult()
    for conversation_id in ids:
        async with _held(locks, conversation_id):
            conversation = await session.scalar(
                select(Conversation).where(
                    Conversation.id == conversation_id, _idle_unconsented(cutoff)
                )
            )
            if conversation is None:
                await session.rollback()
                continue
            if await _holds_consented_data(session, conversation):
                await tracker.erase(conversation_id)
                conversation.summary = null()  # SQL NULL, not JSON null
                conversation.summary_at = None
                conversation.expired_at = now
                await session.commit()
                await scrub_session(session)
                result.expired += 1
            elif await erase_conversation(session, tracker, conversation_id):
                result.deleted += 1
    if result.deleted or result.expired:
        audit(
            session, None, "purge_unconsented", "conversation", None,
            deleted=result.deleted, expired=result.expired,
            idle_minutes=int(idle.total_seconds() // 60),
        )
        await session.commit()
    return result


async def purge_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    tracker: TrackerStore,
    *,
    idle: timedelta,
    interval: float,
    locks: KeyedLocks | None = None,
    across_workers: bool = False,
) -> None:
    """Run :func:`purge_unconsented` now and then every ``interval`` seconds, until cancelled.

    ``across_workers`` (a database several workers share): once a round across all of them
    (:func:`api.jobs.claim_round`); a worker that finds the round taken skips it. Without it
    (SQLite, one worker) no round is claimed, so a purge that finds nothing writes nothing.

    A failed run is logged (the kind of error only) and the next run tries again.
    """
    every = timedelta(seconds=interval)
    while True:
        try:
            async with sessionmaker() as session:
                now = utcnow()
                if not across_workers or await claim_round(
                    session, PURGE_JOB, now=now, interval=every
                ):
                    result = await purge_unconsented(
                        session, tracker, now=now, idle=idle, locks=locks
                    )
                    if result.deleted or result.expired:
                        logger.info(
                            "purge: %d conversations without transcript consent erased, "
                            "%d expired",
                            result.deleted,
                            result.expired,
                        )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let the purge take the app down
            logger.error("purge failed: %s", type(exc).__name__)
        await pause(interval)
