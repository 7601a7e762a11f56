"""Background jobs claimed once a round across workers (``api.jobs``), on SQLite and on a
real PostgreSQL shared by several workers (each worker its own engine)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db import create_engine, create_sessionmaker, upgrade_head
from api.jobs import DUE_FRACTION, claim_round
from api.models import utcnow

pytestmark = pytest.mark.anyio

INTERVAL = timedelta(seconds=60)


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'meso.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    await upgrade_head(engine)
    await engine.dispose()
    yield url


async def _claim(engine: AsyncEngine, now_offset: timedelta = timedelta()) -> bool:
    async with create_sessionmaker(engine)() as session:
        return await claim_round(session, "purge", now=utcnow() + now_offset, interval=INTERVAL)


async def test_a_round_is_claimed_once_then_again_when_due(url: str) -> None:
    engine = create_engine(url)
    try:
        assert await _claim(engine)  # the first round ever
        assert not await _claim(engine)  # taken
        assert not await _claim(engine, INTERVAL * (DUE_FRACTION - 0.05))
        assert await _claim(engine, INTERVAL * (DUE_FRACTION + 0.05))  # due
        assert not await _claim(engine, INTERVAL * (DUE_FRACTION + 0.1))
    finally:
        await engine.dispose()


async def test_of_workers_waking_together_exactly_one_runs_the_round(url: str) -> None:
    engines = [create_engine(url) for _ in range(6)]
    try:
        for offset in (timedelta(), INTERVAL):  # the first round ever, then a later one
            won = await asyncio.gather(*(_claim(engine, offset) for engine in engines))
            assert sum(won) == 1, won
    finally:
        for engine in engines:
            await engine.dispose()
