"""Red flags, the decision-support record, the consultation summary, callback requests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Columns are added with plain ``ALTER TABLE ... ADD COLUMN`` (their CHECK constraints inline),
never by batch mode's copy-and-swap: on SQLite with foreign keys on, dropping the old
``conversations`` table would cascade-delete every message.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of api.models.sql_check at this revision (migrations never import app code).
LEVELS = "'prompt', 'same_day', 'emergency', 'crisis'"


def _level_column(table: str, name: str) -> sa.Column[str]:
    return sa.Column(
        name,
        sa.String(length=16),
        sa.CheckConstraint(
            f"{name} IS NULL OR {name} IN ({LEVELS})", name=op.f(f"ck_{table}_{name}")
        ),
        nullable=True,
    )


def upgrade() -> None:
    op.add_column("conversations", _level_column("conversations", "red_flag_level"))
    op.add_column(
        "conversations", sa.Column("red_flag_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "conversations",
        sa.Column("record", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
    )
    op.add_column("conversations", sa.Column("summary", sa.JSON(), nullable=True))
    op.add_column(
        "conversations", sa.Column("summary_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        op.f("ix_conversations_red_flag_level"), "conversations", ["red_flag_level"], unique=False
    )

    op.add_column("messages", _level_column("messages", "red_flag"))
    op.add_column("messages", sa.Column("red_flag_names", sa.JSON(), nullable=True))

    op.create_table(
        "callback_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("preferred_time", sa.String(length=200), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'done')", name=op.f("ck_callback_requests_status")),
        sa.CheckConstraint(
            "phone IS NOT NULL OR email IS NOT NULL", name=op.f("ck_callback_requests_contact")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_callback_requests_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_requests")),
    )
    op.create_index(
        op.f("ix_callback_requests_conversation_id"),
        "callback_requests",
        ["conversation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_callback_requests_status"), "callback_requests", ["status"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_callback_requests_status"), table_name="callback_requests")
    op.drop_index(op.f("ix_callback_requests_conversation_id"), table_name="callback_requests")
    op.drop_table("callback_requests")
    # Plain DROP COLUMN (SQLite 3.35+), for the same reason as above.
    op.drop_column("messages", "red_flag_names")
    op.drop_column("messages", "red_flag")
    op.drop_index(op.f("ix_conversations_red_flag_level"), table_name="conversations")
    for column in ("summary_at", "summary", "record", "red_flag_at", "red_flag_level"):
        op.drop_column("conversations", column)
