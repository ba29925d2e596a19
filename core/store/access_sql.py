"""The statements and row conversions of access by request, shared by its repository's reads
(core.store.access_reads) and writes (core.store.access_repo)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Select, Update, bindparam, exists, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.access.grant_plan import GrantChange
from core.access.values import GrantView, RequestView
from core.store.access_tables import AccessAudit, AccessGrant, AccessRequest
from core.store.chat_repo import replies_counted
from core.store.models import Usage

GrantKey = tuple[str, str, str]  # platform, workspace, user: the grant's primary key


def active_grant(now: datetime) -> Any:
    """The one definition of a live grant; it never depends on the expiry sweep having run."""
    return (col(AccessGrant.status) == "active") & or_(
        col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at) > now
    )


def check_statement(grant: bool, scoped: bool, daily: bool) -> Select[Any]:
    """The access check as one statement with bind parameters (:platform, :workspace, :user,
    :pseudonym, :now, :day), built once per shape: building costs more than SQLite takes to run it.
    Unscoped (a direct message), a grant in any workspace of the platform counts."""
    columns: list[Any] = []
    if grant:
        where = [
            col(AccessGrant.platform) == bindparam("platform"),
            col(AccessGrant.user_id) == bindparam("user"),
            col(AccessGrant.status) == "active",
            or_(col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at) > bindparam("now")),
        ]
        if scoped:
            where.append(col(AccessGrant.workspace_id) == bindparam("workspace"))
        columns.append(exists().where(*where))
        if scoped:
            columns.append(
                exists().where(
                    col(AccessRequest.platform) == bindparam("platform"),
                    col(AccessRequest.workspace_id) == bindparam("workspace"),
                    col(AccessRequest.user_id) == bindparam("user"),
                    col(AccessRequest.status) == "pending",
                )
            )
    if daily:
        tokens = Usage.input_tokens + Usage.output_tokens + Usage.cache_write_tokens + Usage.cache_read_tokens
        columns += [replies_counted(), func.coalesce(func.sum(tokens), 0)]
    statement: Select[Any] = select(*columns)
    if daily:
        statement = statement.where(
            col(Usage.platform) == bindparam("platform"),
            col(Usage.workspace_id) == bindparam("workspace"),
            # A member who asked to be forgotten: this month's rows carry their pseudonym.
            or_(col(Usage.user_id) == bindparam("user"), col(Usage.user_id) == bindparam("pseudonym")),
            col(Usage.created_at) >= bindparam("day"),
        )
    return statement


def cas(statement: Update | Delete) -> Any:
    # Bulk statements: nothing in the session needs synchronising, and rowcount is the answer.
    return statement.execution_options(synchronize_session=False)


async def set_grant(session: AsyncSession, key: GrantKey, version: int, values: dict[str, Any]) -> bool:
    platform, workspace_id, user_id = key
    result = await session.exec(
        cas(
            update(AccessGrant)
            .where(
                col(AccessGrant.platform) == platform,
                col(AccessGrant.workspace_id) == workspace_id,
                col(AccessGrant.user_id) == user_id,
                col(AccessGrant.version) == version,
            )
            .values(version=version + 1, **values)
        )
    )
    return bool(result.rowcount)


def grant_values(change: GrantChange, by_id: str, note: str, now: datetime) -> dict[str, Any]:
    """The columns a planned change writes: an extension keeps the grant's start (and its note
    unless a new one is given); a fresh grant starts over."""
    if change.action == "extend":
        values: dict[str, Any] = {"expires_at": change.expires_at, "granted_by": by_id}
        if note:
            values["note"] = note
        return values
    return {
        "status": "active",
        "granted_by": by_id,
        "note": note,
        "granted_at": now,
        "expires_at": change.expires_at,
        "ended_by": "",
        "ended_at": None,
    }


def add_audit(
    session: AsyncSession,
    platform: str,
    workspace_id: str,
    actor_id: str,
    actor_name: str,
    target_id: str,
    action: str,
    detail: str,
    now: datetime,
) -> None:
    session.add(
        AccessAudit(
            at=now,
            platform=platform,
            workspace_id=workspace_id,
            actor_id=actor_id,
            actor_name=actor_name[:200],
            target_id=target_id,
            action=action,
            detail=detail[:1200],
        )
    )


def request_view(row: AccessRequest) -> RequestView:
    return RequestView(
        id=row.id or 0,
        platform=row.platform,
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        user_name=row.user_name,
        reason=row.reason,
        created_at=row.created_at,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


def grant_view(row: AccessGrant) -> GrantView:
    return GrantView(
        row.platform, row.workspace_id, row.user_id, row.granted_by, row.note, row.granted_at, row.expires_at
    )
