"""Per-conversation locks, so the turns of one conversation are handled one at a time, in order.

* :class:`KeyedLocks` holds inside one process: enough for one API worker (the SQLite
  set-up, which runs one).
* :class:`SharedLocks` adds a PostgreSQL advisory lock per conversation, so several workers
  (on one host or many) sharing one PostgreSQL database take turns too. A turn waits for its
  own worker's lock first, so each worker sends at most one waiter per conversation to the
  database.

Why PostgreSQL and not Redis: the lock guards what is written to PostgreSQL (the messages
and their ``seq``), and PostgreSQL ends a transaction's advisory lock the moment its holder's
connection goes (a worker killed mid-turn frees it at once), with no expiry to guess against a
turn's length: a Redis lock needs one, and a turn outliving it would let a second worker in.
Waiters are granted the lock in the order they asked, across workers. With Redis down, chat
turns still take turns (Redis holds only shared rate limits here, and Rasa's own lock store).
The cost: a turn holds a connection of a small pool of its own (:data:`LOCK_POOL_SIZE`)
while it runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

LOCK_POOL_SIZE: int = 20
"""Connections a worker keeps for conversation locks: as many conversations can be mid-turn
at once on one worker (more wait for a connection, in turn)."""
LOCK_MAX_OVERFLOW: int = 20
"""More connections opened for a burst and closed after it."""

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def advisory_key(key: str) -> int:
    """The signed 64-bit advisory-lock key of a conversation id (the same in every worker)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8, person=b"meso-conv").digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class KeyedLocks:
    """A lock per key, created on first use and dropped when nobody holds or waits for it.

    asyncio.Lock wakes waiters first come, first served, so turns run in arrival order.
    All bookkeeping happens between awaits on one event loop, so it needs no further locking.
    """

    shared = False
    """Whether the locks hold across processes."""

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

    async def close(self) -> None:
        """Release what the locks keep open (nothing, in one process)."""


class SharedLocks(KeyedLocks):
    """:class:`KeyedLocks`, then a PostgreSQL transaction-level advisory lock on the key.

    The advisory lock is taken in a transaction of its own, on a connection of the locks'
    own pool (never one a turn's session needs, so holders cannot starve each other), and
    ends with that transaction when the holder leaves, or with the connection when the
    holder's process dies. Failing to reach the database raises SQLAlchemy's error before
    the caller's block runs.
    """

    shared = True

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__()
        self._engine = engine

    @classmethod
    def for_url(cls, url: str) -> SharedLocks:
        """Locks on the PostgreSQL database at ``url`` (an asyncpg URL), with their own pool.
        Unlike ``api.db.create_engine``'s, its connections are pinged before each use (one
        round trip a turn): after a PostgreSQL restart with no turn running, a dropped
        connection would otherwise fail the next turn while the database is back."""
        engine = create_async_engine(
            url, pool_size=LOCK_POOL_SIZE, max_overflow=LOCK_MAX_OVERFLOW, pool_pre_ping=True
        )
        return cls(engine)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with super().hold(key):
            connection = await self._engine.connect()
            try:
                await connection.begin()
                await connection.execute(_LOCK, {"key": advisory_key(key)})
                yield
            finally:
                await _release(connection)

    async def close(self) -> None:
        await self._engine.dispose()


async def _release(connection: AsyncConnection) -> None:
    """End the lock's transaction (which ends the lock) and give the connection back.

    A connection the database dropped meanwhile took the lock with it: nothing to release,
    and the caller's work, already done, is not failed for it.
    """
    try:
        await connection.rollback()
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("conversation lock: its connection was lost (%s)", type(exc).__name__)
        await connection.invalidate()
    finally:
        await connection.close()


def conversation_locks(database_url: str) -> KeyedLocks:
    """The locks for the API's database: shared on PostgreSQL, in-process otherwise."""
    if database_url.startswith("postgresql"):
        return SharedLocks.for_url(database_url)
    return KeyedLocks()
