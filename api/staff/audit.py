"""The audit log: who viewed, exported, changed or deleted what, when, and from where.

Callers add an entry with :func:`audit` and commit it together with their change. Details
are ids, counts, action names and filter values only: never message text or personal
details. Nothing in the console edits or deletes the log. An entry made while serving a
request records the client's address (``session.info``, set by ``api.deps.get_session``).

The log is a hash chain (format 1). When a session flushes new entries, :func:`_chain`
takes the database's write lock, reads the hash of the newest entry and gives each new
entry, in order::

    prev_hash  = entry_hash of the entry before it (by id), or GENESIS for the first
    entry_hash = sha256(canonical JSON of {"v": 1, "at", "actor_id", "actor_name", "action",
                 "target_type", "target_id", "client_address", "detail", "prev_hash"})

Canonical JSON: keys sorted, no spaces, UTF-8; ``at`` as ISO 8601 UTC with microseconds
(``2026-05-01T09:30:00.000000+00:00``); ``detail`` as stored (after a JSON round trip).
The id is not hashed: the order is. A unique index on ``prev_hash`` refuses a fork.
:func:`verify_chain` (``python -m api.cli audit-verify``) walks the chain by id and names
the first entry that was altered, deleted before or inserted. Anyone able to rewrite the
whole table could recompute every hash after a change: note the last hash the check prints
somewhere else, and give it back later (``--expect ID:HASH``) to prove the chain up to
there is unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy import Connection, event, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api.models import AuditEntry, StaffUser, utcnow

SYSTEM_ACTOR = "system"
"""The actor name of entries made by commands (retention) rather than a person."""
CLIENT_ADDRESS = "client_address"
"""The key of ``session.info`` holding the address of the request the session serves."""
GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry of the chain."""
CHAIN_FORMAT = 1
ADDRESS_MAX = 64


def client_address(request: Request) -> str | None:
    """The client's address as the API sees it (``MESO_TRUSTED_PROXIES`` already applied)."""
    return request.client.host[:ADDRESS_MAX] if request.client and request.client.host else None


def audit(
    session: AsyncSession,
    actor: StaffUser | str | None,
    action: str,
    /,
    target_type: str | None = None,
    target_id: str | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add one entry to ``session`` (not committed; chained when it is flushed).

    ``actor`` is the signed-in member of staff (recorded by id and username), a name for
    someone not signed in (a failed login: ``"unknown"``), or None for the system. The
    first three are positional-only, so ``detail`` may hold keys such as ``action`` or
    ``actor`` (the audit log's own filter values).
    """
    if isinstance(actor, StaffUser):
        actor_id, actor_name = actor.id, actor.username
    else:
        actor_id, actor_name = None, (actor or SYSTEM_ACTOR)[:128]
    entry = AuditEntry(actor_id=actor_id, actor_name=actor_name, action=action, detail=detail)
    entry.target_type, entry.target_id = target_type, target_id
    entry.at = utcnow()
    entry.client_address = getattr(session, "info", {}).get(CLIENT_ADDRESS)
    session.add(entry)
    return entry


# --- the chain -------------------------------------------------------------------------------


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    """The SHA-256 (hex) of the entry's canonical JSON with ``prev_hash`` (format 1)."""
    fields = {
        "v": CHAIN_FORMAT,
        "at": _utc(entry.at),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "client_address": entry.client_address,
        "detail": json.loads(json.dumps(entry.detail if entry.detail is not None else {})),
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _lock_chain(connection: Connection) -> None:
    """Hold the lock that serialises appends until this transaction ends, before the newest
    hash is read: two writers can then never chain to the same entry."""
    if connection.dialect.name == "sqlite":
        # Python's sqlite3 begins a transaction before a write only, and SQLite lets one
        # writer at a time: a write that changes nothing takes the lock (waiting for it).
        connection.execute(text("UPDATE audit_log SET id = id WHERE 0"))
    elif connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))


@event.listens_for(Session, "before_flush")
def _chain(session: Session, _context: Any, _instances: Any) -> None:
    """Chain the session's new audit entries onto the newest stored one (see the module)."""
    new = [obj for obj in session.new if isinstance(obj, AuditEntry)]
    if not new:
        return
    new.sort(key=lambda obj: inspect(obj).insert_order)  # the order they are inserted in
    connection = session.connection()
    _lock_chain(connection)
    previous = connection.scalar(
        select(AuditEntry.entry_hash).order_by(AuditEntry.id.desc()).limit(1)
    )
    previous = previous or GENESIS
    for entry in new:
        if entry.at is None:
            entry.at = utcnow()
        if entry.detail is None:
            entry.detail = {}
        entry.prev_hash = previous
        entry.entry_hash = previous = entry_hash(entry, previous)


@dataclass
class ChainReport:
    """What :func:`verify_chain` found."""

    entries: int = 0
    """Entries checked (all of them when the chain is intact)."""
    last_id: int | None = None
    last_hash: str | None = None
    bad_id: int | None = None
    """The first entry that is not what the chain says (None: intact)."""
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.bad_id is None and not self.problem


async def verify_chain(
    session: AsyncSession, expect: tuple[int, str] | None = None
) -> ChainReport:
    """Walk the log by id, recomputing every hash; stop at the first bad entry.

    ``expect`` is a head noted earlier (id, hash): that entry must still be in the chain
    with that hash.
    """
    report = ChainReport()
    wanted = GENESIS  # the prev_hash the next entry must have
    before = None  # the prev_hash of the previous entry (to recognise an inserted one)
    seen_expected = expect is None
    rows = await session.stream_scalars(
        select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=500)
    )
    async for entry in rows:
        if entry.entry_hash is None or entry.prev_hash is None:
            report.bad_id, report.problem = entry.id, "it has no hash (written outside the API)"
            return report
        if entry.prev_hash != wanted:
            if before is not None and entry.prev_hash == before and report.last_id is not None:
                report.bad_id = report.last_id
                report.problem = (
                    f"it was inserted (entry {entry.id} follows the entry before it)"
                )
            else:
                after = f"entry {report.last_id}" if report.last_id else "the start of the log"
                report.bad_id = entry.id
                report.problem = (
                    f"it does not follow {after} (an entry between them was deleted, "
                    "that entry was changed, or this one was inserted)"
                )
            return report
        if entry_hash(entry, entry.prev_hash) != entry.entry_hash:
            report.bad_id, report.problem = entry.id, "it was altered (it does not match its hash)"
            return report
        if expect is not None and entry.id == expect[0]:
            if entry.entry_hash != expect[1]:
                report.bad_id = entry.id
                report.problem = "its hash is not the one noted (the chain up to it was rewritten)"
                return report
            seen_expected = True
        before, wanted = wanted, entry.entry_hash
        report.entries += 1
        report.last_id, report.last_hash = entry.id, entry.entry_hash
    if not seen_expected and expect is not None:
        report.problem = f"entry {expect[0]}, noted earlier, is missing (the log was cut)"
    return report
