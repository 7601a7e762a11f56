"""The audit log records the client's address and becomes a hash chain.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Entries from before this revision are chained here, in id order, as they stand at the
upgrade (their ``client_address`` is null): from then on the chain vouches for them too,
but it cannot tell whether they were changed before the upgrade. The hash is format 1 of
``api.staff.audit``, copied here so that this revision keeps meaning what it meant.
Columns are added in place (see 0002).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def _hash_v1(row: Any, prev_hash: str) -> str:
    at: datetime = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    fields = {
        "v": 1,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": row.actor_id,
        "actor_name": row.actor_name,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "client_address": None,
        "detail": row.detail if row.detail is not None else {},
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("client_address", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("entry_hash", sa.String(64), nullable=True))

    log = sa.table(
        "audit_log",
        sa.column("id", sa.Integer()),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor_id", sa.Integer()),
        sa.column("actor_name", sa.String()),
        sa.column("action", sa.String()),
        sa.column("target_type", sa.String()),
        sa.column("target_id", sa.String()),
        sa.column("detail", sa.JSON()),
        sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(log).order_by(log.c.id)).all()
    previous, chained = GENESIS, []
    for row in rows:
        current = _hash_v1(row, previous)
        chained.append({"row_id": row.id, "prev": previous, "hash": current})
        previous = current
    if chained:
        connection.execute(
            log.update()
            .where(log.c.id == sa.bindparam("row_id"))
            .values(prev_hash=sa.bindparam("prev"), entry_hash=sa.bindparam("hash")),
            chained,
        )
    op.create_index("uq_audit_log_prev_hash", "audit_log", ["prev_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_audit_log_prev_hash", table_name="audit_log")
    op.drop_column("audit_log", "entry_hash")
    op.drop_column("audit_log", "prev_hash")
    op.drop_column("audit_log", "client_address")
