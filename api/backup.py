"""Backups of both databases, and restoring one (``python -m api.cli backup`` / ``restore``).

A backup is one folder, ``<MESO_BACKUP_DIR>/meso-<UTC time>``, readable by its owner only:

* ``api.<kind>``: the API's database; ``tracker.<kind>``: Rasa's (absent when Rasa has not
  created it yet). ``sqlite``: a copy made with SQLite's online backup (consistent while the
  API and Rasa write); ``pgdump``: ``pg_dump``'s custom format (one snapshot), its password
  passed in the child's environment, never on a command line.
* ``manifest.json``: when it was made, the API database's migration, and each file's size
  and SHA-256.

It is written under a temporary name and renamed once complete: a backup cut short never
looks like one. Backups older than ``MESO_BACKUP_KEEP_DAYS`` are deleted by every backup and
by every retention run, so an erased conversation is in no backup older than that.

:func:`restore` checks the whole backup against its manifest first and changes nothing if any
file is missing or differs; then it replaces each database's content with the backup's. The
API and Rasa must be stopped while it runs (``make run`` and the services are not).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from api.db import sqlite_file

MANIFEST = "manifest.json"
PREFIX = "meso-"
TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
DATABASES = ("api", "tracker")
"""The databases a backup holds, by their file's stem."""


class BackupError(Exception):
    """A backup or restore that could not be done; nothing was changed."""


@dataclass(frozen=True)
class Backup:
    folder: Path
    created_at: datetime


def _kind(url: str) -> str:
    return "sqlite" if sqlite_file(url) is not None else "pgdump"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pg_program(name: str, pg_bin: str = "") -> str:
    """``pg_dump`` or ``pg_restore``: in ``pg_bin`` (``MESO_PG_BIN``), else on the ``PATH``
    (Debian's ``postgresql-client`` puts a wrapper there that runs the newest installed)."""
    found = shutil.which(name, path=pg_bin or None)
    if found is None:
        raise BackupError(f"{name} was not found (install postgresql-client, or set MESO_PG_BIN)")
    return found


def _pg_environment(url: str) -> dict[str, str]:
    """libpq's variables for ``url`` (the password among them: never an argument)."""
    parts: URL = make_url(url)
    values = {"PGHOST": parts.host, "PGPORT": parts.port, "PGUSER": parts.username,
              "PGPASSWORD": parts.password, "PGDATABASE": parts.database}
    return {**os.environ, **{k: str(v) for k, v in values.items() if v is not None}}


def _run(command: list[str], url: str, what: str) -> None:
    result = subprocess.run(command, env=_pg_environment(url), capture_output=True, text=True,
                            check=False, timeout=3600)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise BackupError(f"{what} failed: {last}")


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` into ``target`` (page by page, consistent)."""
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _dump(url: str, target: Path, pg_bin: str) -> bool:
    """Write database ``url`` into ``target``; False when there is none to back up (a
    SQLite file not yet created)."""
    path = sqlite_file(url)
    if path is not None:
        if not path.exists():
            return False
        _copy_sqlite(path, target)
        return True
    _run([pg_program("pg_dump", pg_bin), "--format=custom", "--no-owner", f"--file={target}"],
         url, "pg_dump")
    return True


def create_backup(
    folder: Path, database_url: str, tracker_url: str, revision: str | None, *,
    now: datetime, pg_bin: str = "",
) -> Backup:
    """Back up both databases into a new folder under ``folder``; return it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = PREFIX + now.astimezone(UTC).strftime(TIME_FORMAT)
    if (folder / name).exists():
        raise BackupError(f"{folder / name} already exists")
    partial = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder))  # mode 0700
    try:
        files: dict[str, dict[str, object]] = {}
        for stem, url in _targets(database_url, tracker_url):
            target = partial / f"{stem}.{_kind(url)}"
            if _dump(url, target, pg_bin):
                target.chmod(0o600)
                files[target.name] = {"bytes": target.stat().st_size, "sha256": _sha256(target)}
        manifest = {"created_at": now.astimezone(UTC).isoformat(), "api_revision": revision,
                    "files": files}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (partial / MANIFEST).chmod(0o600)
        partial.rename(folder / name)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Backup(folder / name, now)


def backups(folder: Path) -> list[Backup]:
    """The complete backups under ``folder``, oldest first."""
    found = []
    for path in folder.glob(PREFIX + "*") if folder.is_dir() else []:
        try:
            manifest = json.loads((path / MANIFEST).read_text())
            found.append(Backup(path, datetime.fromisoformat(manifest["created_at"])))
        except (OSError, ValueError, KeyError):
            continue  # not a backup of ours
    return sorted(found, key=lambda b: b.created_at)


def prune(folder: Path, keep_days: int, now: datetime) -> list[Path]:
    """Delete the backups made more than ``keep_days`` days before ``now`` (0: none is
    deleted); return their folders."""
    if keep_days <= 0:
        return []
    cutoff = now - timedelta(days=keep_days)
    gone = [b.folder for b in backups(folder) if b.created_at < cutoff]
    for path in gone:
        shutil.rmtree(path)
    return gone


def verify(backup: Path) -> dict[str, Path]:
    """Check ``backup`` against its manifest; return its files by database stem."""
    try:
        manifest = json.loads((backup / MANIFEST).read_text())
        listed: dict[str, dict[str, object]] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise BackupError(f"{backup} is not a backup (no readable {MANIFEST})") from None
    files = {}
    for name, expected in listed.items():
        path = backup / name
        if not path.is_file():
            raise BackupError(f"{name} is missing from {backup}")
        if path.stat().st_size != expected.get("bytes") or _sha256(path) != expected.get("sha256"):
            raise BackupError(f"{name} in {backup} is not the file that was backed up")
        files[name.partition(".")[0]] = path
    return files


def _targets(database_url: str, tracker_url: str) -> Iterator[tuple[str, str]]:
    yield from zip(DATABASES, (database_url, tracker_url), strict=True)


def restore_backup(backup: Path, database_url: str, tracker_url: str, *, pg_bin: str = "") -> list[str]:
    """Replace both databases' content with ``backup``'s; return the stems restored.
    Nothing is changed unless the whole backup checks out and fits the databases."""
    files = verify(backup)
    for stem, url in _targets(database_url, tracker_url):
        if stem in files and files[stem].suffix != f".{_kind(url)}":
            raise BackupError(f"{files[stem].name} cannot be restored into a {_kind(url)} database")
    if "pgdump" in {_kind(url) for _, url in _targets(database_url, tracker_url)}:
        pg_program("pg_restore", pg_bin)  # found before anything is changed
    restored = []
    for stem, url in _targets(database_url, tracker_url):
        if stem not in files:
            continue
        path = sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _copy_sqlite(files[stem], path)
        else:
            _run([pg_program("pg_restore", pg_bin), "--clean", "--if-exists", "--no-owner",
                  "--single-transaction", f"--dbname={make_url(url).database}",
                  str(files[stem])], url, "pg_restore")
        restored.append(stem)
    return restored
