"""The field test's anonymous results, as the API keeps them (``api.models.FieldCheckCount``).

A finished check sends one ``field_check`` block (``contract.payloads``: phase, knowledge
score, SURE yes count). It is counted here, whatever the transcript consent: one more in the
row of its month, phase, score and SURE count. Nothing else of the turn goes with it: not the
conversation's id, not the time, not the answers. The staff console reads the counts
(``api.staff.field_check``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from api.bot_data import FieldCheck
from api.models import FieldCheckCount


def month_of(now: datetime) -> str:
    """``YYYY-MM`` of ``now`` in UTC."""
    return now.astimezone(UTC).strftime("%Y-%m")


async def record(session: AsyncSession, result: FieldCheck, now: datetime) -> None:
    """Count ``result`` in its month (an upsert, so two workers never lose a count)."""
    key = {"month": month_of(now), "phase": result.phase, "knowledge": result.knowledge,
           "sure": result.sure}
    bind = session.get_bind()
    dialect = bind.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        statement = insert(FieldCheckCount).values(**key, checks=1).on_conflict_do_update(
            index_elements=list(key), set_={"checks": FieldCheckCount.checks + 1}
        )
        await session.execute(statement)
        return
    # Any other database: add to the row, or create it.
    changed = await session.execute(
        update(FieldCheckCount)
        .where(*(getattr(FieldCheckCount, k) == v for k, v in key.items()))
        .values(checks=FieldCheckCount.checks + 1)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        session.add(FieldCheckCount(**key, checks=1))


async def stored_counts(session: AsyncSession) -> list[FieldCheckCount]:
    """Every row, newest month first (for the console and the tests)."""
    rows = await session.scalars(
        select(FieldCheckCount).order_by(
            FieldCheckCount.month.desc(), FieldCheckCount.phase.desc(),
            FieldCheckCount.knowledge, FieldCheckCount.sure,
        )
    )
    return list(rows)
