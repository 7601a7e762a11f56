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
            # The first write may wait for another process's lock, and a commit may run
            # SQLite's checkpoint: both on the thread. The second write holds the lock: inline.
            await cursor.execute("INSERT INTO t (who) VALUES (runs_on())")
            await cursor.execute("INSERT INTO t (who) VALUES (runs_on())")
            await connection.commit()
            assert connection._trips_sent - sent == 2
            await cursor.execute("SELECT who FROM t ORDER BY id")
            first, second = (row[0] for row in await cursor.fetchall())
            assert first != loop_thread and second == loop_thread
            # A rollback of an open write transaction runs inline too, and ends it.
            await cursor.execute("INSERT INTO t (who) VALUES (1)")
            await connection.rollback()
            await cursor.execute("SELECT count(*) FROM t")
            assert (await cursor.fetchone())[0] == 2
        assert await _runs_on(connection) != loop_thread  # the block is over
    finally:
        await connection.close()


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
    connection = await _driver_connection(tmp_path, timeout=2.0)
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)  # another process
    try:
        other.execute("BEGIN IMMEDIATE")
        with inline_statements():
            write = asyncio.create_task(_run_sql(connection, "INSERT INTO t (who) VALUES (1)"))
            started = time.monotonic()
            await asyncio.sleep(0.2)  # the loop turns while the write waits for the lock
            assert time.monotonic() - started < 1.0 and not write.done()
            other.execute("COMMIT")
            await write
            await connection.commit()
        assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    finally:
        other.close()
        await connection.close()
