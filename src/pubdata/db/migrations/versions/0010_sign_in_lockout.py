"""Sign-in failures and locks in the database, so that the lock-out holds across server processes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_failures_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sign_in_failures_key_sha256"), ["key_sha256"], unique=False)
    op.create_table(
        "sign_in_locks",
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_sha256"),
    )
    with op.batch_alter_table("sign_in_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_locks_until"), ["until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_locks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_locks_until"))
    op.drop_table("sign_in_locks")
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_failures_key_sha256"))
        batch_op.drop_index(batch_op.f("ix_sign_in_failures_expires_at"))
    op.drop_table("sign_in_failures")
