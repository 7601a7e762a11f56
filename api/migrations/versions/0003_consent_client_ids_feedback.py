"""Transcript consent and expiry of conversations; client ids, summary offers and feedback
on messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

Columns are added in place (see 0002). Conversations stored before consent was asked keep
their transcript (``transcript_consent`` true): they were kept under the notice of that time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("transcript_consent", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    for column in ("consent_at", "expired_at"):
        op.add_column("conversations", sa.Column(column, sa.DateTime(timezone=True), nullable=True))

    op.add_column("messages", sa.Column("client_id", sa.String(length=64), nullable=True))
    op.add_column(
        "messages",
        sa.Column("offers_summary", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "messages",
        sa.Column(
            "feedback",
            sa.String(length=8),
            sa.CheckConstraint(
                "feedback IS NULL OR feedback IN ('up', 'down')", name=op.f("ck_messages_feedback")
            ),
            nullable=True,
        ),
    )
    op.add_column("messages", sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "uq_messages_conversation_id_client_id",
        "messages",
        ["conversation_id", "client_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_messages_conversation_id_client_id", table_name="messages")
    for column in ("feedback_at", "feedback", "offers_summary", "client_id"):
        op.drop_column("messages", column)
    for column in ("expired_at", "consent_at", "transcript_consent"):
        op.drop_column("conversations", column)
