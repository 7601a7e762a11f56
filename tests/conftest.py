"""Shared fixtures for the bot-runtime tests (CPython 3.10 environment).

Imports of bot code happen inside the fixtures: the API suites run in the other runtime,
where spaCy and Rasa are not installed, and collect this file too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def built_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real knowledge base, built once into a temporary folder."""
    from bot import paths
    from bot.kb.build import build

    out = tmp_path_factory.mktemp("build")
    build(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir(), out)
    return out


@pytest.fixture(scope="session")
def runtime(built_dir: Path) -> Any:
    from bot import paths
    from bot.kb.runtime import load_runtime

    return load_runtime(built_dir, paths.clinic_file())


@pytest.fixture(scope="session")
def domain() -> dict:
    from bot import paths

    return paths.load_domain()


# Real PostgreSQL and Redis for the scaled set-up's tests (API environment): one private
# server of each for the session (``ops.datastores``), a fresh database or an emptied Redis
# for each test. ``make test-api`` installs the servers (``make datastores``).


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    from ops.datastores import private_postgres

    with private_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: Any) -> Any:
    """The asyncpg URL of a new, empty database on the session's PostgreSQL, dropped after
    the test (with any connection the test left open)."""
    import asyncio
    import secrets
    from concurrent.futures import ThreadPoolExecutor

    import asyncpg
    from sqlalchemy.engine import make_url

    server_url = make_url(postgres_server.url)
    name = f"test_{secrets.token_hex(6)}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(
            host=server_url.host, port=server_url.port, user=server_url.username,
            password=server_url.password, database=server_url.database,
        )
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def run(statement: str) -> None:  # on a thread of its own: callers may be in a loop
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, admin(statement)).result()

    run(f"CREATE DATABASE {name}")
    yield server_url.set(database=name).render_as_string(hide_password=False)
    run(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def redis_server() -> Any:
    from ops.datastores import private_redis

    with private_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """The URL of the session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return str(redis_server.url)
