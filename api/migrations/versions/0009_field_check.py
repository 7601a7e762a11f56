"""The field test's anonymous results: counts per month, phase, score and SURE count.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

A new table only, with no link to any other: no conversation id, no time finer than the
month, and no row per person (see ``api.models.FieldCheckCount``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "field_check_counts"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("knowledge", sa.Integer(), nullable=False),
        sa.Column("sure", sa.Integer(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.CheckConstraint("phase IN ('before', 'after')", name=op.f(f"ck_{TABLE}_phase")),
        sa.CheckConstraint("knowledge BETWEEN 0 AND 5", name=op.f(f"ck_{TABLE}_knowledge")),
        sa.CheckConstraint("sure BETWEEN 0 AND 4", name=op.f(f"ck_{TABLE}_sure")),
        sa.CheckConstraint("checks >= 1", name=op.f(f"ck_{TABLE}_checks")),
        sa.PrimaryKeyConstraint("month", "phase", "knowledge", "sure", name=op.f(f"pk_{TABLE}")),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
