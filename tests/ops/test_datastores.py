"""Private PostgreSQL and Redis servers (``ops.datastores``): they start on spare loopback
ports, ask for their password, hold data while they run, and leave nothing behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api.db import create_engine
from ops import datastores


def test_a_private_postgres_serves_sqlalchemy_asks_its_password_and_leaves_nothing() -> None:
    with datastores.private_postgres() as server:
        url = make_url(server.url)
        assert url.host == "127.0.0.1" and url.database == "meso" and url.password

        async def use() -> list[str]:
            engine = create_engine(server.url)  # the API's own engine factory
            try:
                async with engine.begin() as connection:
                    await connection.execute(text("CREATE TABLE t (who TEXT)"))
                    await connection.execute(text("INSERT INTO t VALUES ('a'), ('b')"))
                async with engine.connect() as connection:
                    return list((await connection.execute(text("SELECT who FROM t ORDER BY who"))).scalars())
            finally:
                await engine.dispose()

        assert asyncio.run(use()) == ["a", "b"]

        async def wrong_password() -> None:
            await asyncpg.connect(host="127.0.0.1", port=server.port, user="meso", password="wrong",
                                  database="meso")

        with pytest.raises(asyncpg.InvalidPasswordError):
            asyncio.run(wrong_password())
        folder, port = server.folder, server.port
        assert not (folder / "password").exists()  # the initial password file is gone
    assert not datastores.listening(port)
    assert not folder.exists()


def test_a_private_redis_keeps_data_while_it_runs_asks_its_password_and_leaves_nothing() -> None:
    with datastores.private_redis() as server:
        async def use() -> bytes | None:
            client = aioredis.from_url(server.url)
            try:
                await client.set("k", "v")
                return await client.get("k")
            finally:
                await client.aclose()

        assert asyncio.run(use()) == b"v"

        async def no_password() -> None:
            client = aioredis.Redis(host="127.0.0.1", port=server.port)
            try:
                await client.get("k")
            finally:
                await client.aclose()

        with pytest.raises(AuthenticationError):
            asyncio.run(no_password())
        config = server.folder / "redis.conf"
        assert config.stat().st_mode & 0o077 == 0  # its password: readable by its owner only
        folder, port = server.folder, server.port
    assert not datastores.listening(port)
    assert not folder.exists()


def test_the_passwords_never_reach_a_command_line() -> None:
    with datastores.private_redis() as rserver, datastores.private_postgres() as pserver:
        secrets = [make_url(pserver.url).password, rserver.url.split(":")[2].split("@")[0]]
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    argv = (proc / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                assert not any(secret in argv for secret in secrets)


def test_missing_programs_are_named_with_the_command_that_installs_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(datastores.PG_BIN_ENV, str(tmp_path))
    with pytest.raises(datastores.DatastoreUnavailable, match="make datastores"):
        with datastores.private_postgres():
            pass
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(datastores.shutil, "which", lambda *a, **k: None)
    with pytest.raises(datastores.DatastoreUnavailable, match="make datastores"):
        with datastores.private_redis():
            pass


def test_a_private_postgres_goes_down_and_comes_back_with_its_data() -> None:
    with datastores.private_postgres() as server:
        async def query(sql: str) -> list[str]:
            engine = create_engine(server.url)
            try:
                async with engine.begin() as connection:
                    result = await connection.execute(text(sql))
                    return [str(v) for v in result.scalars()] if result.returns_rows else []
            finally:
                await engine.dispose()

        asyncio.run(query("CREATE TABLE kept (v TEXT)"))
        asyncio.run(query("INSERT INTO kept VALUES ('x') RETURNING v"))
        with server.down():
            assert not datastores.listening(server.port)
            with pytest.raises(OSError):
                asyncio.run(query("SELECT 1"))
        assert asyncio.run(query("SELECT v FROM kept")) == ["x"]


def test_a_private_redis_goes_down_and_comes_back() -> None:
    with datastores.private_redis() as server:
        async def ping() -> bool:
            client = aioredis.from_url(server.url)
            try:
                return bool(await client.ping())
            finally:
                await client.aclose()

        with server.down():
            assert not datastores.listening(server.port)
        assert asyncio.run(ping())
