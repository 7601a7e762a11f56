"""Command line for the staff console's accounts and for data retention.

    python -m api.cli create-user --username ana --role admin [--display-name "Ana Lima"]
                                  [--password-stdin]
    python -m api.cli list-users
    python -m api.cli set-password ana [--password-stdin]
    python -m api.cli deactivate ana
    python -m api.cli reset-totp ana
    python -m api.cli retention [--days N] [--dry-run]
    python -m api.cli audit-verify [--expect ID:HASH]
    python -m api.cli migrate
    python -m api.cli scrub
    python -m api.cli backup
    python -m api.cli restore BACKUP_FOLDER

It uses the API's settings (``MESO_DATABASE_URL``, ``MESO_TRACKER_URL``,
``MESO_RETENTION_DAYS``) and brings the database to the newest migration first; ``migrate``
does only that, as its own step before API workers start (``make migrate``; ``make run``
runs it before the API, which then never migrates: ``MESO_MIGRATE_ON_START``). ``scrub``
rewrites the tables that held erased conversations now, rather than at the API's next
scheduled round (``api.scrub``; on PostgreSQL only, SQLite needs none). ``backup`` writes
both databases into a new folder under ``MESO_BACKUP_DIR`` and deletes backups older than
``MESO_BACKUP_KEEP_DAYS`` (``retention`` deletes those too); ``restore`` puts one back, the
API and Rasa stopped (``api.backup``). There is no
default account and no default password: passwords are typed twice (hidden), or read from
the first line of standard input with ``--password-stdin``. Changes are audited with the
actor "system".

Admins (everyone with ``MESO_STAFF_REQUIRE_TOTP=all``) must use a second factor: a new
admin's first login with the password goes straight to setting it up, before any other page.
``reset-totp`` turns it off for someone who lost their device (also the last admin), who then
sets up a new one at their next login.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.db import create_engine, create_sessionmaker, current_revision, upgrade_head
from api import backup as backups
from api.models import STAFF_ROLES, StaffUser, utcnow
from api.scrub import scrub
from api.settings import Settings
from api.staff import accounts
from api.staff.audit import verify_chain
from api.staff.erasure import apply_retention, count_older
from api.tracker_store import TrackerStore


class CommandError(Exception):
    """A refusal to report on standard error (exit status 1)."""


def read_password(args: argparse.Namespace, stdin: TextIO) -> str:
    """The new password: first line of stdin, or typed twice without echo."""
    if args.password_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise CommandError("The two passwords are not the same.")
    return first


async def _user(db: AsyncSession, username: str) -> StaffUser:
    user = await accounts.find_user(db, username)
    if user is None:
        raise CommandError(f"There is no account called {username.strip().lower()}.")
    return user


async def create_user(
    db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO
) -> None:
    username = accounts.normalise_username(args.username)
    if await accounts.find_user(db, username) is not None:
        raise CommandError(f"There is already an account called {username}.")
    user = await accounts.create_user(
        db,
        username=username,
        display_name=args.display_name or "",
        role=args.role,
        password=read_password(args, stdin),
        actor=None,
    )
    await db.commit()
    print(f"Created {user.role} {user.username}.", file=out)


async def list_users(
    db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO
) -> None:
    users = (await db.scalars(select(StaffUser).order_by(StaffUser.username))).all()
    if not users:
        print(
            "No accounts yet. Create the first admin with: "
            "python -m api.cli create-user --username NAME --role admin",
            file=out,
        )
        return
    for user in users:
        status = "active" if user.is_active else "deactivated"
        two_step = "two-step on" if user.totp_secret else "two-step off"
        last = user.last_login_at.isoformat(timespec="minutes") if user.last_login_at else "never"
        print(f"{user.username}\t{user.role}\t{status}\t{two_step}\tlast login {last}", file=out)


async def set_password(
    db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO
) -> None:
    user = await _user(db, args.username)
    await accounts.set_password(db, user, read_password(args, stdin), None)
    await db.commit()
    print(f"New password set for {user.username}; their sessions have ended.", file=out)


async def deactivate(
    db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO
) -> None:
    user = await _user(db, args.username)
    await accounts.set_active(db, user, False, None)
    await db.commit()
    print(f"{user.username} is deactivated.", file=out)


async def reset_totp(
    db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO
) -> None:
    user = await _user(db, args.username)
    if user.totp_secret is None:
        print(f"{user.username} has no two-step login to reset.", file=out)
        return
    await accounts.reset_totp(db, user, None)
    await db.commit()
    print(f"Two-step login is off for {user.username}; they set it up again at login.", file=out)


async def retention(
    db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO, settings: Settings
) -> None:
    days = settings.retention_days if args.days is None else args.days
    now = utcnow()
    if days <= 0:
        print("Retention is off (0 days): no conversation is deleted.", file=out)
        if not args.dry_run:
            _prune_backups(settings, now, out)
        return
    if args.dry_run:
        count = await count_older(db, days, now)
        print(
            f"{count} conversations are older than {days} days (dry run: nothing deleted).",
            file=out,
        )
        return
    tracker = TrackerStore(settings.tracker_url)
    try:
        deleted = await apply_retention(db, tracker, days, now, None)
    finally:
        await tracker.dispose()
    print(f"Erased {deleted} conversations older than {days} days.", file=out)
    _prune_backups(settings, now, out)


async def scrub_now(engine: AsyncEngine, settings: Settings, out: TextIO) -> None:
    tracker = TrackerStore(settings.tracker_url)
    try:
        if "postgresql" not in {engine.dialect.name, tracker.dialect}:
            print("Both databases are SQLite: an erasure leaves nothing to scrub.", file=out)
            return
        if not await scrub(engine, tracker):
            raise CommandError("The scrub could not lock a table in time (see the log): run it again.")
    finally:
        await tracker.dispose()
    print("The tables that held erased conversations were rewritten.", file=out)


async def backup(engine: AsyncEngine, settings: Settings, out: TextIO) -> None:
    now = utcnow()
    revision = await current_revision(engine)
    try:
        made = await asyncio.to_thread(
            backups.create_backup, settings.backup_dir, settings.database_url,
            settings.tracker_url, revision, now=now, pg_bin=settings.pg_bin)
    except backups.BackupError as exc:
        raise CommandError(f"No backup was made: {exc}") from None
    print(f"Backed up to {made.folder}", file=out)
    _prune_backups(settings, now, out)


def _prune_backups(settings: Settings, now: datetime, out: TextIO) -> None:
    gone = backups.prune(settings.backup_dir, settings.backup_keep_days, now)
    if gone:
        print(f"Deleted {len(gone)} backups older than {settings.backup_keep_days} days.", file=out)


async def restore(args: argparse.Namespace, settings: Settings, out: TextIO) -> None:
    try:
        restored = await asyncio.to_thread(
            backups.restore_backup, args.folder.resolve(), settings.database_url,
            settings.tracker_url, pg_bin=settings.pg_bin)
    except backups.BackupError as exc:
        raise CommandError(f"Nothing was restored: {exc}") from None
    names = {"api": "the API's database", "tracker": "Rasa's tracker store"}
    print(f"Restored {' and '.join(names[s] for s in restored)} from {args.folder}.", file=out)


def _noted_head(value: str) -> tuple[int, str]:
    entry, _, digest = value.partition(":")
    if not entry.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError("give ID:HASH as audit-verify printed it")
    return int(entry), digest.lower()


async def audit_verify(
    db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO
) -> None:
    """Walk the audit log's hash chain; refuse (exit 1) naming the first bad entry."""
    report = await verify_chain(db, args.expect)
    if report.bad_id is not None:
        raise CommandError(
            f"The audit log is broken at entry {report.bad_id}: {report.problem}. "
            f"{report.entries} entries before it are intact."
        )
    if not report.intact:
        raise CommandError(f"The audit log is broken: {report.problem}.")
    if report.last_id is None:
        print("The audit log is empty.", file=out)
        return
    print(
        f"The audit log is intact: {report.entries} entries. Note the last one to check "
        f"later that nothing up to it changed (--expect): {report.last_id}:{report.last_hash}",
        file=out,
    )


Command = Callable[..., Coroutine[Any, Any, None]]


async def migrate(db: AsyncSession, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> None:
    """Nothing more: :func:`run` has brought the database to the newest migration."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m api.cli", description=__doc__.split("\n")[0])
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser("create-user", help="create a staff account")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=STAFF_ROLES)
    create.add_argument("--display-name", default="", help="full name (default: the username)")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    create.set_defaults(run=create_user)

    listing = commands.add_parser("list-users", help="list the staff accounts")
    listing.set_defaults(run=list_users)

    password = commands.add_parser("set-password", help="set a new password for an account")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(run=set_password)

    off = commands.add_parser("deactivate", help="deactivate an account (it cannot log in)")
    off.add_argument("username")
    off.set_defaults(run=deactivate)

    two_step = commands.add_parser(
        "reset-totp", help="turn an account's two-step login off (a lost device)"
    )
    two_step.add_argument("username")
    two_step.set_defaults(run=reset_totp)

    keep = commands.add_parser(
        "retention", help="erase conversations idle longer than the retention period"
    )
    keep.add_argument("--days", type=int, help="override MESO_RETENTION_DAYS (0: keep all)")
    keep.add_argument("--dry-run", action="store_true", help="only count them")
    keep.set_defaults(run=retention)

    verify = commands.add_parser(
        "audit-verify",
        help="check the audit log's hash chain (exit 1 naming the first bad entry)",
    )
    verify.add_argument(
        "--expect",
        type=_noted_head,
        metavar="ID:HASH",
        help="an entry printed by an earlier check, which must still be there unchanged",
    )
    verify.set_defaults(run=audit_verify)

    upgrade = commands.add_parser(
        "migrate", help="bring the database to the newest migration (once, before API workers start)")
    upgrade.set_defaults(run=migrate)

    rewrite = commands.add_parser(
        "scrub", help="rewrite the tables that held erased conversations (PostgreSQL: VACUUM FULL)")
    rewrite.set_defaults(run=scrub_now)

    save = commands.add_parser(
        "backup", help="back up both databases (and delete backups past MESO_BACKUP_KEEP_DAYS)")
    save.set_defaults(run=backup)
    put_back = commands.add_parser(
        "restore", help="replace both databases' content with a backup's (stop the API and Rasa first)")
    put_back.add_argument("folder", type=Path, help="the backup's folder (meso-<time>)")
    put_back.set_defaults(run=restore)
    return root


async def run(args: argparse.Namespace, settings: Settings, out: TextIO, stdin: TextIO) -> None:
    if args.run is restore:  # before anything opens (or migrates) the database
        await restore(args, settings, out)
        return
    engine = create_engine(settings.database_url)
    try:
        if args.run is migrate:
            before = await current_revision(engine)
            await upgrade_head(engine)
            after = await current_revision(engine)
            print(f"The database is at the newest migration, {after}"
                  + (" (it already was)." if before == after else f" (it was at {before or 'none'})."), file=out)
            return
        await upgrade_head(engine)
        if args.run is scrub_now:
            await scrub_now(engine, settings, out)
            return
        if args.run is backup:
            await backup(engine, settings, out)
            return
        async with create_sessionmaker(engine)() as db:
            if args.run is retention:
                await retention(db, args, out, stdin, settings)
            else:
                await args.run(db, args, out, stdin)
    finally:
        await engine.dispose()


def main(
    argv: list[str] | None = None,
    *,
    settings: Settings | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Run one command; return the exit status (0 done, 1 refused, 2 bad usage)."""
    args = parser().parse_args(argv)
    if getattr(args, "days", None) is not None and args.days < 0:
        print("--days must be 0 or more.", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args, settings or Settings(), out or sys.stdout, stdin or sys.stdin))
    except (CommandError, accounts.AccountError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
