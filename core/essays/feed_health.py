"""A feed's health: its schedule after a success, its back-off after a failure, and the one alert.

A feed that fails (timeout, HTTP error, malformed or empty, or anything unexpected) backs off
exponentially on its own, up to BACKOFF_CAP; a server's Retry-After is honoured up to that cap
too. Its state shows in `ember essays status` and the log, and after a day of failures the
moderators of every subscribed workspace are told once. Nothing here can stop chat or the other feeds.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from core.config import Settings
from core.errors import FeedError
from core.essays import wording
from core.essays.feeds import Fetched
from core.store.essay_records import FeedRecord
from core.store.feeds_repo import FeedsRepo
from core.store.subscriptions_repo import SubscriptionsRepo

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Tell one workspace's moderators (platform, workspace id, text); False when nobody could.
Notify = Callable[[str, str, str], Awaitable[bool]]
ALERT_AFTER = timedelta(days=1)
BACKOFF_CAP = timedelta(hours=6)


class FeedHealth:
    def __init__(
        self,
        settings: Settings,
        feed_rows: FeedsRepo,
        subscriptions: SubscriptionsRepo,
        notify: Notify,
        *,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.settings = settings
        self._feeds = feed_rows
        self._subscriptions = subscriptions
        self._notify = notify
        self._clock = clock
        self._rng = rng

    async def succeeded(self, feed: FeedRecord, fetched: Fetched) -> None:
        now = self._clock()
        next_poll = now + self.jittered(self.settings.essays.poll_seconds)
        validators = None if fetched.body is None else (fetched.etag, fetched.last_modified)
        await self._feeds.record_success(feed.url, now, next_poll, validators)
        # The alert's flag is cleared by one statement on one host: that host alone says so.
        if await self._feeds.end_alert(feed.url):
            await self._tell_subscribers(wording.feed_recovered(feed.url))

    async def failed(self, feed: FeedRecord, error: FeedError) -> None:
        now = self._clock()
        failures = feed.failures + 1
        since = feed.first_failure_at or now
        wait = self._backoff(failures)
        if error.retry_after is not None:
            # The server's wish is honoured up to the back-off's own cap: absurd values are common.
            wait = max(wait, timedelta(seconds=min(error.retry_after, self._cap_seconds())))
        await self._feeds.record_failure(feed.url, failures, since, str(error), now + wait)
        log.warning(
            "essay feed %s failed (%d in a row, since %s; next try in %.0f min): %s",
            feed.url,
            failures,
            wording.moment(since),
            wait.total_seconds() / 60,
            error,
        )
        if not feed.alerted and now - since >= ALERT_AFTER:
            await self._alert(feed.url, since, error)

    def _backoff(self, failures: int) -> timedelta:
        base = min(self.settings.essays.poll_seconds, 60.0)
        return self.jittered(min(self._cap_seconds(), base * 2 ** min(failures - 1, 30)))

    def _cap_seconds(self) -> float:
        """The longest a failing feed waits: BACKOFF_CAP, or the poll interval when longer."""
        return max(self.settings.essays.poll_seconds, BACKOFF_CAP.total_seconds())

    def jittered(self, seconds: float) -> timedelta:
        # ±10%, so several hosts (and several feeds) drift apart instead of polling in step.
        return timedelta(seconds=seconds * self._rng.uniform(0.9, 1.1))

    async def _alert(self, url: str, since: datetime, error: FeedError) -> None:
        """Tell moderators once per failure streak; the flag is claimed first, so one host does."""
        if not await self._feeds.claim_alert(url):
            return
        told, audience = await self._tell_subscribers(wording.feed_failing(url, since, error))
        if audience and not told:
            # Nobody could be told (no adapter running here): let a later poll try again.
            await self._feeds.release_alert(url)

    async def _tell_subscribers(self, text: str) -> tuple[int, int]:
        """Tell the moderators of every workspace with an enabled subscription: (told, asked)."""
        workspaces = await self._subscriptions.subscribed_workspaces()
        log.warning("%s", text)
        results = [await self._notify(platform, workspace, text) for platform, workspace in workspaces]
        return sum(results), len(workspaces)
