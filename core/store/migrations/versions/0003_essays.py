"""essay announcements: feeds, essays, subscriptions, the delivery outbox, discussion threads

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    # if_not_exists: see 0001 (half-built databases from older versions are completed).
    op.create_table(
        "essay_feeds",
        _text("url", 500),
        _text("etag", 300),
        _text("last_modified", 100),
        sa.Column("seeded", sa.Boolean(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _when("first_failure_at", nullable=True),
        _text("last_error", 500),
        sa.Column("alerted", sa.Boolean(), nullable=False),
        _when("last_success_at", nullable=True),
        _when("next_poll_at", nullable=True),
        sa.PrimaryKeyConstraint("url"),
        if_not_exists=True,
    )
    op.create_table(
        "essay_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("platform", 16),
        _text("workspace_id", 64),
        _text("channel_id", 64),
        _text("role_id", 64),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _text("disabled_reason", 500),
        _text("disabled_by", 64),
        _text("created_by", 64),
        _when("created_at"),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "workspace_id", "channel_id", name="uq_essay_subscriptions_channel"),
        if_not_exists=True,
    )
    op.create_table(
        "essays",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("feed_url", 500),
        _text("family", 200),
        _text("guid", 1000),
        _text("post_path", 1000, nullable=True),
        _text("title", 300),
        _text("link", 2000),
        _text("summary", 400),
        _text("author", 200),
        _when("published_at", nullable=True),
        _text("image_url", 2000),
        sa.Column("full_text", sa.Text(), nullable=False),
        sa.Column("announced", sa.Boolean(), nullable=False),
        _when("recorded_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("family", "post_path", name="uq_essays_post_path"),
        sa.UniqueConstraint("guid", name="uq_essays_guid"),
        if_not_exists=True,
    )
    op.create_index("ix_essays_published", "essays", ["published_at"], if_not_exists=True)
    op.create_table(
        "essay_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("essay_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        _text("platform", 16),
        _text("workspace_id", 64),
        _text("channel_id", 64),
        _text("role_id", 64),
        _text("state", 16),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("uncertain", sa.Boolean(), nullable=False),
        _when("next_attempt_at"),
        _text("platform_message_id", 64),
        _text("last_error", 500),
        _when("created_at"),
        _when("sent_at", nullable=True),
        sa.ForeignKeyConstraint(["essay_id"], ["essays.id"]),
        sa.ForeignKeyConstraint(["subscription_id"], ["essay_subscriptions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("essay_id", "subscription_id", name="uq_essay_deliveries_once"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_essay_deliveries_due",
        "essay_deliveries",
        ["platform", "state", "next_attempt_at"],
        if_not_exists=True,
    )
    op.create_index(
        "ix_essay_deliveries_subscription",
        "essay_deliveries",
        ["subscription_id", "state"],
        if_not_exists=True,
    )
    op.create_table(
        "essay_threads",
        _text("platform", 16),
        _text("workspace_id", 64),
        _text("channel_id", 64),
        _text("thread_id", 64),
        sa.Column("essay_id", sa.Integer(), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(["essay_id"], ["essays.id"]),
        sa.PrimaryKeyConstraint("platform", "workspace_id", "channel_id", "thread_id"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("essay_threads")
    op.drop_index("ix_essay_deliveries_subscription", table_name="essay_deliveries")
    op.drop_index("ix_essay_deliveries_due", table_name="essay_deliveries")
    op.drop_table("essay_deliveries")
    op.drop_index("ix_essays_published", table_name="essays")
    op.drop_table("essays")
    op.drop_table("essay_subscriptions")
    op.drop_table("essay_feeds")
