"""Database engine, sessions, migrations and the readiness probe.

SQLite (the embedded default) runs in WAL mode with a busy timeout, foreign keys and
``secure_delete`` on (deleted content is overwritten with zeros, so an erased conversation
leaves no copy in free pages); after an erasure :func:`scrub_erased` copies the WAL into the
file and truncates it, so no older copy of a page stays in the ``-wal`` file either.
PostgreSQL works through the same code with an asyncpg URL: a lock timeout in place of the
busy timeout, and ``VACUUM`` after an erasure in place of the checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.settings import PACKAGE_DIR
from api.sqlite_driver import async_creator

logger = logging.getLogger(__name__)

MIGRATIONS_DIR: Path = PACKAGE_DIR / "migrations"
ALEMBIC_INI: Path = PACKAGE_DIR / "alembic.ini"
SQLITE_BUSY_TIMEOUT_MS: int = 5000
"""How long a connection to Rasa's tracker database waits for Rasa's writes."""
API_BUSY_TIMEOUT_MS: int = 1500
"""How long the API's own connections wait for a lock (SQLite's busy timeout; PostgreSQL's
``lock_timeout``, for a table or row another client holds): shorter than the chat's Rasa
timeout, so that a locked database is noticed while the safety net can still answer in time
(``api.write_behind``). The API's own writes take milliseconds."""
SQLITE_POOL_SIZE: int = 5
"""SQLite connections kept open (each has its thread, ``api.sqlite_driver``)."""
SQLITE_MAX_OVERFLOW: int = 10
"""More connections opened for a burst and closed after it. Few on purpose: SQLite writes one
transaction at a time (``api.sqlite_driver.WriteGate``) and the event loop runs one request's
Python at a time, so more connections add nothing but their cost. A chat request holds one
for a few milliseconds at a time (its turn's reply from Rasa is awaited without one); with 100
conversations opening at once the others wait that long, in turn, which measured faster than
opening a connection (thread, pragmas) for each of them."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {API_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA secure_delete = ON")
    finally:
        cursor.close()


def sqlite_secure_delete(dbapi_connection: Any, _record: Any) -> None:
    """``PRAGMA secure_delete = ON`` (per connection): deleted rows are overwritten with
    zeros, in their page and in freed pages, instead of lingering in free space."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA secure_delete = ON")
    finally:
        cursor.close()


async def scrub_erased(
    engine: AsyncEngine, tables: tuple[str, ...], *, rewrite: bool = False
) -> bool:
    """After an erasure has committed, leave no older copy of the erased rows in the
    database's files (``tables``: those the erasure deleted from).

    SQLite: ``PRAGMA wal_checkpoint(TRUNCATE)``, so the pages holding the erased rows
    (zeroed by ``secure_delete``) replace the old ones in the file and the ``-wal`` file,
    which still holds earlier copies of those pages, is emptied (nothing to do outside WAL
    mode). That is the whole of it there, at once.

    PostgreSQL has no ``secure_delete``: ``VACUUM`` removes the deleted rows' tuples and index
    entries, but their bytes stay in the pages' free space until new rows overwrite them.
    Only ``rewrite`` (``VACUUM FULL``: each table copied into new files, the old ones removed)
    leaves none in the database's files; it locks each table while it copies it, so it runs
    on a schedule (``api.scrub``), not after each erasure. The server's write-ahead log keeps
    its copy until the segment is recycled, and any WAL archive or backup keeps its own: those
    are the server's retention to set, not this process's.

    Returns False (and logs a warning) when another client kept it from finishing within the
    busy timeout (a reader of the SQLite file; on PostgreSQL, a lock it waited for); the next
    one completes it.
    """
    if engine.dialect.name == "postgresql":
        return await _vacuum(engine, tables, rewrite)
    if engine.dialect.name != "sqlite":
        return True
    async with engine.connect() as connection:
        row = (await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).first()
    if row is not None and row[0]:
        logger.warning("WAL checkpoint after an erasure was blocked by a reader; retried later")
        return False
    return True


async def _vacuum(engine: AsyncEngine, tables: tuple[str, ...], rewrite: bool) -> bool:
    """``VACUUM`` (outside a transaction, as it must run) of ``tables``, waiting at most
    ``API_BUSY_TIMEOUT_MS`` for each table's lock (whatever the engine's own setting), so
    that clients queued behind it wait no longer than that for it to start."""
    if not tables:
        return True
    quote = engine.dialect.identifier_preparer.quote
    command = "VACUUM (FULL)" if rewrite else "VACUUM"
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql(f"SET lock_timeout = '{API_BUSY_TIMEOUT_MS}ms'")
            try:
                await autocommit.exec_driver_sql(f"{command} {', '.join(quote(t) for t in tables)}")
            finally:
                await autocommit.exec_driver_sql("RESET lock_timeout")
    except DBAPIError as error:
        reason = getattr(error.orig, "sqlstate", None) or type(error.orig).__name__
        logger.warning("%s after an erasure did not finish (%s); retried later", command,
                       "a lock was not given in time" if reason == LOCK_NOT_AVAILABLE else reason)
        return False
    return True


LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE for a statement that waited ``lock_timeout`` for a lock."""


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine; for a SQLite file, create its folder and configure the pragmas.

    A SQLite file gets the connections of ``api.sqlite_driver`` (one writer at a time, queued
    in the event loop). No connection is pinged before each use: on SQLite there is no server
    to drop it; on PostgreSQL a ping is a round trip at every checkout (several a turn; about
    0.8 ms of the API's 6 ms a turn under load, measured in the scaled set-up), while a
    connection the server dropped (a restart) fails its one statement, and SQLAlchemy then
    renews the whole pool: that request gets the database-down answer (the safety net, the
    turn kept: ``api.write_behind``) and the next ones go through.
    """
    path = sqlite_file(url)
    if path is None:
        engine = create_async_engine(url, connect_args=_server_settings(url))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            async_creator=async_creator(str(path), API_BUSY_TIMEOUT_MS / 1000),
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_MAX_OVERFLOW,
        )
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _server_settings(url: str) -> dict[str, Any]:
    """PostgreSQL through asyncpg: a statement waits at most ``API_BUSY_TIMEOUT_MS`` for a
    lock, then fails (SQLSTATE 55P03) like a busy SQLite file does."""
    if make_url(url).get_driver_name() != "asyncpg":
        return {}
    return {"server_settings": {"lock_timeout": f"{API_BUSY_TIMEOUT_MS}ms"}}


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config found from this package's location, whatever the working directory."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_on_connection(connection: Connection, revision: str = "head") -> None:
    """Run ``alembic upgrade`` on an open (sync) connection."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade_head(engine: AsyncEngine) -> None:
    """Bring the database schema to the newest migration (run at start-up)."""
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_on_connection)


class SchemaNotCurrent(RuntimeError):
    """The database is not at the newest migration, and this process may not migrate it."""


def head_revision() -> str:
    """The newest migration's revision, from the migration scripts."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision())


async def require_head(engine: AsyncEngine) -> None:
    """Raise :class:`SchemaNotCurrent` unless the database is at the newest migration;
    nothing is written either way."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaNotCurrent(
            f"the database is at migration {current or '(none)'}, this code needs {head}: run "
            "`python -m api.cli migrate` (`make migrate`) before starting the API")


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers ``SELECT 1``."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
