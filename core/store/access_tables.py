"""The tables of access by request, read and written only by its repository (core.store.access_repo,
with access_reads and access_sql).

- access_grants: one row per member and workspace; the access check reads it by primary key.
- access_requests: what members asked for and what moderators decided. A partial unique index
  allows at most one pending request per member, on SQLite and PostgreSQL alike.
- access_audit: every change (request, grant, extend, deny, revoke, expire, withdraw) with who,
  whom, when and why. Rows are only ever added.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from core.store.models import db_now

PENDING_ONLY = text("status = 'pending'")


class AccessGrant(SQLModel, table=True):
    """A member's access in one workspace. Revoking or expiring keeps the row (status says)."""

    __tablename__ = "access_grants"
    __table_args__ = (
        # Direct messages: "does this user hold access in any workspace on this platform?"
        Index("ix_access_grants_user", "platform", "user_id"),
        # The expiry sweep looks only at active grants whose time has come.
        Index("ix_access_grants_expiry", "status", "expires_at"),
    )

    platform: str = Field(primary_key=True, max_length=16)
    workspace_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(primary_key=True, max_length=64)
    status: str = Field(default="active", max_length=16)  # active|revoked|expired
    granted_by: str = Field(max_length=64)
    note: str = Field(default="", max_length=500)
    granted_at: datetime = Field(default_factory=db_now)
    # None: no end date. A grant past this moment is not access, whether or not the sweep ran.
    expires_at: datetime | None = None
    ended_by: str = Field(default="", max_length=64)
    ended_at: datetime | None = None
    # Bumped on every change, so concurrent writers can update with compare-and-set.
    version: int = 0


class AccessRequest(SQLModel, table=True):
    """A member asking for access; decided once, by whichever moderator is first."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index(
            "uq_access_requests_one_pending",
            "platform",
            "workspace_id",
            "user_id",
            unique=True,
            sqlite_where=PENDING_ONLY,
            postgresql_where=PENDING_ONLY,
        ),
        Index("ix_access_requests_workspace", "platform", "workspace_id", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    user_name: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=500)
    status: str = Field(default="pending", max_length=16)  # pending|approved|denied|withdrawn
    created_at: datetime = Field(default_factory=db_now)
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = None
    decision_note: str = Field(default="", max_length=500)


class AccessAudit(SQLModel, table=True):
    """One change to who may talk to the model: who did what to whom, when, and why."""

    __tablename__ = "access_audit"
    __table_args__ = (
        Index("ix_access_audit_workspace", "platform", "workspace_id", "at"),
        Index("ix_access_audit_target", "platform", "workspace_id", "target_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=db_now)
    platform: str = Field(max_length=16)
    workspace_id: str = Field(max_length=64)
    actor_id: str = Field(max_length=64)
    actor_name: str = Field(default="", max_length=200)
    target_id: str = Field(max_length=64)
    action: str = Field(max_length=16)
    detail: str = Field(default="", max_length=1200)
