"""The scheduled scrub: erased conversations' bytes out of PostgreSQL's table files.

An erasure deletes the rows and, at once, leaves nothing of them in a SQLite file
(``secure_delete`` and a WAL checkpoint, :func:`api.db.scrub_erased`). PostgreSQL has no
such pragma: after the erasure's ``VACUUM`` the deleted rows' bytes can stay in free space
inside the pages. :func:`scrub` rewrites the tables that hold conversations (``VACUUM
FULL``: new files, the old ones removed), the API's and Rasa's events table alike, so that
within one ``MESO_SCRUB_INTERVAL_HOURS`` of an erasure nothing of it is left in either
database's files. Each table is locked while it is copied (a clinic's tables take well under
a second); the lock is waited for no longer than ``api.db.API_BUSY_TIMEOUT_MS``, so a chat
turn queued behind it waits no more than that, and a scrub that could not get a lock is
logged and done in the next round (or at once with ``python -m api.cli scrub``).

:func:`scrub_forever` runs it from the app's lifespan, once a round across every worker
(:func:`api.jobs.claim_round`). On SQLite it has nothing left to do and does not run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db import scrub_erased
from api.background import pause
from api.jobs import claim_round
from api.models import CONVERSATION_TABLES, utcnow
from api.tracker_store import TrackerStore

logger = logging.getLogger(__name__)

SCRUB_JOB = "scrub_erased"
"""The scrub's name among the background jobs (``api.models.JobRun``)."""


async def scrub(engine: AsyncEngine, tracker: TrackerStore) -> bool:
    """Rewrite the API's conversation tables and Rasa's events table (on SQLite: the WAL
    checkpoint only). True when both finished."""
    api_done = await scrub_erased(engine, CONVERSATION_TABLES, rewrite=True)
    rasa_done = await tracker.scrub(rewrite=True)
    return api_done and rasa_done


async def scrub_forever(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    tracker: TrackerStore,
    *,
    interval: float,
    across_workers: bool,
) -> None:
    """Run :func:`scrub` every ``interval`` seconds (the first round at once, if no worker
    ran one within the interval), until cancelled. A failure is logged (the kind of error
    only) and the next round tries again."""
    every = timedelta(seconds=interval)
    while True:
        try:
            if across_workers:
                async with sessionmaker() as session:
                    due = await claim_round(session, SCRUB_JOB, now=utcnow(), interval=every)
            else:
                due = True
            if due and await scrub(engine, tracker):
                logger.info("scrub: the conversation tables were rewritten")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let the scrub take the app down
            logger.error("scrub failed: %s", type(exc).__name__)
        await pause(interval)
