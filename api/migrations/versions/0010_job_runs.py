"""When each background job last started, so one worker runs each round.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

A new table only (``api.models.JobRun``): a job's name and a time, no personal data.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "job_runs"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f(f"pk_{TABLE}")),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
