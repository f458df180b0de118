"""A security assessment may name fields of one entry that may be shared as stored (REQ-27).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("security_assessments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_fields", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("security_assessments", schema=None) as batch_op:
        batch_op.drop_column("raw_fields")
