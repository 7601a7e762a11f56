"""Backups and the restore drill (``api.backup``, ``python -m api.cli backup|restore``): a
backup taken while the API runs brings back every conversation, message, staff account and
audit entry, and Rasa's events, after both databases were wiped; a damaged backup restores
nothing; old backups are deleted by the backup and retention commands."""

from __future__ import annotations

import asyncio
import io
import stat
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_fakes import (
    Harness,
    database_execute,
    database_rows,
    database_tables,
    messages_url,
    rasa_tracker_db,
    tracker_counts,
)
from sqlalchemy.engine import make_url
from staff_fakes import logged_in

from api import backup as backups
from api import cli
from api.models import utcnow
from api.patient_auth import bearer
from api.settings import Settings

pytestmark = pytest.mark.anyio


def command(settings: Settings, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), settings=settings, stdin=io.StringIO(), out=out), out.getvalue()


def everything(database_url: str, tracker_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of both databases."""
    rows = {
        table: sorted(tuple(r) for r in database_rows(database_url, f"SELECT * FROM {table}"))
        for table in sorted(database_tables(database_url))
    }
    rows["rasa events"] = sorted(
        tuple(r) for r in database_rows(f"sqlite:///{tracker_path}", "SELECT * FROM events"))
    return rows


def wipe(database_url: str, tracker_path: Path) -> None:
    """Both databases gone, as after a lost disk (the server itself still there)."""
    if database_url.startswith("postgresql"):
        database_execute(database_url, "DROP SCHEMA public CASCADE")
        database_execute(database_url, "CREATE SCHEMA public")
    else:
        database = Path(make_url(database_url).database or "")
        for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
    tracker_path.unlink()


async def a_clinic_day(h: Harness, tracker_path: Path) -> list[str]:
    """Conversations with and without consent, a staff account that logged in (audited)."""
    ids = []
    for consent in (True, True, False):
        conversation_id = await h.new_conversation(consent=consent)
        response = await h.client.post(messages_url(conversation_id), json={"text": "how much is it"})
        assert response.status_code == 200, response.text
        ids.append(conversation_id)
    async with logged_in(h, "ana", "admin") as staff:
        assert (await staff.client.get(f"/staff/conversations/{ids[0]}")).status_code == 200
    rasa_tracker_db(tracker_path, {ids[0]: 4, ids[1]: 2})
    return ids


async def test_the_restore_drill_brings_back_everything_after_both_databases_are_lost(
    start: Callable[..., Any], make_settings: Callable[..., Settings], database_url: str,
    tracker_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(backup_dir=tmp_path / "backups")
    async with start() as h:
        ids = await a_clinic_day(h, tracker_path)
        token = h.token(ids[0])
        status, output = await asyncio.to_thread(command, settings, "backup")  # while it runs
    assert status == 0, output
    [made] = backups.backups(tmp_path / "backups")
    assert output.strip() == f"Backed up to {made.folder}"
    before = everything(database_url, tracker_path)
    assert {len(before[t]) for t in ("conversations", "staff_users")} == {3, 1}
    assert len(before["messages"]) >= 6 and len(before["audit_log"]) >= 2
    assert len(before["rasa events"]) == 6

    wipe(database_url, tracker_path)
    assert "conversations" not in database_tables(database_url)
    started = time.monotonic()
    status, output = await asyncio.to_thread(command, settings, "restore", str(made.folder))
    seconds = time.monotonic() - started
    assert (status, output.strip()) == (
        0, f"Restored the API's database and Rasa's tracker store from {made.folder}.")
    with capsys.disabled():
        print(f"\n[restore drill: {seconds:.2f} s]", end=" ")
    assert everything(database_url, tracker_path) == before
    assert tracker_counts(tracker_path) == {ids[0]: 4, ids[1]: 2}

    async with start() as h:  # the API starts on it, and the patient carries on
        response = await h.client.post(messages_url(ids[0]), json={"text": "and after?"},
                                        headers=bearer(token))
        assert response.status_code == 200, response.text


async def test_a_damaged_backup_restores_nothing(
    start: Callable[..., Any], make_settings: Callable[..., Settings], database_url: str,
    tracker_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(backup_dir=tmp_path / "backups")
    async with start() as h:
        await a_clinic_day(h, tracker_path)
        assert (await asyncio.to_thread(command, settings, "backup"))[0] == 0
        later = await h.new_conversation()  # after the backup: a restore would lose it
    [made] = backups.backups(tmp_path / "backups")
    [dump] = made.folder.glob("api.*")
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    before = everything(database_url, tracker_path)

    status, _ = await asyncio.to_thread(command, settings, "restore", str(made.folder))
    assert status == 1
    assert f"Nothing was restored: {dump.name} in {made.folder} is not the file" in capsys.readouterr().err
    assert everything(database_url, tracker_path) == before
    assert [r["id"] for r in database_rows(database_url, "SELECT id FROM conversations WHERE id = ?", later)]

    data[len(data) // 2] ^= 0xFF  # mended; now a file goes missing
    dump.write_bytes(bytes(data))
    (made.folder / "tracker.sqlite").unlink()
    assert (await asyncio.to_thread(command, settings, "restore", str(made.folder)))[0] == 1
    assert "tracker.sqlite is missing" in capsys.readouterr().err
    assert (await asyncio.to_thread(command, settings, "restore", str(tmp_path)))[0] == 1
    assert "is not a backup" in capsys.readouterr().err


async def test_a_backup_is_readable_by_its_owner_only_and_never_half_there(
    h: Harness, make_settings: Callable[..., Settings], tracker_path: Path, tmp_path: Path,
    postgres_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    await a_clinic_day(h, tracker_path)
    settings = make_settings(backup_dir=tmp_path / "backups")
    assert (await asyncio.to_thread(command, settings, "backup"))[0] == 0
    [made] = backups.backups(tmp_path / "backups")
    assert stat.S_IMODE(made.folder.stat().st_mode) == 0o700
    assert {p.name for p in made.folder.iterdir()} == {
        "manifest.json", f"api.{'pgdump' if h.database_url.startswith('postgresql') else 'sqlite'}",
        "tracker.sqlite"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in made.folder.iterdir())

    # The API's copy written, then pg_dump refused (a wrong password): nothing left behind.
    wrong = make_url(postgres_url).set(password="not-the-password").render_as_string(hide_password=False)
    with pytest.raises(backups.BackupError, match="pg_dump failed") as failed:
        await asyncio.to_thread(backups.create_backup, tmp_path / "failing",
                                f"sqlite:///{tracker_path}", wrong, None, now=utcnow())
    assert list((tmp_path / "failing").iterdir()) == []
    assert "not-the-password" not in str(failed.value)


async def test_old_backups_are_deleted_by_backup_and_retention(
    h: Harness, make_settings: Callable[..., Settings], tracker_path: Path, tmp_path: Path,
) -> None:
    await a_clinic_day(h, tracker_path)
    folder = tmp_path / "backups"
    settings = make_settings(backup_dir=folder, backup_keep_days=14, retention_days=0)
    for days in (20, 15, 3):
        backups.create_backup(folder, h.database_url, f"sqlite:///{tracker_path}", None,
                              now=utcnow() - timedelta(days=days))
    status, output = await asyncio.to_thread(command, settings, "retention")
    assert status == 0 and "Deleted 2 backups older than 14 days." in output
    assert len(backups.backups(folder)) == 1
    backups.create_backup(folder, h.database_url, f"sqlite:///{tracker_path}", None,
                          now=utcnow() - timedelta(days=30))
    status, output = await asyncio.to_thread(command, settings, "backup")
    assert status == 0 and "Deleted 1 backups older than 14 days." in output
    assert len(backups.backups(folder)) == 2  # the 3-day-old one and the new one
    keep_all = make_settings(backup_dir=folder, backup_keep_days=0)
    assert (await asyncio.to_thread(command, keep_all, "backup"))[0] == 0
    assert len(backups.backups(folder)) == 3  # 0: none is ever deleted


def test_a_backup_is_restored_only_into_the_same_kind_of_database(
    tmp_path: Path, postgres_url: str,
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'a.db'}"
    database_execute(sqlite_url, "CREATE TABLE t (x INTEGER)")
    made = backups.create_backup(tmp_path / "b", sqlite_url, f"sqlite:///{tmp_path / 'none.db'}",
                                 None, now=utcnow())
    with pytest.raises(backups.BackupError, match="cannot be restored into a pgdump database"):
        backups.restore_backup(made.folder, postgres_url, f"sqlite:///{tmp_path / 'none.db'}")
    assert "t" not in database_tables(postgres_url)
