"""metering: a usage row per model request (linked to its reply), and the pseudonym salt

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The revision runs in one transaction (see core/store/engine.py), so a kill between the
    # statements leaves `usage` as it was; SQLite has no ADD COLUMN IF NOT EXISTS.
    # Rows from before: one per reply, so attempt 0 and no reply id is what they are.
    op.add_column("usage", sa.Column("reply_id", sa.String(length=32), nullable=False, server_default=""))
    op.add_column("usage", sa.Column("attempt", sa.Integer(), nullable=False, server_default="0"))
    # if_not_exists: see 0001 (half-built databases from older versions are completed).
    op.create_table(
        "usage_salt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("usage_salt")
    op.drop_column("usage", "attempt")
    op.drop_column("usage", "reply_id")
