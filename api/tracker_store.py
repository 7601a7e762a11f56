"""Rasa's tracker store, seen from the API: to erase a conversation's events there, and to
check that Rasa really keeps them there (``/readyz``).

Rasa's ``SQLTrackerStore`` keeps every event of every conversation in one table, ``events``
(``sender_id`` is the conversation id). Erasing a conversation everywhere means deleting
its rows there too; Rasa reads the table afresh for every message, so nothing of it stays
in Rasa. The table appears only once Rasa has stored a first event (and a SQLite file only
once Rasa has opened it): until then there is nothing to erase.
"""

from __future__ import annotations

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.db import SQLITE_BUSY_TIMEOUT_MS, scrub_erased, sqlite_file, sqlite_secure_delete
from api.settings import normalise_database_url

EVENTS_TABLE = "events"


class TrackerStoreMissing(Exception):
    """Rasa's tracker database, or its events table, is not there."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _has_events_table(connection: Connection) -> bool:
    return inspect(connection).has_table(EVENTS_TABLE)


class TrackerStore:
    """Deletes conversations' events from Rasa's tracker database (``MESO_TRACKER_URL``).

    Its own small engine, so Rasa's database is never migrated or reconfigured by the API
    (for SQLite: no WAL switch, just a busy timeout while Rasa writes, and ``secure_delete``
    on the API's own connections, so the deleted events are overwritten with zeros; after
    the delete a WAL checkpoint empties the ``-wal`` file if Rasa uses WAL mode; on
    PostgreSQL the events table is vacuumed instead).
    """

    def __init__(self, url: str) -> None:
        url = normalise_database_url(url)
        self._file = sqlite_file(url)
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000} if self._file else {}
        self._engine: AsyncEngine = create_async_engine(
            url, connect_args=connect_args, pool_pre_ping=True
        )
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine.sync_engine, "connect", sqlite_secure_delete)

    async def erase(self, sender_id: str) -> int:
        """Delete every event of conversation ``sender_id``; return how many there were."""
        if self._file is not None and not self._file.exists():
            return 0  # Rasa has not created its database yet (and this must not create it)
        async with self._engine.begin() as connection:
            if not await connection.run_sync(_has_events_table):
                return 0
            result = await connection.execute(
                text(f"DELETE FROM {EVENTS_TABLE} WHERE sender_id = :sender_id"),
                {"sender_id": sender_id},
            )
            deleted = int(result.rowcount or 0)
        await self.scrub()  # committed: now the older copies
        return deleted

    async def check(self) -> None:
        """Raise unless the database answers and holds Rasa's events table.

        Rasa creates the table when it starts; without it Rasa has fallen back to keeping
        conversations in memory (its database failed), which nothing else would show. Reading
        the table's definition takes SQLite's shared lock, so a locked database is seen too.
        """
        if self._file is not None and not self._file.exists():
            raise TrackerStoreMissing("no tracker database")
        async with self._engine.connect() as connection:
            if not await connection.run_sync(_has_events_table):
                raise TrackerStoreMissing("no events table")

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``: the database Rasa keeps its events in."""
        return str(self._engine.dialect.name)

    async def scrub(self, *, rewrite: bool = False) -> bool:
        """:func:`api.db.scrub_erased` of Rasa's events table (``rewrite``: on PostgreSQL,
        ``VACUUM FULL``, for ``api.scrub``'s schedule)."""
        if self._file is not None and not self._file.exists():
            return True
        async with self._engine.connect() as connection:
            if not await connection.run_sync(_has_events_table):
                return True
        return await scrub_erased(self._engine, (EVENTS_TABLE,), rewrite=rewrite)

    async def dispose(self) -> None:
        await self._engine.dispose()
