"""The in-memory sliding-window rate limiter."""

from __future__ import annotations

from api.ratelimit import RateLimiter


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
