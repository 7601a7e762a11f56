"""Background jobs run once a round across every API worker (``api.models.JobRun``).

Each worker wakes for a job on its own timer and asks :func:`claim_round`; the worker whose
conditional update moves the job's ``started_at`` forward runs the round, every other finds
the round taken and skips it. One row update decides, the same on SQLite and PostgreSQL: no
lock is held while the job runs, and a worker that dies mid-round leaves nothing to clear
(the next round is due an interval later all the same).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.models import JobRun

DUE_FRACTION: float = 0.9
"""A round is due once this share of the interval has passed since the last one started:
workers' timers drift by milliseconds, and a claim missed by a hair would skip a whole
interval."""


async def claim_round(
    session: AsyncSession, job: str, *, now: datetime, interval: timedelta
) -> bool:
    """Take this round of ``job`` for the caller, committed; False when another worker
    started one less than ``DUE_FRACTION`` of ``interval`` ago."""
    due = now - interval * DUE_FRACTION
    taken = await session.execute(
        update(JobRun)
        .where(JobRun.name == job, JobRun.started_at <= due)
        .values(started_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount == 1:
        await session.commit()
        return True
    if await session.get(JobRun, job) is not None:
        await session.rollback()
        return False
    try:  # the job's first round anywhere
        await session.execute(insert(JobRun).values(name=job, started_at=now))
        await session.commit()
    except IntegrityError:  # another worker's first round, committed just before
        await session.rollback()
        return False
    return True
