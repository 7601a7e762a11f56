"""Staff console: accounts, sessions, the audit log, tags and notes; review marks on
conversations and who closed a callback request.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-13

Columns are added in place (see 0002). The small helpers below only shorten the column
definitions; like the rest of a migration they are frozen at this revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _str(name: str, length: int, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _time(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _serial() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _flag(name: str, default: Any) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), server_default=default, nullable=False)


def _cascade(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    name = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{name}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.add_column("conversations", _time("reviewed_at", nullable=True))
    op.add_column("conversations", _str("reviewed_by", 128, nullable=True))
    op.add_column("conversations", _flag("staff_flag", sa.false()))
    op.add_column("callback_requests", _str("done_by", 128, nullable=True))

    op.create_table(
        "staff_users",
        _serial(),
        _str("username", 64),
        _str("display_name", 128),
        _str("role", 16),
        _str("password_hash", 255),
        _str("totp_secret", 64, nullable=True),
        _flag("is_active", sa.true()),
        _time("created_at"),
        _time("last_login_at", nullable=True),
        sa.CheckConstraint("role IN ('admin', 'reviewer')", name=op.f("ck_staff_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
    )
    op.create_index("uq_staff_users_username", "staff_users", ["username"], unique=True)
    op.create_table(
        "staff_sessions",
        _str("id", 64),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _str("csrf_token", 64),
        _flag("mfa_pending", sa.false()),
        sa.Column("mfa_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _time("created_at"),
        _time("last_seen_at"),
        _cascade("user_id", "staff_sessions", "staff_users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
    )
    op.create_index(op.f("ix_staff_sessions_user_id"), "staff_sessions", ["user_id"])
    op.create_table(
        "audit_log",
        _serial(),
        _time("at"),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        _str("actor_name", 128),
        _str("action", 64),
        _str("target_type", 32, nullable=True),
        _str("target_id", 128, nullable=True),
        sa.Column("detail", sa.JSON(), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    for column in ("at", "actor_name", "action"):
        op.create_index(op.f(f"ix_audit_log_{column}"), "audit_log", [column])
    op.create_table(
        "conversation_tags",
        _str("conversation_id", 128),
        _str("tag", 64),
        _time("created_at"),
        _str("created_by", 128),
        _cascade("conversation_id", "conversation_tags", "conversations.id"),
        sa.PrimaryKeyConstraint("conversation_id", "tag", name=op.f("pk_conversation_tags")),
    )
    op.create_index(op.f("ix_conversation_tags_tag"), "conversation_tags", ["tag"])
    op.create_table(
        "staff_notes",
        _serial(),
        _str("conversation_id", 128),
        _str("author_name", 128),
        sa.Column("text", sa.Text(), nullable=False),
        _time("created_at"),
        _cascade("conversation_id", "staff_notes", "conversations.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notes")),
    )
    op.create_index(op.f("ix_staff_notes_conversation_id"), "staff_notes", ["conversation_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_notes_conversation_id"), table_name="staff_notes")
    op.drop_table("staff_notes")
    op.drop_index(op.f("ix_conversation_tags_tag"), table_name="conversation_tags")
    op.drop_table("conversation_tags")
    for column in ("action", "actor_name", "at"):
        op.drop_index(op.f(f"ix_audit_log_{column}"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_staff_sessions_user_id"), table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index("uq_staff_users_username", table_name="staff_users")
    op.drop_table("staff_users")
    op.drop_column("callback_requests", "done_by")
    for column in ("staff_flag", "reviewed_by", "reviewed_at"):
        op.drop_column("conversations", column)
