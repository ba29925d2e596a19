"""access by request: grants, requests, audit

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PENDING_ONLY = sa.text("status = 'pending'")


def upgrade() -> None:
    # if_not_exists: see 0001 (half-built databases from older versions are completed).
    op.create_table(
        "access_grants",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=64), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "workspace_id", "user_id"),
        if_not_exists=True,
    )
    op.create_index("ix_access_grants_user", "access_grants", ["platform", "user_id"], if_not_exists=True)
    op.create_index("ix_access_grants_expiry", "access_grants", ["status", "expires_at"], if_not_exists=True)

    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_access_requests_workspace",
        "access_requests",
        ["platform", "workspace_id", "status", "created_at"],
        if_not_exists=True,
    )
    # At most one pending request per member: both SQLite and PostgreSQL enforce partial indexes.
    op.create_index(
        "uq_access_requests_one_pending",
        "access_requests",
        ["platform", "workspace_id", "user_id"],
        unique=True,
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
        if_not_exists=True,
    )

    op.create_table(
        "access_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=1200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        if_not_exists=True,
    )
    op.create_index(
        "ix_access_audit_workspace", "access_audit", ["platform", "workspace_id", "at"], if_not_exists=True
    )
    op.create_index(
        "ix_access_audit_target",
        "access_audit",
        ["platform", "workspace_id", "target_id", "at"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_access_audit_target", table_name="access_audit")
    op.drop_index("ix_access_audit_workspace", table_name="access_audit")
    op.drop_table("access_audit")
    op.drop_index("uq_access_requests_one_pending", table_name="access_requests")
    op.drop_index("ix_access_requests_workspace", table_name="access_requests")
    op.drop_table("access_requests")
    op.drop_index("ix_access_grants_expiry", table_name="access_grants")
    op.drop_index("ix_access_grants_user", table_name="access_grants")
    op.drop_table("access_grants")
