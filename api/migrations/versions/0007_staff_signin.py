"""Staff sign-in hardening: no replayed TOTP code, wrong codes counted per account, and when
a session last checked the password or a code (recent re-authentication).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Columns are added in place (see 0002).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("staff_users", sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.add_column(
        "staff_users",
        sa.Column("totp_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "staff_users", sa.Column("totp_locked_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "staff_sessions",
        sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("staff_sessions", "authenticated_at")
    for column in ("totp_locked_until", "totp_failures", "totp_last_step"):
        op.drop_column("staff_users", column)
