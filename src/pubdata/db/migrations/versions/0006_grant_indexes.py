"""Indexes on grants by organisation and by entry: "what may I see" looks grants up both ways.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:13:53.915431
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grants_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_grants_organisation_id"), ["organisation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grants_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_grants_entry_id"))
