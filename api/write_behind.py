"""When the API's own database refuses a write: the patient's turn is kept and written later.

A locked, failing or unreachable database must not cost a red flag its urgent reply, nor
lose what the patient sent. (Unreachable, even the conversation's token cannot be checked:
the turn keeps the token's hash and is written only if it opens the conversation.) The chat route then answers from the safety net (a red flag gets the urgent
reply, anything else a 503 with the urgent pointer) without asking the bot, and hands the
turn to :class:`WriteBehind`, which writes it as soon as the database takes writes again: the
patient's message (with consent), its red-flag level on the message and the conversation,
and the safety net's reply. The turn is marked for ``api.tracker_sync``: Rasa never saw it.

The turns wait in this process's memory: a restart while the database is still refusing
writes loses them (the log says how many were waiting).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import crud
from api.background import pause
from api.locks import KeyedLocks
from api.models import short_id, utcnow
from api.rasa_client import RasaReply
from api.signed_links import SummaryLinks

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
MAX_UNCHECKED = 200
"""Turns whose token the database could not check that wait at once, at most: anyone can send
those (any id, any token) while PostgreSQL is down, and they wait in memory. Beyond it a turn
is answered (the safety net) but not kept."""


@dataclass
class Turn:
    """A patient's message the database refused, and the reply the patient got (if any)."""

    conversation_id: str
    text: str
    client_id: str | None
    button_title: str | None
    reply: RasaReply | None
    at: datetime
    token_hash: str | None = None
    """The hash of the token the request gave, when the database could not check it then:
    the turn is written only if it opens the conversation."""


class WriteBehind:
    """The turns waiting for the database, written in the order they came."""

    def __init__(self, summary_links: SummaryLinks, resume_hours: float) -> None:
        self._turns: list[Turn] = []
        self._links = summary_links
        self._resume = timedelta(hours=resume_hours)

    def __len__(self) -> int:
        return len(self._turns)

    def keep(self, conversation_id: str, text: str, client_id: str | None,
             button_title: str | None, reply: RasaReply | None,
             token_hash: str | None = None) -> None:
        if token_hash is not None and sum(t.token_hash is not None for t in self._turns) >= MAX_UNCHECKED:
            logger.warning("write-behind: %d turns with unchecked tokens already wait; this one is "
                           "answered but not kept", MAX_UNCHECKED)
            return
        self._turns.append(
            Turn(conversation_id, text, client_id, button_title, reply, utcnow(), token_hash)
        )
        logger.warning("conversation %s: turn kept until the database takes writes (%d waiting)",
                       short_id(conversation_id), len(self._turns))

    async def flush(self, sessionmaker: async_sessionmaker[AsyncSession], locks: KeyedLocks) -> int:
        """Write the waiting turns, oldest first; stop at the first refusal. How many were written."""
        written = 0
        while self._turns:
            turn = self._turns[0]
            try:
                async with locks.hold(turn.conversation_id), sessionmaker() as session:
                    await _write(session, turn, self._links, self._resume)
                    await session.commit()
            except (DBAPIError, OSError) as exc:  # asyncpg: an unreachable server is an OSError
                logger.warning("write-behind: the database still refuses writes (%s)", type(exc).__name__)
                break
            self._turns.pop(0)
            written += 1
        return written

    async def run_forever(self, sessionmaker: async_sessionmaker[AsyncSession], locks: KeyedLocks) -> None:
        """Flush every second until cancelled; no error ends it."""
        try:
            while True:
                try:
                    if self._turns and await self.flush(sessionmaker, locks):
                        logger.info("write-behind: turns written, %d still waiting", len(self._turns))
                except Exception as exc:  # never let the waiting turns lose their writer
                    logger.error("write-behind: flush failed (%s); tried again", type(exc).__name__)
                await pause(RETRY_SECONDS)
        except asyncio.CancelledError:
            if self._turns:
                logger.error("write-behind: %d turns were still waiting at shutdown", len(self._turns))
            raise


async def _write(session: AsyncSession, turn: Turn, links: SummaryLinks, resume: timedelta) -> None:
    conversation = await crud.get_conversation_for_update(session, turn.conversation_id)
    if conversation is None:  # erased meanwhile (or never there): nothing to keep
        return
    access = await crud.get_access(session, turn.conversation_id) if turn.token_hash else None
    if turn.token_hash is not None and not hmac.compare_digest(
        turn.token_hash, (access.token_hash if access is not None else None) or ""
    ):
        logger.warning("write-behind: a kept turn's token does not open conversation %s: dropped",
                       short_id(turn.conversation_id))
        return
    if access is not None and turn.at - access.last_activity_at > resume:
        # Ended before this turn came (api.routes.access): an unchecked turn must not reopen it.
        logger.warning("write-behind: a kept turn came after conversation %s had ended: dropped",
                       short_id(turn.conversation_id))
        return
    if turn.client_id is not None and conversation.transcript_consent and await crud.find_patient_message(
            session, conversation.id, turn.client_id) is not None:
        return  # a retry that got through first
    patient = None
    if conversation.transcript_consent:
        patient = await crud.add_patient_message(
            session, conversation, text=turn.text, button_title=turn.button_title,
            client_id=turn.client_id, at=turn.at, tracker_pending=True)
    if turn.reply is not None:
        await crud.store_replies(
            session, conversation, turn.reply, patient,
            summary_link=links.url(conversation.id, turn.at),
        )
    await crud.touch(session, conversation.id, turn.at)
