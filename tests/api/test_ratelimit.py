"""The sliding-window rate limits: in memory, and shared by every worker through a real Redis
(two ``RateLimits`` on one Redis are two workers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from api.ratelimit import KEY_PREFIX, RateLimiter, RateLimits, SharedRateLimiter
from ops.stack import free_port

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_allows_the_limit_then_refuses_with_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(3, window=60, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert limiter.hit("a") == 40
    assert limiter.hit("b") is None  # keys are independent


def test_window_slides_and_refused_requests_are_not_counted() -> None:
    clock = Clock()
    limiter = RateLimiter(2, window=60, clock=clock)
    limiter.hit("a")
    clock.now += 30
    limiter.hit("a")
    for _ in range(5):
        assert limiter.hit("a") is not None
    clock.now += 30.5  # the first hit left the window; the refused ones never entered it
    assert limiter.hit("a") is None
    assert limiter.hit("a") is not None


def test_retry_after_is_at_least_one_second() -> None:
    clock = Clock()
    limiter = RateLimiter(1, window=60, clock=clock)
    limiter.hit("a")
    clock.now += 59.99
    assert limiter.hit("a") == 1


def test_zero_disables() -> None:
    limiter = RateLimiter(0)
    assert all(limiter.hit("a") is None for _ in range(1000))
    assert len(limiter) == 0


def test_stale_keys_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(5, window=60, clock=clock, prune_every=10)
    for i in range(9):
        limiter.hit(f"ip-{i}")
    assert len(limiter) == 9
    clock.now += 61
    limiter.hit("fresh")  # the tenth hit prunes
    assert len(limiter) == 1


@pytest.fixture
async def two_workers(redis_url: str) -> AsyncIterator[tuple[RateLimits, RateLimits]]:
    first, second = RateLimits(redis_url, SECRET), RateLimits(redis_url, SECRET)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.mark.anyio
async def test_workers_count_one_limit_together(
    two_workers: tuple[RateLimits, RateLimits],
) -> None:
    a, b = (w.limiter("messages", 3) for w in two_workers)
    assert isinstance(a, SharedRateLimiter)
    assert [await a.take("conv"), await b.take("conv"), await a.take("conv")] == [None] * 3
    wait = await b.take("conv")
    assert wait is not None and 1 <= wait <= 60
    assert await a.take("other") is None  # keys are independent
    assert await two_workers[0].limiter("history", 3).take("conv") is None  # and so are limits


@pytest.mark.anyio
async def test_the_window_slides_in_redis_and_refused_requests_are_not_counted(
    two_workers: tuple[RateLimits, RateLimits],
) -> None:
    a = SharedRateLimiter(two_workers[0], "messages", 2, window=0.4)
    b = SharedRateLimiter(two_workers[1], "messages", 2, window=0.4)
    assert await a.take("k") is None
    await asyncio.sleep(0.2)
    assert await b.take("k") is None
    assert await a.take("k") == 1  # refused, and not counted
    await asyncio.sleep(0.25)  # the first hit has left the window, the second has not
    assert await b.take("k") is None
    assert await a.take("k") is not None


@pytest.mark.anyio
async def test_redis_holds_a_keyed_hash_that_expires_never_the_address(
    two_workers: tuple[RateLimits, RateLimits], redis_url: str
) -> None:
    await two_workers[0].limiter("conversations", 5).take("203.0.113.7")
    client = aioredis.from_url(redis_url)
    try:
        keys = [key.decode() async for key in client.scan_iter("*")]
        assert len(keys) == 1 and keys[0].startswith(KEY_PREFIX + "conversations:")
        assert "203.0.113.7" not in keys[0]
        members = await client.zrange(keys[0], 0, -1)
        assert not any(b"203.0.113" in m for m in members)
        assert 0 < await client.pttl(keys[0]) <= 60_000
    finally:
        await client.aclose()
    other_secret = RateLimits(redis_url, b"t" * 32)
    assert other_secret.digest("203.0.113.7") != two_workers[0].digest("203.0.113.7")
    await other_secret.close()


@pytest.mark.anyio
async def test_without_redis_each_worker_counts_alone_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = RateLimits(f"redis://127.0.0.1:{free_port()}/0", SECRET)
    try:
        limiter = gone.limiter("messages", 2)
        with caplog.at_level(logging.WARNING, logger="api.ratelimit"):
            results = [await limiter.take("k") for _ in range(3)]
        assert results[:2] == [None, None] and results[2] is not None  # the limit still holds
        outages = [r for r in caplog.records if "Redis does not answer" in r.getMessage()]
        assert len(outages) == 1
    finally:
        await gone.close()


@pytest.mark.anyio
async def test_a_redis_that_stops_answering_is_counted_around_then_used_again(
    redis_url: str,
) -> None:
    """Redis paused (every client's commands held, as a stalled server): the worker gives up
    after ``REDIS_TIMEOUT_S`` and counts in memory; once Redis answers, the shared count
    resumes (what was counted in memory meanwhile stays there)."""
    limits, other = RateLimits(redis_url, SECRET), RateLimits(redis_url, SECRET)
    admin = aioredis.from_url(redis_url)
    try:
        limiter, elsewhere = limits.limiter("messages", 2), other.limiter("messages", 2)
        assert await elsewhere.take("k") is None  # Redis: 1 of 2
        await admin.execute_command("CLIENT", "PAUSE", 1000, "ALL")
        started = asyncio.get_running_loop().time()
        assert await limiter.take("k") is None  # in memory: 1 of 2
        assert asyncio.get_running_loop().time() - started < 0.9  # not held for the pause
        await asyncio.sleep(1.1)
        assert await limiter.take("k") is None  # Redis again: 2 of 2
        assert await elsewhere.take("k") is not None
    finally:
        await admin.aclose()
        await limits.close()
        await other.close()


@pytest.mark.anyio
async def test_no_redis_url_means_limits_in_this_process() -> None:
    limits = RateLimits("", b"")
    assert not limits.shared
    limiter = limits.limiter("messages", 1)
    assert isinstance(limiter, RateLimiter)
    assert await limiter.take("k") is None and await limiter.take("k") is not None
    await limits.close()
