"""The audit log: who viewed, exported, changed or deleted what, and when.

Callers add an entry with :func:`audit` and commit it together with their change. Details
are ids, counts, action names and filter values only: never message text or personal
details. Nothing in the console edits or deletes the log.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.models import AuditEntry, StaffUser

SYSTEM_ACTOR = "system"
"""The actor name of entries made by commands (retention) rather than a person."""


def audit(
    session: AsyncSession,
    actor: StaffUser | str | None,
    action: str,
    /,
    target_type: str | None = None,
    target_id: str | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add one entry to ``session`` (not committed).

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
    session.add(entry)
    return entry
