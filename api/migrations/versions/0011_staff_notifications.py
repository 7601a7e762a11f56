"""Staff notifications: the outbox of red flags, callback requests and reminders.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

A new table only (``api.models.StaffNotification``): a kind, a red-flag level, times and
delivery state, keyed to its conversation (deleted with it); no health or contact detail.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "staff_notifications"
LEVELS = "'prompt', 'same_day', 'emergency', 'crisis'"
"""The red-flag levels as of this revision (``contract.levels``)."""


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('red_flag', 'callback', 'reminder')", name=op.f("ck_staff_notifications_kind")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name=op.f("ck_staff_notifications_status")),
        sa.CheckConstraint(f"level IS NULL OR level IN ({LEVELS})", name=op.f("ck_staff_notifications_level")),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_staff_notifications_conversation_id_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
    )
    for column in ("conversation_id", "status", "next_attempt_at"):
        op.create_index(op.f(f"ix_{TABLE}_{column}"), TABLE, [column], unique=False)


def downgrade() -> None:
    for column in ("conversation_id", "status", "next_attempt_at"):
        op.drop_index(op.f(f"ix_{TABLE}_{column}"), table_name=TABLE)
    op.drop_table(TABLE)
