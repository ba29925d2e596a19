"""The repository of access by request: every SQL statement core.access needs, so its services
decide what to do and what to say, and this decides how it is read and written, and on which
path. Reads are in core.store.access_reads (the access check in one hop through `store.reads`,
core.store.hot_reads); the writes are here, each in a `store.session()`; the statements they
share are in core.store.access_sql.

Every write is a compare-and-set (`UPDATE ... WHERE status = 'pending'`, a version column, a
partial unique index), so two moderators, two buttons or two hosts acting at once leave one
decision and a consistent store on SQLite and PostgreSQL alike. Each change adds its audit row
in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core.access.grant_plan import GrantChange, plan_grant
from core.access.values import DueGrant, RequestView
from core.errors import StoreError
from core.events import User
from core.store.access_reads import AccessReads
from core.store.access_sql import (
    GrantKey,
    active_grant,
    add_audit,
    cas,
    grant_values,
    request_view,
    set_grant,
)
from core.store.access_tables import AccessGrant, AccessRequest

# Audit detail for a change, worded by the caller once the change is known.
Detail = Callable[[GrantChange], str]


class AccessRepository(AccessReads):
    """Every read (AccessReads) and write of the access tables, for core.access. One per
    service: it keeps the access check's prepared statements."""

    # ------------------------------------------------------------ requests

    async def add_request(
        self, user: User, workspace_id: str, reason: str, now: datetime
    ) -> RequestView | None:
        """The new pending request, audited; None when the member already has one waiting
        (the partial unique index said no: a second request raced the first)."""
        row = AccessRequest(
            platform=user.platform,
            workspace_id=workspace_id,
            user_id=user.id,
            user_name=user.name[:200],
            reason=reason,
            created_at=now,
        )
        try:
            async with self._store.session() as session:
                session.add(row)
                await session.flush()
                view = request_view(row)
                add_audit(
                    session, user.platform, workspace_id, user.id, user.name, user.id, "request", reason, now
                )
        except IntegrityError:
            return None
        return view

    async def withdraw(self, user: User, workspace_id: str, now: datetime) -> bool:
        """Mark the member's pending request withdrawn, audited; False when there was none."""
        async with self._store.session() as session:
            result = await session.exec(
                cas(
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.platform) == user.platform,
                        col(AccessRequest.workspace_id) == workspace_id,
                        col(AccessRequest.user_id) == user.id,
                        col(AccessRequest.status) == "pending",
                    )
                    .values(status="withdrawn", decided_by=user.id, decided_at=now)
                )
            )
            if result.rowcount:
                add_audit(
                    session, user.platform, workspace_id, user.id, user.name, user.id, "withdraw", "", now
                )
        return bool(result.rowcount)

    async def decide(
        self,
        request_id: int,
        moderator: User,
        *,
        approve: bool,
        reason: str,
        days: int | None,
        now: datetime,
        note: str,
        detail: Callable[[GrantChange | None], str],
    ) -> tuple[bool, RequestView | None, GrantChange | None]:
        """Claim a pending request in the moderator's workspace for them and, when approving,
        grant with `note`: whether this call decided it, the request as it now stands (None
        when there is no such request), and what the grant did."""
        status = "approved" if approve else "denied"
        change: GrantChange | None = None
        async with self._store.session() as session:
            # The claim is the transaction's first statement: on SQLite it takes the write lock,
            # on PostgreSQL it waits for a rival's row lock and then sees its decision.
            claimed = await session.exec(
                cas(
                    update(AccessRequest)
                    .where(
                        col(AccessRequest.id) == request_id,
                        col(AccessRequest.status) == "pending",
                        col(AccessRequest.platform) == moderator.platform,
                        col(AccessRequest.workspace_id) == moderator.workspace_id,
                    )
                    .values(status=status, decided_by=moderator.id, decided_at=now, decision_note=reason)
                )
            )
            row = await session.get(AccessRequest, request_id, populate_existing=True)
            if claimed.rowcount and row is not None:
                if approve:
                    key = (row.platform, row.workspace_id, row.user_id)
                    change = await self._put_grant(session, key, moderator.id, days, note, now)
                action = "approve" if approve else "deny"
                add_audit(
                    session,
                    row.platform,
                    row.workspace_id,
                    moderator.id,
                    moderator.name,
                    row.user_id,
                    action,
                    detail(change),
                    now,
                )
        return bool(claimed.rowcount), (request_view(row) if row is not None else None), change

    # ------------------------------------------------------------ grants

    async def grant(
        self, key: GrantKey, by: User, days: int | None, note: str, now: datetime, detail: Detail
    ) -> GrantChange:
        """Create, renew or extend a grant, audited unless nothing changed."""
        platform, workspace_id, target_id = key
        async with self._store.session() as session:
            change = await self._put_grant(session, key, by.id, days, note, now)
            if change.action != "kept":
                add_audit(
                    session,
                    platform,
                    workspace_id,
                    by.id,
                    by.name,
                    target_id,
                    change.action,
                    detail(change),
                    now,
                )
        return change

    async def revoke(self, key: GrantKey, by: User, now: datetime, detail: str) -> bool:
        """End a live grant, audited; False when there was none."""
        platform, workspace_id, target_id = key
        async with self._store.session() as session:
            result = await session.exec(
                cas(
                    update(AccessGrant)
                    .where(
                        col(AccessGrant.platform) == platform,
                        col(AccessGrant.workspace_id) == workspace_id,
                        col(AccessGrant.user_id) == target_id,
                        active_grant(now),
                    )
                    .values(
                        status="revoked", ended_by=by.id, ended_at=now, version=col(AccessGrant.version) + 1
                    )
                )
            )
            if result.rowcount:
                add_audit(session, platform, workspace_id, by.id, by.name, target_id, "revoke", detail, now)
        return bool(result.rowcount)

    async def expire(self, grant: DueGrant, actor_id: str, now: datetime, detail: str) -> bool:
        """Mark a due grant expired, audited; False when another host or sweep got there first."""
        key = (grant.platform, grant.workspace_id, grant.user_id)
        async with self._store.session() as session:
            # The version check makes one host (or one sweep) the only one to record it.
            if not await set_grant(
                session, key, grant.version, {"status": "expired", "ended_at": grant.expires_at}
            ):
                return False
            add_audit(
                session,
                grant.platform,
                grant.workspace_id,
                actor_id,
                actor_id,
                grant.user_id,
                "expire",
                detail,
                now,
            )
        return True

    async def _put_grant(
        self, session: AsyncSession, key: GrantKey, by_id: str, days: int | None, note: str, now: datetime
    ) -> GrantChange:
        """Apply `plan_grant` with compare-and-set on the row's version, planning again when a
        concurrent writer changed it between our read and our write."""
        for _ in range(5):
            current = await session.get(AccessGrant, key, populate_existing=True)
            if current is None:
                change = plan_grant(None, None, days, now)
            else:
                change = plan_grant(current.status, current.expires_at, days, now)
            if change.action == "kept":
                return change
            values = grant_values(change, by_id, note, now)
            if current is None:
                if await self._insert_grant(session, key, values):
                    return change
            elif await set_grant(session, key, current.version, values):
                return change
        raise StoreError(f"the grant for {key} kept changing while it was being written")

    async def _insert_grant(self, session: AsyncSession, key: GrantKey, values: dict[str, Any]) -> bool:
        platform, workspace_id, user_id = key
        row = {"platform": platform, "workspace_id": workspace_id, "user_id": user_id, "version": 0, **values}
        result = await session.exec(self._store.insert(AccessGrant).values(row).on_conflict_do_nothing())
        return bool(result.rowcount)
