"""In-memory sliding-window rate limits (per process).

Keys are conversation ids or client IP addresses; IPs live only here, in memory, and are
forgotten a window after their last request. With several API workers each enforces its
own limit; a shared store (e.g. Redis) would be needed for one global limit.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


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
