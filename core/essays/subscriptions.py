"""Which channels announce essays: moderators subscribe and unsubscribe, anyone may list them.

A channel ember could no longer post in is paused by the outbox, not here; subscribing again
resumes it. Unsubscribing drops what the channel was still owed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from core.essays import wording
from core.events import User
from core.store.essay_records import SubscriptionView
from core.store.subscriptions_repo import SubscriptionsRepo

Clock = Callable[[], datetime]


class Subscriptions:
    def __init__(self, rows: SubscriptionsRepo, *, clock: Clock) -> None:
        self._rows = rows
        self._clock = clock

    async def subscribe(
        self, platform: str, workspace_id: str, channel_id: str, role_id: str, by: User
    ) -> tuple[SubscriptionView, bool]:
        """Announce essays in a channel (pinging `role_id`, if any). Returns (view, was new)."""
        return await self._rows.subscribe(platform, workspace_id, channel_id, role_id, by.id, self._clock())

    async def unsubscribe(self, platform: str, workspace_id: str, channel_id: str, by: User) -> bool:
        """Stop announcing in a channel; essays already owed to it are dropped. False if not subscribed."""
        reason = wording.unsubscribed_by(by.id)
        return await self._rows.unsubscribe(platform, workspace_id, channel_id, by.id, reason, self._clock())

    async def of_workspace(self, platform: str, workspace_id: str) -> list[SubscriptionView]:
        """A workspace's subscriptions: active ones, and those ember paused (not unsubscribed)."""
        return await self._rows.of_workspace(platform, workspace_id)
