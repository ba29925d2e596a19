"""The reads of access by request: the access check's one-hop statement (through
`store.reads`, core.store.hot_reads) and the lists moderators and the sweep read (in a
`store.session()`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlmodel import col, select

from core.access.values import AuditEntry, DueGrant, GateFacts, GrantView, RequestView
from core.chat import usage
from core.store.access_sql import active_grant, check_statement, grant_view, request_view
from core.store.access_tables import AccessAudit, AccessGrant, AccessRequest
from core.store.engine import Store
from core.store.pseudonyms import Pseudonyms


class AccessReads:
    """What core.access reads. It keeps the access check's prepared statements, so keep one
    per service."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._statements: dict[tuple[bool, bool, bool], Select[Any]] = {}
        self._pseudonyms = Pseudonyms(store)

    # ------------------------------------------------------------ the access check

    async def gate_facts(
        self,
        user_id: str,
        platform: str,
        workspace_id: str,
        now: datetime,
        *,
        scoped: bool,
        grant: bool,
        daily: bool,
    ) -> GateFacts:
        """Everything the check needs from the database in one prepared statement (one hop):
        a live grant (in this workspace, or in any when not `scoped`), a pending request, and
        what the member used today in this workspace."""
        key = (grant, scoped, daily)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = check_statement(*key)
        params = {
            "platform": platform,
            "workspace": workspace_id,
            "user": user_id,
            "now": now,
            "day": usage.day_start(now),
            "pseudonym": await self._pseudonyms.of(platform, workspace_id, user_id) if daily else "",
        }
        row = await self._store.reads.first(statement, params)
        # Without FROM, or with only aggregates, a select always has exactly one row.
        values: tuple[Any, ...] = tuple(row) if row is not None else ()
        granted = bool(values[0]) if grant else True
        pending = bool(values[1]) if grant and scoped else False
        requests, tokens_used = (int(values[-2]), int(values[-1])) if daily else (0, 0)
        return GateFacts(granted, pending, requests, tokens_used)

    async def spent_micros(self, platform: str, workspace_id: str, since: datetime) -> int:
        """What the workspace spent since `since`, from the usage meter."""
        totals = await usage.totals(self._store, platform=platform, workspace_id=workspace_id, since=since)
        return totals.cost_micros

    async def granting_workspace(self, platform: str, user_id: str, now: datetime) -> str | None:
        """The workspace of the member's live grant on `platform` (the latest granted), if any:
        it pays for their direct messages."""
        query = (
            select(AccessGrant.workspace_id)
            .where(AccessGrant.platform == platform, AccessGrant.user_id == user_id, active_grant(now))
            .order_by(col(AccessGrant.granted_at).desc())
            .limit(1)
        )
        async with self._store.reading() as session:
            return (await session.exec(query)).first()

    # ------------------------------------------------------------ reading

    async def live_grant(
        self, platform: str, workspace_id: str, user_id: str, now: datetime
    ) -> GrantView | None:
        query = select(AccessGrant).where(
            AccessGrant.platform == platform,
            AccessGrant.workspace_id == workspace_id,
            AccessGrant.user_id == user_id,
            active_grant(now),
        )
        async with self._store.session() as session:
            row = (await session.exec(query)).first()
        return grant_view(row) if row else None

    async def live_grants(self, platform: str, workspace_id: str, now: datetime) -> list[GrantView]:
        """Live grants in a workspace, those ending soonest first, then those without an end."""
        query = (
            select(AccessGrant)
            .where(AccessGrant.platform == platform, AccessGrant.workspace_id == workspace_id)
            .where(active_grant(now))
            .order_by(
                col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at), col(AccessGrant.user_id)
            )
        )
        async with self._store.session() as session:
            return [grant_view(row) for row in (await session.exec(query)).all()]

    async def pending_request(self, platform: str, workspace_id: str, user_id: str) -> RequestView | None:
        query = select(AccessRequest).where(
            AccessRequest.platform == platform,
            AccessRequest.workspace_id == workspace_id,
            AccessRequest.user_id == user_id,
            AccessRequest.status == "pending",
        )
        async with self._store.session() as session:
            row = (await session.exec(query)).first()
        return request_view(row) if row else None

    async def pending_requests(self, platform: str, workspace_id: str) -> list[RequestView]:
        """Waiting requests in a workspace, oldest first."""
        query = (
            select(AccessRequest)
            .where(
                AccessRequest.platform == platform,
                AccessRequest.workspace_id == workspace_id,
                AccessRequest.status == "pending",
            )
            .order_by(col(AccessRequest.created_at))
        )
        async with self._store.session() as session:
            return [request_view(row) for row in (await session.exec(query)).all()]

    async def last_denial(self, platform: str, workspace_id: str, user_id: str) -> datetime | None:
        query = (
            select(AccessRequest.decided_at)
            .where(
                AccessRequest.platform == platform,
                AccessRequest.workspace_id == workspace_id,
                AccessRequest.user_id == user_id,
                AccessRequest.status == "denied",
            )
            .order_by(col(AccessRequest.decided_at).desc())
            .limit(1)
        )
        async with self._store.session() as session:
            return (await session.exec(query)).first()

    async def audit_entries(
        self, platform: str, workspace_id: str, target_id: str | None, limit: int
    ) -> list[AuditEntry]:
        """The newest entries first."""
        query = select(AccessAudit).where(
            AccessAudit.platform == platform, AccessAudit.workspace_id == workspace_id
        )
        if target_id is not None:
            query = query.where(AccessAudit.target_id == target_id)
        query = query.order_by(col(AccessAudit.at).desc(), col(AccessAudit.id).desc()).limit(limit)
        async with self._store.session() as session:
            rows = (await session.exec(query)).all()
        return [AuditEntry(r.at, r.actor_id, r.actor_name, r.target_id, r.action, r.detail) for r in rows]

    async def due_grants(self, now: datetime, batch: int) -> list[DueGrant]:
        query = (
            select(AccessGrant)
            .where(col(AccessGrant.status) == "active", col(AccessGrant.expires_at) <= now)
            .limit(batch)
        )
        async with self._store.session() as session:
            rows = (await session.exec(query)).all()
        return [DueGrant(r.platform, r.workspace_id, r.user_id, r.expires_at, r.version) for r in rows]
