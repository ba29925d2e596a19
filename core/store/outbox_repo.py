"""The essay_deliveries table, the outbox: every compare-and-set that keeps delivery exactly once.

- `owe_to_subscribers` writes one row per enabled subscription inside the transaction that
  records the essay (EssaysRepo.record calls it), so neither exists without the other.
- `claim_due` takes due rows with one UPDATE ... RETURNING, committed before any platform call.
- `mark_*` settle one attempt, only while the row is still that attempt's (state "sending",
  same attempt number); these share transactions through a GroupCommit.
- `pause_channel` disables a subscription and what it is still owed, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, and_, case, func, or_, true, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.store.engine import Store
from core.store.essay_records import ClaimedRow
from core.store.essay_tables import EssayDelivery, EssaySubscription
from core.store.group_commit import GroupCommit

OWED = ("pending", "sending")  # states of a row that may still be sent
CLAIMED_COLUMNS = (
    "id",
    "essay_id",
    "subscription_id",
    "platform",
    "workspace_id",
    "channel_id",
    "role_id",
    "attempts",
    "uncertain",
)


async def owe_to_subscribers(session: AsyncSession, essay_id: int, now: datetime) -> int:
    """Owe `essay_id` to every enabled subscription, inside the caller's transaction."""
    query = select(EssaySubscription).where(col(EssaySubscription.enabled).is_(True))
    subscriptions = (await session.exec(query)).all()
    session.add_all(
        EssayDelivery(
            essay_id=essay_id,
            subscription_id=s.id or 0,
            platform=s.platform,
            workspace_id=s.workspace_id,
            channel_id=s.channel_id,
            role_id=s.role_id,
            next_attempt_at=now,
            created_at=now,
        )
        for s in subscriptions
    )
    return len(subscriptions)


class OutboxRepo:
    def __init__(self, store: Store) -> None:
        self._store = store
        # The outcomes of every worker share transactions; each still waits for its own.
        self._writes = GroupCommit(store)

    async def drain(self) -> None:
        """Wait for every outcome already handed over (before the store closes)."""
        await self._writes.drain()

    async def claim_due(self, platform: str, limit: int, now: datetime, lease: timedelta) -> list[ClaimedRow]:
        """Take up to `limit` due rows of `platform` for one attempt each, committed at once.

        One UPDATE ... RETURNING: a row is taken only while it is still pending (or its lease
        ran out) and due, so two workers or hosts never take the same row; on PostgreSQL a rival
        waiting for the row lock re-checks those conditions and skips it."""
        table = _deliveries()
        due = (
            select(table.c.id)
            .where(table.c.platform == platform, table.c.state.in_(OWED), table.c.next_attempt_at <= now)
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(limit)
        )
        chosen: Any = due.scalar_subquery()
        if self._store.dialect == "postgresql":
            # Materialised once: as a plain subquery PostgreSQL may run it again for rows it
            # checks, each run skipping the rows locked by the last, and claim far more than
            # `limit` (one host took a whole fan-out, leaving nothing for the others).
            locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
            chosen = select(locked.c.id)
        claim = (
            update(table)
            .where(
                table.c.id.in_(chosen),
                table.c.state.in_(OWED),
                table.c.next_attempt_at <= now,
            )
            .values(
                state="sending",
                attempts=table.c.attempts + 1,
                # A row found "sending" was left by an attempt that never reported back.
                uncertain=case((table.c.state == "sending", true()), else_=table.c.uncertain),
                next_attempt_at=now + lease,
            )
            .returning(*(table.c[name] for name in CLAIMED_COLUMNS))
        )
        async with self._store.session() as session:
            rows = (await session.exec(claim)).all()
        return [_claimed(row) for row in sorted(rows, key=lambda r: r.id)]

    async def renew(self, held: Mapping[int, int], now: datetime, lease: timedelta) -> None:
        """Extend the leases of rows this process still holds (id -> attempt it holds them with)."""
        async with self._store.session() as session:
            await session.exec(update(_deliveries()).where(_held(held)).values(next_attempt_at=now + lease))

    async def release(self, held: Mapping[int, int], now: datetime) -> None:
        """Give back rows claimed but never attempted: owed again at once, the claim uncounted."""
        table = _deliveries()
        async with self._store.session() as session:
            await session.exec(
                update(table)
                .where(_held(held))
                .values(state="pending", attempts=table.c.attempts - 1, next_attempt_at=now)
            )

    async def mark_sent(self, delivery_id: int, attempt: int, message_id: str, now: datetime) -> None:
        await self._settle(
            delivery_id,
            attempt,
            state="sent",
            platform_message_id=message_id[:64],
            sent_at=now,
            last_error="",
        )

    async def mark_retry(
        self, delivery_id: int, attempt: int, due: datetime, error: str, *, uncertain: bool
    ) -> None:
        await self._settle(
            delivery_id,
            attempt,
            state="pending",
            uncertain=uncertain,
            next_attempt_at=due,
            last_error=error[:500],
        )

    async def mark_failed(self, delivery_id: int, attempt: int, error: str) -> None:
        await self._settle(delivery_id, attempt, state="failed", last_error=error[:500])

    async def _settle(self, delivery_id: int, attempt: int, **values: object) -> None:
        """Record this attempt's outcome, unless the row has since been claimed again (a lease
        that ran out): the newer attempt, holding the same idempotency key, settles it."""
        table = _deliveries()
        await self._writes.execute(
            update(table)
            .where(table.c.id == delivery_id, table.c.state == "sending", table.c.attempts == attempt)
            .values(**values)
        )

    async def pause_channel(self, subscription_id: int, delivery_id: int, note: str, now: datetime) -> bool:
        """The channel is gone or forbids ember: disable its subscription and this delivery and
        what else it is still owed, in one transaction. True for the one caller that paused it."""
        async with self._store.session() as session:
            paused = await session.exec(
                update(EssaySubscription)
                .where(col(EssaySubscription.id) == subscription_id, col(EssaySubscription.enabled).is_(True))
                .values(enabled=False, disabled_reason=note[:500], disabled_by="", updated_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.exec(
                update(EssayDelivery)
                .where(
                    col(EssayDelivery.subscription_id) == subscription_id,
                    (col(EssayDelivery.id) == delivery_id) | (col(EssayDelivery.state) == "pending"),
                )
                .values(state="disabled", last_error=note[:500])
                .execution_options(synchronize_session=False)
            )
        return bool(paused.rowcount)

    async def next_due(self, platforms: Sequence[str]) -> datetime | None:
        """When the next pending or leased row of one of `platforms` comes due."""
        query = select(func.min(EssayDelivery.next_attempt_at)).where(
            col(EssayDelivery.platform).in_(platforms), col(EssayDelivery.state).in_(OWED)
        )
        async with self._store.session() as session:
            return (await session.exec(query)).one()

    async def owed_elsewhere(self, platforms: Sequence[str]) -> dict[str, int]:
        """Rows still owed, per platform, for platforms other than `platforms`."""
        query = (
            select(EssayDelivery.platform, func.count())
            .where(col(EssayDelivery.state).in_(OWED))
            .where(col(EssayDelivery.platform).not_in(platforms))
            .group_by(col(EssayDelivery.platform))
        )
        async with self._store.session() as session:
            return {platform: count for platform, count in (await session.exec(query)).all()}


def _claimed(row: Row[Any]) -> ClaimedRow:
    return ClaimedRow(
        id=row.id,
        essay_id=row.essay_id,
        subscription_id=row.subscription_id,
        platform=row.platform,
        workspace_id=row.workspace_id,
        channel_id=row.channel_id,
        role_id=row.role_id,
        attempts=row.attempts,
        uncertain=bool(row.uncertain),
    )


def _held(held: Mapping[int, int]) -> ColumnElement[bool]:
    """The rows still "sending" under exactly these claims (a newer claim is another holder's)."""
    table = _deliveries()
    claims = [and_(table.c.id == row, table.c.attempts == attempt) for row, attempt in held.items()]
    return and_(table.c.state == "sending", or_(*claims))


def _deliveries() -> Table:
    # The outbox's hot statements use the table itself: the ORM's bulk-update path costs twice as much.
    return SQLModel.metadata.tables[EssayDelivery.__tablename__]
