"""Per-conversation locks: one holder at a time, first come first served, cleaned up."""

from __future__ import annotations

import asyncio

import pytest

from api.locks import KeyedLocks

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
