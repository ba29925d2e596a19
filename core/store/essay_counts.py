"""Counting for `ember essays status`: every essay table read in one transaction."""

from __future__ import annotations

from sqlmodel import col, func, select

from core.store.engine import Store
from core.store.essay_records import EssayCounts, FailedDelivery
from core.store.essay_tables import Essay, EssayDelivery, EssayFeed, EssaySubscription
from core.store.feeds_repo import feed_record

RECENT_FAILURES = 3


async def essay_counts(store: Store) -> EssayCounts:
    async with store.session() as session:
        feeds = {r.url: feed_record(r) for r in (await session.exec(select(EssayFeed))).all()}
        essays = (await session.exec(select(func.count()).select_from(Essay))).one()
        announced = (
            await session.exec(select(func.count()).select_from(Essay).where(col(Essay.announced).is_(True)))
        ).one()
        subscriptions = (
            await session.exec(
                select(EssaySubscription.platform, func.count())
                .where(col(EssaySubscription.enabled).is_(True))
                .group_by(col(EssaySubscription.platform))
            )
        ).all()
        paused = (
            await session.exec(
                select(func.count())
                .select_from(EssaySubscription)
                .where(col(EssaySubscription.enabled).is_(False), col(EssaySubscription.disabled_by) == "")
            )
        ).one()
        deliveries = (
            await session.exec(select(EssayDelivery.state, func.count()).group_by(col(EssayDelivery.state)))
        ).all()
        failed = (
            await session.exec(
                select(EssayDelivery)
                .where(col(EssayDelivery.state) == "failed")
                .order_by(col(EssayDelivery.id).desc())
                .limit(RECENT_FAILURES)
            )
        ).all()
    return EssayCounts(
        feeds=feeds,
        essays=essays,
        announced=announced,
        subscriptions=dict(subscriptions),
        paused=paused,
        deliveries=dict(deliveries),
        recent_failures=tuple(FailedDelivery(d.platform, d.channel_id, d.last_error) for d in failed),
    )
