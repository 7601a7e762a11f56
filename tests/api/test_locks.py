"""Per-conversation locks: one holder at a time, first come first served, cleaned up; on
PostgreSQL across workers too (two ``SharedLocks`` on two engines are two workers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from api.locks import KeyedLocks, SharedLocks, advisory_key, conversation_locks

pytestmark = pytest.mark.anyio


async def test_same_key_runs_one_at_a_time_in_arrival_order() -> None:
    locks = KeyedLocks()
    order: list[int] = []
    active = 0
    peak = 0

    async def turn(i: int) -> None:
        nonlocal active, peak
        async with locks.hold("c"):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01 * ((7 * i) % 3))
            order.append(i)
            active -= 1

    tasks = []
    for i in range(8):
        tasks.append(asyncio.create_task(turn(i)))
        await asyncio.sleep(0)  # arrival order = i
    await asyncio.gather(*tasks)
    assert order == list(range(8))
    assert peak == 1
    assert len(locks) == 0


async def test_different_keys_do_not_wait_for_each_other() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"):
        await asyncio.wait_for(_enter(locks, "b"), timeout=0.5)
    assert len(locks) == 0


async def _enter(locks: KeyedLocks, key: str) -> None:
    async with locks.hold(key):
        pass


async def test_cancelled_waiter_is_cleaned_up() -> None:
    locks = KeyedLocks()
    async with locks.hold("c"):
        waiter = asyncio.create_task(_enter(locks, "c"))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert len(locks) == 1
    assert len(locks) == 0


async def test_error_inside_releases_the_lock() -> None:
    locks = KeyedLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("c"):
            raise RuntimeError("boom")
    await asyncio.wait_for(_enter(locks, "c"), timeout=0.5)
    assert len(locks) == 0


WAITING = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.fixture
async def workers(postgres_url: str) -> AsyncIterator[list[SharedLocks]]:
    """The locks of six API workers on one PostgreSQL database."""
    made = [SharedLocks.for_url(postgres_url) for _ in range(6)]
    try:
        yield made
    finally:
        for locks in made:
            await locks.close()


async def _waiting_in_database(url: str, count: int) -> None:
    """Until PostgreSQL shows ``count`` connections waiting for an advisory lock."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            for _ in range(500):
                if await connection.scalar(WAITING) == count:
                    return
                await connection.rollback()  # a new snapshot of pg_locks
                await asyncio.sleep(0.01)
    finally:
        await engine.dispose()
    raise AssertionError(f"never {count} waiting")


async def test_workers_take_turns_on_one_conversation_in_the_order_they_asked(
    workers: list[SharedLocks], postgres_url: str
) -> None:
    order: list[int] = []
    active = 0
    peak = 0

    async def turn(i: int) -> None:
        nonlocal active, peak
        async with workers[i].hold("c"):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.02)
            order.append(i)
            active -= 1

    tasks = []
    async with workers[0].hold("c"):
        for i in range(1, len(workers)):
            tasks.append(asyncio.create_task(turn(i)))
            await _waiting_in_database(postgres_url, i)  # arrival order = i
    await asyncio.gather(*tasks)
    assert order == list(range(1, len(workers)))
    assert peak == 1


async def test_workers_do_not_wait_for_each_other_on_different_conversations(
    workers: list[SharedLocks],
) -> None:
    async with workers[0].hold("a"):
        await asyncio.wait_for(_enter(workers[1], "b"), timeout=5)


async def test_a_worker_that_dies_holding_the_lock_frees_it_at_once(
    workers: list[SharedLocks], postgres_url: str
) -> None:
    """A killed worker's connection ends; PostgreSQL ends its lock with it. The holder's own
    release then finds the connection gone and does not fail the turn it finished."""
    engine = create_async_engine(postgres_url)
    async with workers[0].hold("c"):
        waiter = asyncio.create_task(_enter(workers[1], "c"))
        await _waiting_in_database(postgres_url, 1)
        async with engine.connect() as admin:  # what the worker's death does to its connection
            killed = await admin.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ))
        assert killed == 1
        await asyncio.wait_for(waiter, timeout=5)
    await engine.dispose()
    await asyncio.wait_for(_enter(workers[0], "c"), timeout=5)  # its pool recovered


async def test_locks_follow_the_database(postgres_url: str) -> None:
    shared = conversation_locks(postgres_url)
    try:
        assert isinstance(shared, SharedLocks) and shared.shared
    finally:
        await shared.close()
    alone = conversation_locks("sqlite+aiosqlite:////tmp/x.db")
    assert type(alone) is KeyedLocks and not alone.shared


async def test_an_unreachable_database_fails_before_the_turn_runs(postgres_url: str) -> None:
    from ops.stack import free_port
    from sqlalchemy.engine import make_url

    gone = make_url(postgres_url).set(port=free_port()).render_as_string(hide_password=False)
    locks = SharedLocks.for_url(gone)
    ran = False
    try:
        with pytest.raises((SQLAlchemyError, OSError)):
            async with locks.hold("c"):
                ran = True
    finally:
        await locks.close()
    assert not ran
    assert len(locks) == 0


def test_the_advisory_key_is_a_stable_signed_64_bit_number() -> None:
    keys = {advisory_key(f"conversation-{i}") for i in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= k < 2**63 for k in keys)
    assert advisory_key("abc") == advisory_key("abc")  # every worker computes the same
