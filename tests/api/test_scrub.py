"""The scheduled scrub (api/scrub.py): on PostgreSQL the API rewrites the tables that held
erased conversations once a round across its workers, never waits long for a lock, and
``python -m api.cli scrub`` does it at once; on SQLite there is nothing to scrub. That the
rewrite leaves no erased text in the files is tests/api/test_erasure_files.py's."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from api_fakes import FakeRasa, database_rows, running_app

from api import cli
from api.db import API_BUSY_TIMEOUT_MS
from api.models import CONVERSATION_TABLES
from api.settings import Settings

pytestmark = pytest.mark.anyio


def files_of(url: str) -> dict[str, int]:
    """Each conversation table's file (``relfilenode``): a rewrite gives it a new one."""
    rows = database_rows(url, "SELECT relname, relfilenode FROM pg_class WHERE relkind = 'r' "
                              "AND relnamespace = 'public'::regnamespace")
    return {r["relname"]: r["relfilenode"] for r in rows if r["relname"] in CONVERSATION_TABLES}


def command(settings: Settings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), settings=settings, stdin=io.StringIO(), out=out), out.getvalue()


def test_the_conversation_tables_are_those_an_erasure_deletes_from() -> None:
    assert set(CONVERSATION_TABLES) == {
        "conversations", "messages", "callback_requests", "conversation_tags", "staff_notes",
        "staff_notifications"}


async def test_on_postgresql_the_api_rewrites_the_tables_once_a_round_across_workers(
    make_settings: Callable[..., Settings], fake_rasa: FakeRasa, postgres_url: str,
) -> None:
    settings = make_settings(database_url=postgres_url, scrub_interval_hours=24)
    assert (await asyncio.to_thread(command, settings, "migrate"))[0] == 0
    before = files_of(postgres_url)
    async with running_app(settings, fake_rasa, db_path=None) as first:  # type: ignore[arg-type]
        for _ in range(100):
            if files_of(postgres_url) != before:
                break
            await asyncio.sleep(0.05)
        rewritten = files_of(postgres_url)
        await first.new_conversation()  # the tables work as before
        async with running_app(settings, fake_rasa, db_path=None):  # type: ignore[arg-type]
            await asyncio.sleep(0.5)  # a second worker, within the same round
            assert files_of(postgres_url) == rewritten, "one round, one rewrite"
    assert set(rewritten) == set(CONVERSATION_TABLES)
    assert all(rewritten[t] != before[t] for t in CONVERSATION_TABLES)
    [job] = database_rows(postgres_url, "SELECT name FROM job_runs WHERE name = 'scrub_erased'")
    assert job["name"] == "scrub_erased"


async def test_the_scrub_waits_no_longer_than_the_busy_timeout_for_a_lock(
    make_settings: Callable[..., Settings], fake_rasa: FakeRasa, postgres_url: str,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    """Chat turns queue behind a rewrite waiting for its lock: it gives up in time, says so,
    and the command exits 1 (run it again); nothing is rewritten."""
    settings = make_settings(database_url=postgres_url)
    async with running_app(settings, fake_rasa, db_path=None) as h:  # type: ignore[arg-type]
        before = files_of(postgres_url)
        async with h.writes_refused():
            started = time.monotonic()
            status, _ = await asyncio.to_thread(command, settings, "scrub")
            seconds = time.monotonic() - started
    assert status == 1 and "could not lock a table in time" in capsys.readouterr().err
    assert API_BUSY_TIMEOUT_MS / 1000 <= seconds < API_BUSY_TIMEOUT_MS / 1000 + 5
    assert "VACUUM (FULL) after an erasure did not finish (a lock was not given in time)" in caplog.text
    assert files_of(postgres_url) == before


def test_the_scrub_command_rewrites_now_on_postgresql(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url)
    assert command(settings, "migrate")[0] == 0
    before = files_of(postgres_url)
    status, output = command(settings, "scrub")
    assert (status, output.strip()) == (0, "The tables that held erased conversations were rewritten.")
    assert all(files_of(postgres_url)[t] != before[t] for t in CONVERSATION_TABLES)


def test_on_sqlite_there_is_nothing_to_scrub(make_settings: Callable[..., Settings], db_path: Any) -> None:
    settings = make_settings(database_url=f"sqlite:///{db_path}")
    status, output = command(settings, "scrub")
    assert (status, output.strip()) == (0, "Both databases are SQLite: an erasure leaves nothing to scrub.")


async def test_on_sqlite_the_api_runs_no_scrub(
    make_settings: Callable[..., Settings], fake_rasa: FakeRasa, db_path: Any
) -> None:
    settings = make_settings(database_url=f"sqlite:///{db_path}", scrub_interval_hours=24)
    async with running_app(settings, fake_rasa, db_path):
        running = {task.get_name() for task in asyncio.all_tasks()}
    assert "purge-unconsented" in running and "scrub" not in running
