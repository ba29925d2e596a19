"""Essay announcements, composed: watch the newsletter's feeds, remember every item, announce new ones.

    feeds ──poll──▶ essays (+ one delivery row per subscribed channel, one transaction)
                         └──▶ outbox worker ──▶ Announcer (the platform adapter) ──▶ channel
                                                    └──▶ discussion thread ──▶ chat context

`EssayService` is what the rest of ember holds (core.runtime, the adapters, the CLI): one per
process. It wires the parts, each a module of its own: polling (core.essays.poller) with the
feeds' health (feed_health), delivery (outbox), subscriptions, status and the discussion
context, all over the repositories in core.store that own every SQL statement. `run` is the
long-running loop `ember run` starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from core.budget import RequestScheduler
from core.config import Settings
from core.essays.delivery import Announcement, DeliveryReport, announcement_of
from core.essays.discussion import Discussions
from core.essays.feed_health import FeedHealth
from core.essays.outbox import LEASE, Outbox, Sleep
from core.essays.poller import FeedReport, Poller
from core.essays.status import EssayStatus, essay_status
from core.essays.subscriptions import Subscriptions
from core.events import Place, User, utcnow
from core.ports import Announcer
from core.store import Store
from core.store.essay_counts import essay_counts
from core.store.essay_records import SubscriptionView
from core.store.essays_repo import EssaysRepo
from core.store.feeds_repo import FeedsRepo
from core.store.leases_repo import LeasesRepo
from core.store.outbox_repo import OutboxRepo
from core.store.subscriptions_repo import SubscriptionsRepo

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# The longest the loop sleeps: new subscriptions and other hosts' rows are noticed this soon.
IDLE_MAX = 60.0


class EssayObserver(Protocol):
    """Told what each poll and each delivery round did (the operator's metrics)."""

    def polled(self, reports: Sequence[FeedReport]) -> None: ...

    def delivered(self, report: DeliveryReport) -> None: ...


class EssayService:
    """Feeds in, announcements out. One per process; the adapters register their announcers."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        fetch_deadline: float = 30.0,
        max_feed_bytes: int = 5_000_000,
        lease: timedelta = LEASE,
        observer: EssayObserver | None = None,
    ) -> None:
        self.settings = settings
        self._observer = observer
        self.store = store
        self._clock = clock
        rng = rng or random.Random()
        essays, feed_rows, subscriptions = EssaysRepo(store), FeedsRepo(store), SubscriptionsRepo(store)
        self._essays = essays
        self._wake = asyncio.Event()
        self.outbox = Outbox(
            settings,
            essays,
            OutboxRepo(store),
            clock=clock,
            monotonic=monotonic,
            sleep=sleep,
            rng=rng,
            lease=lease,
        )
        health = FeedHealth(settings, feed_rows, subscriptions, self.outbox.notify, clock=clock, rng=rng)
        self.poller = Poller(
            settings,
            feed_rows,
            essays,
            health,
            LeasesRepo(store),
            clock=clock,
            fetch_deadline=fetch_deadline,
            max_feed_bytes=max_feed_bytes,
        )
        self._subscriptions = Subscriptions(subscriptions, clock=clock)
        self._discussions = Discussions(essays)

    def register_announcer(
        self,
        platform: str,
        announcer: Announcer,
        *,
        scheduler: RequestScheduler,
        concurrency: int,
    ) -> None:
        """An adapter is ready to post: deliveries for `platform` start flowing, `concurrency`
        at once, paced by the platform's request `scheduler` (`Ember.announce_with` passes the
        platform's own)."""
        self.outbox.register(platform, announcer, scheduler=scheduler, concurrency=concurrency)
        self._wake.set()

    def wake(self) -> None:
        """Something is owed now (an essay the studio published): deliver without waiting."""
        self._wake.set()

    async def close(self) -> None:
        await self.outbox.close()
        await self.poller.close()

    # ------------------------------------------------------------ the long-running loop

    async def run(self) -> None:
        """Poll due feeds and deliver, until cancelled (`ember run` starts this)."""
        while True:
            try:
                await self.poll_once(due_only=True)
                await self.deliver_pending()
                pause = await self._idle_seconds()
            except Exception:
                log.exception("the essay loop failed; trying again in %.0f s", IDLE_MAX)
                pause = IDLE_MAX
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def _idle_seconds(self) -> float:
        now = self._clock()
        moments = [await self.outbox.next_due(), *await self.poller.next_polls()]
        soonest = min((m for m in moments if m is not None), default=now + timedelta(seconds=IDLE_MAX))
        return min(IDLE_MAX, max(1.0, (soonest - now).total_seconds()))

    async def poll_once(self, *, due_only: bool = False) -> list[FeedReport]:
        """Poll every configured feed (only those due, with `due_only`); never raises for a feed."""
        reports = await self.poller.poll_once(due_only=due_only)
        if self._observer is not None:
            self._observer.polled(reports)
        return reports

    async def deliver_pending(self, *, wait: float = 0.0) -> DeliveryReport:
        report = await self.outbox.deliver_pending(wait=wait)
        if self._observer is not None:
            self._observer.delivered(report)
        return report

    # ------------------------------------------------------------ subscriptions

    async def subscribe(
        self, platform: str, workspace_id: str, channel_id: str, role_id: str, by: User
    ) -> tuple[SubscriptionView, bool]:
        """Announce essays in a channel (pinging `role_id`, if any). Returns (view, was new)."""
        return await self._subscriptions.subscribe(platform, workspace_id, channel_id, role_id, by)

    async def unsubscribe(self, platform: str, workspace_id: str, channel_id: str, by: User) -> bool:
        """Stop announcing in a channel; essays already owed to it are dropped. False if not subscribed."""
        return await self._subscriptions.unsubscribe(platform, workspace_id, channel_id, by)

    async def subscriptions(self, platform: str, workspace_id: str) -> list[SubscriptionView]:
        """A workspace's subscriptions: active ones, and those ember paused (not unsubscribed)."""
        return await self._subscriptions.of_workspace(platform, workspace_id)

    # ------------------------------------------------------------ reading

    async def latest(self) -> Announcement | None:
        """The most recent essay (announced or not), by publication date."""
        essay = await self._essays.latest()
        return announcement_of(essay) if essay else None

    async def discussion_context(self, place: Place) -> str:
        """A ChatEngine context source: in an announcement's discussion thread, the essay itself."""
        return await self._discussions.context(place)

    async def status(self) -> EssayStatus:
        counts = await essay_counts(self.store)
        return essay_status(counts, self.poller.configured(), await self.latest(), self.outbox.platforms)
