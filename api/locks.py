"""Per-conversation locks, so the turns of one conversation are handled one at a time, in order.

These locks hold inside one process only. With several API workers (or hosts) a turn also
needs a database-level lock held from reading the conversation until its replies are stored.
``crud.get_conversation_for_update`` already takes ``SELECT ... FOR UPDATE`` on the
conversation row, but that row lock ends with the commit that stores the patient's message
before Rasa is called; on PostgreSQL hold a session-level advisory lock instead
(``pg_advisory_lock(hashtext(conversation_id))`` on a dedicated connection, released after
the reply is committed), or keep one conversation on one worker (sticky routing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class KeyedLocks:
    """A lock per key, created on first use and dropped when nobody holds or waits for it.

    asyncio.Lock wakes waiters first come, first served, so turns run in arrival order.
    All bookkeeping happens between awaits on one event loop, so it needs no further locking.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0 and self._entries.get(key) is entry:
                del self._entries[key]
