"""The background task that sends staff notices (started by the app's lifespan in every
worker; each notice is claimed by one, ``outbox.claim_due``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.background import pause
from api.jobs import claim_round
from api.models import StaffNotification, short_id, utcnow
from api.notifications import outbox
from api.notifications.channels import Channel, ChannelError, Notice

logger = logging.getLogger(__name__)

EVERY_S = 2.0
"""How often a dispatcher looks for notices due: a red flag reaches staff within this."""
LEASE = timedelta(minutes=2)
"""How long a claimed notice is its dispatcher's (longer than every channel's timeout)."""
MAX_ATTEMPTS = 12
"""Tries before a notice is marked failed (about 3 hours with :func:`retry_wait`)."""
REMINDER_JOB = "notify_reminders"


def retry_wait(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: 30 s, doubling, at most 30 minutes."""
    return timedelta(seconds=min(1800, 30 * 2 ** max(0, attempts - 1)))


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Sequence[Channel],
        *,
        console_url: str,
        remind_after: timedelta | None,
        across_workers: bool,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._channels = list(channels)
        self._console_url = console_url.rstrip("/")
        self._remind_after = remind_after
        self._across_workers = across_workers
        self._clock = clock

    def notice(self, row: StaffNotification) -> Notice:
        return Notice(row.kind, row.level, row.created_at,
                      f"{self._console_url}/staff/conversations/{row.conversation_id}")

    async def run_once(self) -> int:
        """One round: reminders due, then every notice due sent; returns how many were
        taken."""
        now = self._clock()
        async with self._sessionmaker() as session:
            if self._remind_after is not None and (
                not self._across_workers
                or await claim_round(session, REMINDER_JOB, now=now, interval=timedelta(seconds=EVERY_S))
            ):
                added = await outbox.add_reminders(session, now, self._remind_after)
                if added:
                    logger.info("notifications: %d reminders of flags not reviewed", added)
            rows = await outbox.claim_due(session, now, LEASE)
            for row in rows:
                await self._send(session, row)
        return len(rows)

    async def _send(self, session: AsyncSession, row: StaffNotification) -> None:
        notice = self.notice(row)
        delivered = list(row.delivered or [])
        errors: dict[str, str] = {}
        for channel in self._channels:
            if channel.name in delivered:
                continue
            try:
                await channel.send(notice)
            except ChannelError as error:
                errors[channel.name] = str(error)
            else:
                delivered.append(channel.name)
        now = self._clock()
        attempts = row.attempts + 1
        retry_at = None if attempts >= MAX_ATTEMPTS else now + retry_wait(attempts)
        await outbox.record(session, row, delivered=delivered, errors=errors, now=now,
                            retry_at=retry_at)
        if errors:
            logger.warning("notification %d (%s, conversation %s) not sent by %s: %s",
                           row.id, row.kind, short_id(row.conversation_id),
                           ", ".join(sorted(errors)),
                           "retried later" if retry_at else "given up, shown in the console")

    async def run_forever(self) -> None:
        """:meth:`run_once` every :data:`EVERY_S` until cancelled; a failed round is logged
        (the kind of error only) and the next one tries again."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let notifications take the app down
                logger.error("notifications round failed: %s", type(exc).__name__)
            await pause(EVERY_S)

    async def aclose(self) -> None:
        for channel in self._channels:
            await channel.aclose()
