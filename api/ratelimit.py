"""Sliding-window rate limits: in one process (:class:`RateLimiter`), or shared by every API
worker through Redis (:class:`SharedRateLimiter`, made by :class:`RateLimits`).

Keys are conversation ids or client IP addresses. In memory, IPs live only here and are
forgotten a window after their last request. In Redis, a key is stored only as a keyed hash
(HMAC-SHA256 under a key derived from ``MESO_LINK_SECRET``, which every worker shares), in an
entry that expires a window after its last hit: the IP itself never reaches Redis.

While Redis does not answer, each worker falls back to its own in-memory limit (so a client
can get up to the limit times the number of workers), logs that once a minute, and uses
Redis again as soon as it answers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S: float = 0.25
"""How long a request waits for Redis (to connect, then to answer) before the worker counts
it in memory instead: a rate limit must never hold a patient up."""
OUTAGE_LOG_EVERY_S: float = 60.0
KEY_PREFIX = "meso:rate:"


class Limiter(Protocol):
    """What the routes need of a rate limit."""

    limit: int

    async def take(self, key: str) -> int | None:
        """Count one request for ``key``: None when allowed, else whole seconds to wait
        (for Retry-After). A refused request is not counted."""


class RateLimiter:
    """Allow at most ``limit`` hits per key within any ``window`` seconds; ``limit=0`` disables."""

    def __init__(
        self,
        limit: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        prune_every: int = 1000,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._prune_every = prune_every
        self._since_prune = 0

    def __len__(self) -> int:
        return len(self._hits)

    async def take(self, key: str) -> int | None:
        return self.hit(key)

    def hit(self, key: str) -> int | None:
        """Count one request for ``key``.

        Returns None when it is allowed, else the whole seconds to wait (for Retry-After);
        a refused request is not counted.
        """
        if self.limit <= 0:
            return None
        now = self._clock()
        cutoff = now - self.window
        hits = self._hits.get(key)
        if hits is not None:
            while hits and hits[0] <= cutoff:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
        else:
            hits = self._hits[key] = deque()
        hits.append(now)
        self._since_prune += 1
        if self._since_prune >= self._prune_every:
            self._prune(cutoff)
        return None

    def _prune(self, cutoff: float) -> None:
        self._since_prune = 0
        stale = [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]
        for key in stale:
            del self._hits[key]


_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, math.ceil((tonumber(oldest[2]) + window - now) / 1000))
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
"""One hit, atomically, on Redis's own clock (the same for every worker): drop hits older than
the window, refuse (with the seconds until the oldest leaves it) when ``limit`` remain, else
add this one and keep the entry one window past it. Returns 0 when allowed."""


class SharedRateLimiter:
    """The same limit as :class:`RateLimiter`, counted in Redis for every worker at once."""

    def __init__(
        self, store: RateLimits, name: str, limit: int, window: float = 60.0
    ) -> None:
        self.limit = limit
        self.window = window
        self._store = store
        self._prefix = f"{KEY_PREFIX}{name}:"
        self._fallback = RateLimiter(limit, window)

    async def take(self, key: str) -> int | None:
        if self.limit <= 0:
            return None
        try:
            wait = await self._store.count(
                self._prefix + self._store.digest(key), round(self.window * 1000), self.limit
            )
        except (RedisError, OSError) as exc:
            self._store.note_outage(exc)
            return self._fallback.hit(key)
        return int(wait) or None


class RateLimits:
    """Makes the API's rate limiters: shared through Redis at ``redis_url``, or (without
    one) each in this process. ``secret`` keys the hashes that stand for keys in Redis; empty,
    a random one is made (each worker then counts a client apart)."""

    def __init__(self, redis_url: str, secret: bytes, clock: Callable[[], float] = time.monotonic) -> None:
        self._redis: Redis | None = None
        if redis_url:
            self._redis = Redis.from_url(
                redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0),
            )
            self._script = self._redis.register_script(_SLIDING_WINDOW)
        if redis_url and not secret:
            logger.warning("MESO_LINK_SECRET is not set: each worker keys its rate-limit hashes "
                           "itself, so a client is counted apart by each worker")
        key = secret or secrets.token_bytes(32)
        self._hash_key = hmac.new(key, b"meso rate-limit keys", hashlib.sha256).digest()
        self._clock = clock
        self._outage_logged: float | None = None

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def limiter(self, name: str, limit: int) -> Limiter:
        """A limiter of ``limit`` requests a minute, named ``name`` in Redis."""
        if self._redis is None:
            return RateLimiter(limit)
        return SharedRateLimiter(self, name, limit)

    def digest(self, key: str) -> str:
        """What stands for ``key`` in Redis: a keyed hash, not the key (an IP address)."""
        return hmac.new(self._hash_key, key.encode(), hashlib.sha256).hexdigest()[:32]

    async def count(self, redis_key: str, window_ms: int, limit: int) -> int:
        token = secrets.token_hex(8)
        return int(await self._script(keys=[redis_key], args=[window_ms, limit, token]))

    def note_outage(self, exc: BaseException) -> None:
        now = self._clock()
        if self._outage_logged is None or now - self._outage_logged >= OUTAGE_LOG_EVERY_S:
            self._outage_logged = now
            logger.warning(
                "rate limits: Redis does not answer (%s); each worker counts alone meanwhile",
                type(exc).__name__,
            )

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
