"""A grant may name the competent department's coordination it comes from (not-shared entries, REQ-16).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 15:04:18.416520
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coordination", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("coordination")
