"""The essay_subscriptions table: which channels announce essays, and the one role each pings.

Rows are never deleted (deliveries name them): unsubscribing disables a row, and drops what
that channel was still owed in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.store.engine import Store
from core.store.essay_records import SubscriptionView
from core.store.essay_tables import EssayDelivery, EssaySubscription


class SubscriptionsRepo:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def subscribe(
        self, platform: str, workspace_id: str, channel_id: str, role_id: str, by: str, now: datetime
    ) -> tuple[SubscriptionView, bool]:
        """Enable (or create) the channel's subscription, pinging `role_id`. (view, was new)."""
        values = {
            "role_id": role_id,
            "enabled": True,
            "disabled_reason": "",
            "disabled_by": "",
            "updated_at": now,
        }
        for _ in range(2):  # a rival insert between our read and write: read again
            try:
                async with self._store.session() as session:
                    row = await _subscription(session, platform, workspace_id, channel_id)
                    created = row is None
                    if row is None:
                        row = EssaySubscription(
                            platform=platform,
                            workspace_id=workspace_id,
                            channel_id=channel_id,
                            created_by=by,
                            created_at=now,
                        )
                    for key, value in values.items():
                        setattr(row, key, value)
                    session.add(row)
                return subscription_view(row), created
            except IntegrityError:
                continue
        raise RuntimeError("the subscription kept changing while it was being written")

    async def unsubscribe(
        self, platform: str, workspace_id: str, channel_id: str, by: str, reason: str, now: datetime
    ) -> bool:
        """Disable the channel's subscription and drop the deliveries it is still owed (the one
        being sent finishes). False when it was not subscribed."""
        async with self._store.session() as session:
            row = await _subscription(session, platform, workspace_id, channel_id)
            if row is None or not row.enabled:
                return False
            row.enabled, row.disabled_by, row.updated_at = False, by, now
            row.disabled_reason = reason[:500]
            session.add(row)
            await session.exec(
                update(EssayDelivery)
                .where(col(EssayDelivery.subscription_id) == row.id, col(EssayDelivery.state) == "pending")
                .values(state="disabled", last_error="unsubscribed")
                .execution_options(synchronize_session=False)
            )
        return True

    async def of_workspace(self, platform: str, workspace_id: str) -> list[SubscriptionView]:
        """A workspace's subscriptions: active ones, and those ember paused (not unsubscribed)."""
        query = (
            select(EssaySubscription)
            .where(
                col(EssaySubscription.platform) == platform,
                col(EssaySubscription.workspace_id) == workspace_id,
                col(EssaySubscription.disabled_by) == "",
            )
            .order_by(col(EssaySubscription.created_at))
        )
        async with self._store.session() as session:
            return [subscription_view(r) for r in (await session.exec(query)).all()]

    async def subscribed_workspaces(self) -> list[tuple[str, str]]:
        """(platform, workspace id) of every workspace with an enabled subscription."""
        query = (
            select(EssaySubscription.platform, EssaySubscription.workspace_id)
            .where(col(EssaySubscription.enabled).is_(True))
            .distinct()
        )
        async with self._store.session() as session:
            return [(platform, workspace) for platform, workspace in (await session.exec(query)).all()]


async def _subscription(
    session: AsyncSession, platform: str, workspace_id: str, channel_id: str
) -> EssaySubscription | None:
    query = select(EssaySubscription).where(
        col(EssaySubscription.platform) == platform,
        col(EssaySubscription.workspace_id) == workspace_id,
        col(EssaySubscription.channel_id) == channel_id,
    )
    return (await session.exec(query)).first()


def subscription_view(row: EssaySubscription) -> SubscriptionView:
    return SubscriptionView(
        row.platform, row.workspace_id, row.channel_id, row.role_id, row.enabled, row.disabled_reason
    )
