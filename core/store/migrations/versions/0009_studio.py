"""the essay studio: the model's drafts, reviewers' decisions, previews owed to review channels

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _when(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, length: int, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    # if_not_exists: see 0001 (half-built databases from older versions are completed).
    op.create_table(
        "studio_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("uid", 36),
        _text("slot", 64, nullable=True),
        _text("strategy", 32),
        _text("alias", 64),
        sa.Column("request_json", sa.Text(), nullable=False),
        _text("provider", 16),
        _text("model", 200),
        _text("stop_reason", 32),
        sa.Column("text", sa.Text(), nullable=False),
        _text("sha256", 64),
        _text("created_by", 200),
        _when("created_at"),
        _text("state", 16),
        _when("decided_at", nullable=True),
        _text("decided_by", 200),
        _text("veto_reason", 1000),
        _text("slug", 120, nullable=True),
        sa.Column("essay_id", sa.Integer(), sa.ForeignKey("essays.id"), nullable=True),
        _when("published_at", nullable=True),
        _text("withheld_reason", 500),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slot", name="uq_studio_drafts_slot"),
        sa.UniqueConstraint("slug", name="uq_studio_drafts_slug"),
        if_not_exists=True,
    )
    op.create_index("ix_studio_drafts_state", "studio_drafts", ["state", "created_at"], if_not_exists=True)
    op.create_table(
        "studio_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), sa.ForeignKey("studio_drafts.id"), nullable=False),
        _text("platform", 16),
        _text("workspace_id", 64),
        _text("reviewer_id", 64),
        _text("reviewer_name", 200),
        _text("verdict", 16),
        _text("reason", 1000),
        _when("at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("draft_id", "platform", "reviewer_id", name="uq_studio_decisions_reviewer"),
        if_not_exists=True,
    )
    op.create_table(
        "studio_previews",
        sa.Column("draft_id", sa.Integer(), sa.ForeignKey("studio_drafts.id"), nullable=False),
        _text("platform", 16),
        _text("state", 16),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _text("last_error", 500),
        _text("channel_id", 64),
        _text("message_id", 64),
        sa.Column("outcome_tries", sa.Integer(), nullable=False),
        _when("updated_at"),
        sa.PrimaryKeyConstraint("draft_id", "platform"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("studio_previews")
    op.drop_table("studio_decisions")
    op.drop_index("ix_studio_drafts_state", table_name="studio_drafts")
    op.drop_table("studio_drafts")
