"""The API's SQLite connections (``api.sqlite_driver``): one writer at a time, first come first
served, the busy timeout kept, every row of a long result returned, point statements on the
event loop only where nothing can wait."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.db import create_engine
from api.sqlite_driver import (
    CHECKPOINT_EVERY,
    FETCH_CHUNK,
    GatedConnection,
    async_creator,
    inline_statements,
    is_write,
)

pytestmark = pytest.mark.anyio


async def _with_table(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))
    return engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The app's own engine (``api.db.create_engine``) on a fresh file."""
    engine = await _with_table(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"))
    yield engine
    await engine.dispose()


@pytest.fixture
async def short_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """The same connections with a 0.2 s busy timeout."""
    database = str(tmp_path / "short.db")
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{database}",
        async_creator=async_creator(database, busy_timeout=0.2),
    )
    yield await _with_table(engine)
    await engine.dispose()


def test_writes_are_the_statements_that_take_the_write_lock() -> None:
    assert is_write("INSERT INTO t VALUES (1)")
    assert is_write("  update t SET who = 'x'")
    assert is_write("DELETE FROM t")
    assert is_write("CREATE TABLE x (a)")
    assert not is_write("SELECT * FROM t")
    assert not is_write("PRAGMA journal_mode")


async def test_writers_wait_their_turn_and_commit_in_arrival_order(engine: AsyncEngine) -> None:
    names = "abcdefghijk"
    committed: list[str] = []
    ready = {name: asyncio.Event() for name in names}
    release_first = asyncio.Event()

    async def writer(name: str) -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            ready[name].set()  # nothing waits between here and the write's turn
            await connection.execute(text("INSERT INTO t (who) VALUES (:w)"), {"w": name})
            if name == names[0]:
                await release_first.wait()  # holds the write lock across awaits
            await connection.commit()
            committed.append(name)

    tasks = []
    for name in names:
        tasks.append(asyncio.create_task(writer(name)))
        await ready[name].wait()
    release_first.set()
    await asyncio.gather(*tasks)

    assert committed == list(names)
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT who FROM t ORDER BY id"))).scalars()
        assert list(rows) == list(names)


async def test_many_writers_at_once_all_succeed(engine: AsyncEngine) -> None:
    async def writer(i: int) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t (who) VALUES (:w)"), {"w": str(i)})
            await asyncio.sleep(0)  # the lock is held across an await
            await connection.execute(text("UPDATE t SET who = who || '!' WHERE who = :w"), {"w": str(i)})

    await asyncio.gather(*(writer(i) for i in range(60)))

    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM t WHERE who LIKE '%!'")) == 60


async def test_a_writer_held_past_the_busy_timeout_makes_the_next_fail_as_sqlite_would(
    short_engine: AsyncEngine,
) -> None:
    async with short_engine.connect() as holder:
        await holder.execute(text("INSERT INTO t (who) VALUES ('holder')"))
        async with short_engine.connect() as other:
            with pytest.raises(OperationalError, match="database is locked"):
                await other.execute(text("INSERT INTO t (who) VALUES ('other')"))
        await holder.commit()
    async with short_engine.begin() as connection:  # the lock is free again
        await connection.execute(text("INSERT INTO t (who) VALUES ('after')"))


async def test_a_failed_write_and_an_abandoned_one_give_the_lock_back(
    short_engine: AsyncEngine,
) -> None:
    async with short_engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (id, who) VALUES (1, 'one')"))
    with pytest.raises(IntegrityError):
        async with short_engine.begin() as connection:
            await connection.execute(text("INSERT INTO t (id, who) VALUES (1, 'again')"))
    async with short_engine.connect() as connection:  # closed without a commit
        await connection.execute(text("INSERT INTO t (id, who) VALUES (2, 'dropped')"))

    async with short_engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (id, who) VALUES (3, 'three')"))
        rows = (await connection.execute(text("SELECT who FROM t ORDER BY id"))).scalars()
        assert list(rows) == ["one", "three"]


async def test_results_longer_than_a_chunk_come_back_whole(engine: AsyncEngine) -> None:
    count = FETCH_CHUNK * 2 + 7
    async with engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO t (who) VALUES (:w)"), [{"w": str(i)} for i in range(count)]
        )
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT who FROM t ORDER BY id"))).scalars().all()
        assert rows == [str(i) for i in range(count)]
        streamed = await connection.stream(
            text("SELECT who FROM t ORDER BY id").execution_options(yield_per=300)
        )
        assert [row async for row in streamed.scalars()] == rows


async def test_cancelled_writers_give_the_lock_back(short_engine: AsyncEngine) -> None:
    holding = asyncio.Event()

    async def holder() -> None:
        async with short_engine.connect() as connection:
            await connection.execute(text("INSERT INTO t (who) VALUES ('cancelled')"))
            holding.set()
            await asyncio.Event().wait()  # cancelled while it holds the write lock

    async def waiter() -> None:
        async with short_engine.connect() as connection:
            await connection.execute(text("INSERT INTO t (who) VALUES ('never')"))
            await connection.commit()

    first = asyncio.create_task(holder())
    await holding.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)  # the second waits for the lock
    for task in (second, first):
        task.cancel()
    await asyncio.gather(first, second, return_exceptions=True)

    async with short_engine.begin() as connection:
        await connection.execute(text("INSERT INTO t (who) VALUES ('after')"))
        rows = (await connection.execute(text("SELECT who FROM t"))).scalars()
        assert list(rows) == ["after"]


async def _driver_connection(tmp_path: Path, timeout: float = 1.0) -> GatedConnection:
    """A connection of ``api.sqlite_driver`` used as SQLAlchemy uses it, with a function
    telling which thread runs a statement."""
    connection = await async_creator(str(tmp_path / "inline.db"), timeout)()
    await connection._execute(
        connection._conn.create_function, "runs_on", 0, threading.get_ident
    )
    cursor = connection.cursor()
    await cursor.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, who INTEGER)")
    await connection.commit()
    return connection


async def _runs_on(connection: GatedConnection) -> int:
    cursor = connection.cursor()
    await cursor.execute("SELECT runs_on()")
    return (await cursor.fetchone())[0]


async def test_point_statements_run_on_the_event_loop_where_nothing_can_wait(
    tmp_path: Path,
) -> None:
    loop_thread = threading.get_ident()
    connection = await _driver_connection(tmp_path)
    try:
        assert await _runs_on(connection) != loop_thread  # outside the block: the thread
        with inline_statements():
            assert await _runs_on(connection) == loop_thread  # a read
            cursor = connection.cursor()
            sent = connection._trips_sent
            # No other process holds the write lock and no checkpoint is due: the first
            # write, the next one and the commit all run on the loop, with no trip.
            await cursor.execute("INSERT INTO t (who) VALUES (runs_on())")
            await cursor.execute("INSERT INTO t (who) VALUES (runs_on())")
            await connection.commit()
            assert connection._trips_sent == sent
            await cursor.execute("SELECT who FROM t ORDER BY id")
            assert [row[0] for row in await cursor.fetchall()] == [loop_thread, loop_thread]
            # A rollback of an open write transaction runs inline too, and ends it.
            await cursor.execute("INSERT INTO t (who) VALUES (1)")
            await connection.rollback()
            await cursor.execute("SELECT count(*) FROM t")
            assert (await cursor.fetchone())[0] == 2
            assert connection._trips_sent == sent
        assert await _runs_on(connection) != loop_thread  # the block is over
    finally:
        await connection.close()


async def test_commits_on_the_loop_never_checkpoint_and_every_hundredth_does_on_the_thread(
    tmp_path: Path,
) -> None:
    """SQLite's automatic checkpoint is off on these connections (it would copy pages and sync
    the disk inside a commit on the loop); every CHECKPOINT_EVERY-th commit goes to the thread
    and a passive checkpoint follows it there, so the WAL's pages reach the database file."""
    connection = await _driver_connection(tmp_path)
    database = tmp_path / "inline.db"
    cursor = connection.cursor()
    await cursor.execute("PRAGMA journal_mode = WAL")  # as api.db sets it
    await cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    commits = connection._gate._commits
    size = database.stat().st_size
    try:
        with inline_statements():
            for n in range(CHECKPOINT_EVERY - commits - 1):  # up to just before the one due
                await cursor.execute("INSERT INTO t (who) VALUES (?)", (n,))
                await cursor.execute("UPDATE t SET who = zeroblob(4000) WHERE id = last_insert_rowid()")
                await connection.commit()
            sent = connection._trips_sent
            assert database.stat().st_size == size  # well past 1000 pages of WAL, none copied
            await cursor.execute("INSERT INTO t (who) VALUES (zeroblob(4000))")
            await connection.commit()  # the one due: commit and checkpoint, two trips
            assert connection._trips_sent - sent == 2
            assert database.stat().st_size > size + (CHECKPOINT_EVERY - 1) * 4000
            await cursor.execute("INSERT INTO t (who) VALUES (1)")
            await connection.commit()  # the count starts again: on the loop
            assert connection._trips_sent - sent == 2
    finally:
        await connection.close()
    with sqlite3.connect(database) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == CHECKPOINT_EVERY - commits + 1


async def test_a_statement_waits_for_the_threads_unfinished_trip(tmp_path: Path) -> None:
    """A caller cancelled during a trip leaves it running: what comes next must not run
    beside it on the same connection."""
    loop_thread = threading.get_ident()
    connection = await _driver_connection(tmp_path)
    gate = threading.Event()
    await connection._execute(connection._conn.create_function, "held", 0, lambda: gate.wait(5))
    try:
        slow = asyncio.create_task(_run_sql(connection, "SELECT held()"))
        await asyncio.sleep(0.05)
        slow.cancel()
        with inline_statements():
            follower = asyncio.create_task(_runs_on(connection))
            await asyncio.sleep(0.05)
            assert not follower.done()  # queued behind the trip, not run beside it
            gate.set()
            assert await follower != loop_thread
            assert await _runs_on(connection) == loop_thread  # the thread is idle again
    finally:
        gate.set()
        await connection.close()


async def _run_sql(connection: GatedConnection, sql: str) -> None:
    await connection.cursor().execute(sql)


async def test_a_first_write_waiting_for_another_process_never_holds_up_the_loop(
    tmp_path: Path,
) -> None:
    """The first write is tried on the loop without waiting; when another process holds the
    write lock it waits on the thread instead, and is written once when the lock is free."""
    loop_thread = threading.get_ident()
    connection = await _driver_connection(tmp_path, timeout=2.0)
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)  # another process
    try:
        other.execute("BEGIN IMMEDIATE")
        with inline_statements():
            write = asyncio.create_task(_run_sql(connection, "INSERT INTO t (who) VALUES (runs_on())"))
            started = time.monotonic()
            await asyncio.sleep(0.2)  # the loop turns while the write waits for the lock
            assert time.monotonic() - started < 1.0 and not write.done()
            other.execute("COMMIT")
            await write
            await connection.commit()
            # The busy timeout is back for the writes that follow on the thread.
            cursor = connection.cursor()
            await cursor.execute("PRAGMA busy_timeout")
            assert (await cursor.fetchone())[0] == 2000
        rows = other.execute("SELECT who FROM t").fetchall()
        assert len(rows) == 1 and rows[0][0] != loop_thread
    finally:
        other.close()
        await connection.close()
