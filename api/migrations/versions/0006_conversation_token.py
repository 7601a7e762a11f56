"""The conversation's own secret, apart from its id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Only a hash of the token is stored (``api.conversation_auth``); conversations from before
have none and can no longer be opened through the public API (staff still see them).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("token_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "token_hash")
