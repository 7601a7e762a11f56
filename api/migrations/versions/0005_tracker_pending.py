"""Patient messages whose turn Rasa's tracker may not agree with yet.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

A message the bot could not answer in time (or that the safety net answered) is marked until
the API has compared it with Rasa's tracker (``api.tracker_sync``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "messages",
        sa.Column("tracker_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("messages", "tracker_pending")
