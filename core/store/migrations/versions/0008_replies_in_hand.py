"""several hosts: the replies each host has in hand, so a survivor finishes a dead host's

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # if_not_exists: see 0001 (half-built databases from older versions are completed).
    op.create_table(
        "replies_in_hand",
        sa.Column("reply_id", sa.String(length=32), nullable=False),
        sa.Column("place_key", sa.String(length=200), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("takeovers", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("reply_id"),
        if_not_exists=True,
    )
    op.create_index("ix_replies_in_hand_host", "replies_in_hand", ["host"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_replies_in_hand_host", table_name="replies_in_hand")
    op.drop_table("replies_in_hand")
