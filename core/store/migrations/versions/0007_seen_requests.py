"""signed requests already handled, so a replayed Slack request runs once on every host

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # if_not_exists: see 0001 (half-built databases from older versions are completed).
    op.create_table(
        "seen_requests",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
        if_not_exists=True,
    )
    op.create_index("ix_seen_requests_seen_at", "seen_requests", ["seen_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_seen_requests_seen_at", table_name="seen_requests")
    op.drop_table("seen_requests")
