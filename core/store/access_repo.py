"""Every SQL statement of access by request: the access check's one-hop read, the lists, and
the writes, each a compare-and-set with its audit row in the same transaction.

Compare-and-set (`UPDATE ... WHERE status = 'pending'`, a version column, a partial unique
index) makes two moderators, two buttons or two hosts acting at once leave one decision and a
consistent store on SQLite and PostgreSQL alike. The services in core.access decide what to
do and what to say; this module decides how it is read and written, and on which path: the
access check through `store.reads` (one hop, core.store.hot_reads), everything else in a
`store.session()`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Select, Update, bindparam, exists, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import usage
from core.access.grant_plan import GrantChange, plan_grant
from core.access.values import AuditEntry, DueGrant, GateFacts, GrantView, RequestView
from core.errors import StoreError
from core.events import User
from core.store.access_tables import AccessAudit, AccessGrant, AccessRequest
from core.store.engine import Store
from core.store.models import Usage

GrantKey = tuple[str, str, str]  # platform, workspace, user: the grant's primary key
# Audit detail for a change, worded by the caller once the change is known.
Detail = Callable[[GrantChange], str]


class AccessRepository:
    """The access tables, read and written for core.access. One per service: it keeps the
    access check's prepared statements."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._statements: dict[tuple[bool, bool, bool], Select[Any]] = {}

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
            statement = self._statements[key] = _check_statement(*key)
        params = {
            "platform": platform,
            "workspace": workspace_id,
            "user": user_id,
            "now": now,
            "day": usage.day_start(now),
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

    # ------------------------------------------------------------ reading

    async def live_grant(
        self, platform: str, workspace_id: str, user_id: str, now: datetime
    ) -> GrantView | None:
        query = select(AccessGrant).where(
            AccessGrant.platform == platform,
            AccessGrant.workspace_id == workspace_id,
            AccessGrant.user_id == user_id,
            _active(now),
        )
        async with self._store.session() as session:
            row = (await session.exec(query)).first()
        return _grant_view(row) if row else None

    async def live_grants(self, platform: str, workspace_id: str, now: datetime) -> list[GrantView]:
        """Live grants in a workspace, those ending soonest first, then those without an end."""
        query = (
            select(AccessGrant)
            .where(AccessGrant.platform == platform, AccessGrant.workspace_id == workspace_id)
            .where(_active(now))
            .order_by(
                col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at), col(AccessGrant.user_id)
            )
        )
        async with self._store.session() as session:
            return [_grant_view(row) for row in (await session.exec(query)).all()]

    async def pending_request(self, platform: str, workspace_id: str, user_id: str) -> RequestView | None:
        query = select(AccessRequest).where(
            AccessRequest.platform == platform,
            AccessRequest.workspace_id == workspace_id,
            AccessRequest.user_id == user_id,
            AccessRequest.status == "pending",
        )
        async with self._store.session() as session:
            row = (await session.exec(query)).first()
        return _request_view(row) if row else None

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
            return [_request_view(row) for row in (await session.exec(query)).all()]

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
                view = _request_view(row)
                _audit(
                    session, user.platform, workspace_id, user.id, user.name, user.id, "request", reason, now
                )
        except IntegrityError:
            return None
        return view

    async def withdraw(self, user: User, workspace_id: str, now: datetime) -> bool:
        """Mark the member's pending request withdrawn, audited; False when there was none."""
        async with self._store.session() as session:
            result = await session.exec(
                _cas(
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
                _audit(session, user.platform, workspace_id, user.id, user.name, user.id, "withdraw", "", now)
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
                _cas(
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
                _audit(
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
        return bool(claimed.rowcount), (_request_view(row) if row is not None else None), change

    # ------------------------------------------------------------ grants

    async def grant(
        self, key: GrantKey, by: User, days: int | None, note: str, now: datetime, detail: Detail
    ) -> GrantChange:
        """Create, renew or extend a grant, audited unless nothing changed."""
        platform, workspace_id, target_id = key
        async with self._store.session() as session:
            change = await self._put_grant(session, key, by.id, days, note, now)
            if change.action != "kept":
                _audit(
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
                _cas(
                    update(AccessGrant)
                    .where(
                        col(AccessGrant.platform) == platform,
                        col(AccessGrant.workspace_id) == workspace_id,
                        col(AccessGrant.user_id) == target_id,
                        _active(now),
                    )
                    .values(
                        status="revoked", ended_by=by.id, ended_at=now, version=col(AccessGrant.version) + 1
                    )
                )
            )
            if result.rowcount:
                _audit(session, platform, workspace_id, by.id, by.name, target_id, "revoke", detail, now)
        return bool(result.rowcount)

    async def expire(self, grant: DueGrant, actor_id: str, now: datetime, detail: str) -> bool:
        """Mark a due grant expired, audited; False when another host or sweep got there first."""
        key = (grant.platform, grant.workspace_id, grant.user_id)
        async with self._store.session() as session:
            # The version check makes one host (or one sweep) the only one to record it.
            if not await _set_grant(
                session, key, grant.version, {"status": "expired", "ended_at": grant.expires_at}
            ):
                return False
            _audit(
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
            values = _grant_values(change, by_id, note, now)
            if current is None:
                if await self._insert_grant(session, key, values):
                    return change
            elif await _set_grant(session, key, current.version, values):
                return change
        raise StoreError(f"the grant for {key} kept changing while it was being written")

    async def _insert_grant(self, session: AsyncSession, key: GrantKey, values: dict[str, Any]) -> bool:
        platform, workspace_id, user_id = key
        row = {"platform": platform, "workspace_id": workspace_id, "user_id": user_id, "version": 0, **values}
        result = await session.exec(self._store.insert(AccessGrant).values(row).on_conflict_do_nothing())
        return bool(result.rowcount)


# ---------------------------------------------------------------- statements and rows


def _active(now: datetime) -> Any:
    """The one definition of a live grant; it never depends on the expiry sweep having run."""
    return (col(AccessGrant.status) == "active") & or_(
        col(AccessGrant.expires_at).is_(None), col(AccessGrant.expires_at) > now
    )


def _check_statement(grant: bool, scoped: bool, daily: bool) -> Select[Any]:
    """The access check as one statement with bind parameters (:platform, :workspace, :user,
    :now, :day), built once per shape: building costs more than SQLite takes to run it.
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
        columns += [func.count(col(Usage.id)), func.coalesce(func.sum(tokens), 0)]
    statement: Select[Any] = select(*columns)
    if daily:
        statement = statement.where(
            col(Usage.platform) == bindparam("platform"),
            col(Usage.workspace_id) == bindparam("workspace"),
            col(Usage.user_id) == bindparam("user"),
            col(Usage.created_at) >= bindparam("day"),
        )
    return statement


def _cas(statement: Update | Delete) -> Any:
    # Bulk statements: nothing in the session needs synchronising, and rowcount is the answer.
    return statement.execution_options(synchronize_session=False)


async def _set_grant(session: AsyncSession, key: GrantKey, version: int, values: dict[str, Any]) -> bool:
    platform, workspace_id, user_id = key
    result = await session.exec(
        _cas(
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


def _grant_values(change: GrantChange, by_id: str, note: str, now: datetime) -> dict[str, Any]:
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


def _audit(
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


def _request_view(row: AccessRequest) -> RequestView:
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


def _grant_view(row: AccessGrant) -> GrantView:
    return GrantView(
        row.platform, row.workspace_id, row.user_id, row.granted_by, row.note, row.granted_at, row.expires_at
    )
