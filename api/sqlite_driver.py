"""The API's SQLite connections: one trip to the connection's thread per statement, and one
writer at a time, queued in the event loop.

aiosqlite runs each connection in a thread of its own, and SQLAlchemy's adapter makes four
trips there per query (open a cursor, execute, fetch, close), each a hand-over between threads
and a wake-up of the event loop. :class:`GatedConnection`
keeps aiosqlite's thread but makes one trip per statement: the statement is executed and its
rows fetched (up to :data:`FETCH_CHUNK`; a longer result keeps its cursor, and the rest comes
in further trips, as before) and the cursor closed, in one call. A commit or rollback with no
transaction open is not sent at all.

SQLite lets one connection write at a time; the others wait in SQLite's busy handler, which
polls with sleeps of up to 100 ms, so under load writes queued in threads got slow and then
failed with "database is locked". Here a connection takes the database's :class:`WriteGate`
(an ``asyncio.Lock``, first come first served) before its first write, and gives it back when
its transaction ends (commit, rollback, close): exactly when SQLite's own write lock is held,
so nothing waits that did not wait before, and waiting no longer polls. Waiting longer than
the busy timeout raises ``sqlite3.OperationalError("database is locked")``, as SQLite did.
Other processes (``api.cli``) still meet SQLite's busy timeout.

Within :func:`inline_statements` (the chat's hot path: a few point reads and writes by key),
statements run on the event loop itself, without the trip, wherever they cannot wait: reads
(WAL readers do not wait for writers), writes inside a transaction that already holds
SQLite's write lock, and commits. A transaction's first write may wait for another
process's write lock (``api.cli``): it is tried on the loop with no wait at all, and only when
the lock is taken does it go to the thread, to wait there with the busy timeout. Any
statement while a trip of the connection is still under way keeps the thread. A trip costs
the event loop and the thread about 0.1 ms of CPU; a point statement, a few microseconds.

A commit on the loop must never run SQLite's automatic checkpoint (it copies pages into the
database file and syncs the disk), so these connections turn it off and count commits on the
database's :class:`WriteGate` instead: every :data:`CHECKPOINT_EVERY`-th commit goes to the
thread, followed there, once the write lock is given back, by a passive checkpoint (which
never waits for readers or writers and never blocks them). Other processes keep SQLite's own.

Relies on aiosqlite's ``Connection._execute`` and ``_conn`` (pinned in constraints/api.txt;
``tests/api/test_sqlite_driver.py`` covers what is used).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any, NamedTuple

import aiosqlite

logger = logging.getLogger(__name__)

FETCH_CHUNK = 1000
"""Rows fetched in the statement's own trip; a longer result is fetched in further trips."""
CHECKPOINT_EVERY = 100
"""Commits of one database file (in this process) between passive checkpoints: a turn's
commit adds a few pages to the WAL, so it stays near SQLite's own default of 1000 pages."""
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
"""Statements that take SQLite's write lock (a transaction opens before the first three)."""


_INLINE: ContextVar[bool] = ContextVar("api_sqlite_inline", default=False)


@contextmanager
def inline_statements() -> Iterator[None]:
    """Within this block (in the current task only), statements that cannot wait run on the
    event loop, without a trip to the connection's thread (see the module's docstring).
    For short statements by key only: a long query would hold up every other request."""
    token = _INLINE.set(True)
    try:
        yield
    finally:
        _INLINE.reset(token)


def is_write(sql: str) -> bool:
    """True for a statement that needs SQLite's write lock."""
    return sql.lstrip()[:7].upper().startswith(WRITES)


class WriteGate:
    """One writer at a time on one database file, within this process (first come, first
    served); ``timeout`` seconds at most to wait, as SQLite's busy timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.restore_busy_timeout = f"PRAGMA busy_timeout = {round(timeout * 1000)}"
        """The statement that gives a connection its busy timeout back (made once)."""
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commits = 0

    def checkpoint_due(self) -> bool:
        """Count a commit; True for every :data:`CHECKPOINT_EVERY`-th (that commit checkpoints)."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return False
        self._commits = 0
        return True

    async def acquire(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None
        self._loop = asyncio.get_running_loop()

    def release(self) -> None:
        """Give the gate back; from another thread (a connection finalised by the garbage
        collector), through the event loop that holds it."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop or self._loop is None:
            self._lock.release()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._lock.release)


class _Outcome(NamedTuple):
    """What one statement's trip brings back."""

    description: Any
    rowcount: int
    lastrowid: Any
    rows: list[Any]
    """The first rows (at most :data:`FETCH_CHUNK`)."""
    rest: sqlite3.Cursor | None
    """The open cursor when more rows remain, else None (closed)."""
    in_transaction: bool


class GatedConnection(aiosqlite.Connection):
    """An aiosqlite connection with one thread trip per statement and the write gate."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], gate: WriteGate) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy's own aiosqlite connections: never block exit
        self._gate = gate
        self._writing = False
        """This connection holds the gate (from its first write until the transaction ends)."""
        self._in_transaction = False
        """SQLite's ``in_transaction`` after this connection's last statement."""
        self._trips_sent = 0
        """Trips queued for the thread (counted on the event loop only)."""
        self._trips_done = 0
        """Trips the thread has finished, awaited or not (counted in the thread only)."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """aiosqlite's trip, counted: a cancelled caller's trip may still be running."""
        function = partial(fn, *args, **kwargs)

        def counted() -> Any:
            try:
                return function()
            finally:
                self._trips_done += 1

        if not self._running or not self._connection:
            raise ValueError("Connection closed")  # as aiosqlite: nothing is queued
        self._trips_sent += 1
        return await super()._execute(counted)

    def _may_run_inline(self) -> bool:
        """True when a call may skip the trip: within :func:`inline_statements`, with no trip
        of this connection still under way. A first write must still not wait on the loop
        (:meth:`_first_write_inline`)."""
        if not _INLINE.get() or self._connection is None or not self._running:
            return False
        return self._trips_done == self._trips_sent  # else the thread is still at work

    def _first_write_inline(self, trip: Callable[[], _Outcome]) -> _Outcome | None:
        """A transaction's first write on the loop, with SQLite's busy timeout at zero: None,
        and nothing written, when another process holds the write lock. The transaction the
        statement began stays open, so the write can be sent again, to wait on the thread."""
        connection = self._conn
        connection.execute("PRAGMA busy_timeout = 0")
        try:
            return trip()
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                return None
            raise
        finally:
            connection.execute(self._gate.restore_busy_timeout)

    def cursor(self) -> _Cursor:  # type: ignore[override]
        return _Cursor(self)

    async def _statement(
        self, run: Callable[[sqlite3.Cursor], object], sql: str
    ) -> _Outcome:
        """Run one statement (``run`` executes it on a fresh cursor) in one thread trip."""
        if not self._writing and is_write(sql):
            await self._gate.acquire()
            self._writing = True

        def trip() -> _Outcome:
            connection = self._conn
            cursor = connection.cursor()
            keep: sqlite3.Cursor | None = None
            try:
                run(cursor)
                rows: list[Any] = []
                if cursor.description is not None:
                    rows = cursor.fetchmany(FETCH_CHUNK)
                    if len(rows) == FETCH_CHUNK:
                        keep = cursor
                return _Outcome(
                    cursor.description, cursor.rowcount, cursor.lastrowid, rows, keep,
                    connection.in_transaction,
                )
            finally:
                if keep is None:
                    cursor.close()

        try:
            outcome: _Outcome | None = None
            if self._may_run_inline():
                if not is_write(sql) or (self._writing and self._in_transaction):
                    outcome = trip()
                else:
                    outcome = self._first_write_inline(trip)
            if outcome is None:
                outcome = await self._execute(trip)
        except BaseException:
            # Failed or cancelled: a transaction may be open (SQLite began it before a write
            # that then failed). Taken as open: the rollback or close that follows any failure
            # is sent, and gives the gate back.
            self._in_transaction = True
            raise
        self._in_transaction = outcome.in_transaction
        self._ended_unless_in_transaction()
        return outcome

    def _ended_unless_in_transaction(self) -> None:
        if self._writing and not self._in_transaction:
            self._writing = False
            self._gate.release()

    def _ended(self) -> None:
        self._in_transaction = False
        if self._writing:
            self._writing = False
            self._gate.release()

    async def commit(self) -> None:
        if not self._in_transaction:  # nothing to commit (reads run outside transactions)
            return
        checkpoint = self._gate.checkpoint_due()
        try:
            if not checkpoint and self._may_run_inline():
                self._conn.commit()
            else:
                await super().commit()
        finally:
            # A failed commit leaves the transaction open: the rollback that follows ends it.
            if not self._conn_in_transaction():
                self._ended()
        if checkpoint:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """A passive checkpoint, on the thread. Its failure is only logged: the commit
        before it stands, and the next checkpoint copies what this one did not."""
        try:
            await self._execute(lambda: self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
        except sqlite3.Error as error:
            logger.warning("WAL checkpoint failed (%s); the next one retries", type(error).__name__)

    async def rollback(self) -> None:
        if not self._in_transaction and not self._writing:
            return
        try:
            if self._may_run_inline():
                self._conn.rollback()
            else:
                await super().rollback()
        finally:
            self._ended()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._ended()

    def stop(self) -> asyncio.Future[Any] | None:
        future = super().stop()
        self._ended()
        return future

    def _conn_in_transaction(self) -> bool:
        connection = self._connection
        return connection is not None and connection.in_transaction


class _Cursor:
    """What SQLAlchemy's aiosqlite adapter uses of a cursor, executing in one trip."""

    arraysize = 1

    def __init__(self, connection: GatedConnection) -> None:
        self._connection = connection
        self._rows: deque[Any] = deque()
        self._rest: sqlite3.Cursor | None = None
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: Any = None

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _run(self, run: Callable[[sqlite3.Cursor], object], sql: str) -> _Cursor:
        await self.close()
        outcome = await self._connection._statement(run, sql)
        self.description, self.rowcount, self.lastrowid = (
            outcome.description, outcome.rowcount, outcome.lastrowid
        )
        self._rows, self._rest = deque(outcome.rows), outcome.rest
        return self

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        params = () if parameters is None else parameters
        return await self._run(lambda cursor: cursor.execute(sql, params), sql)

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> _Cursor:
        rows = list(parameters)
        return await self._run(lambda cursor: cursor.executemany(sql, rows), sql)

    async def _more(self) -> None:
        """Fetch the next chunk of a long result (one trip), closing its cursor at the end."""
        rest = self._rest
        if rest is None:
            return

        def trip() -> list[Any]:
            rows = rest.fetchmany(FETCH_CHUNK)
            if len(rows) < FETCH_CHUNK:
                rest.close()
            return rows

        connection = self._connection
        rows = trip() if connection._may_run_inline() else await connection._execute(trip)
        if len(rows) < FETCH_CHUNK:
            self._rest = None
        self._rows.extend(rows)

    async def fetchone(self) -> Any:
        if not self._rows:
            await self._more()
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        while len(self._rows) < wanted and self._rest is not None:
            await self._more()
        return [self._rows.popleft() for _ in range(min(wanted, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        while self._rest is not None:
            await self._more()
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        rest, self._rest = self._rest, None
        if rest is not None and self._connection._connection is not None:
            await self._connection._execute(rest.close)


def async_creator(database: str, busy_timeout: float) -> Callable[[], Awaitable[GatedConnection]]:
    """SQLAlchemy's ``async_creator`` for the SQLite file ``database``: its connections share
    one :class:`WriteGate`. ``busy_timeout`` (seconds) bounds the wait for the gate and, for
    other processes' writes, SQLite's own busy handler."""
    gate = WriteGate(busy_timeout)

    def connector() -> sqlite3.Connection:
        # Opened in the connection's thread; used from the event loop only while no trip
        # runs (SQLAlchemy sends one statement at a time). Commits checkpoint by count.
        connection = sqlite3.connect(database, timeout=busy_timeout, check_same_thread=False)
        connection.execute("PRAGMA wal_autocheckpoint = 0")
        return connection

    async def create() -> GatedConnection:
        return await GatedConnection(connector, gate)

    return create
