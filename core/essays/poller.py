"""Polling: fetch each configured feed when due, remember every item, owe new ones to channels.

The first successful poll of a feed records its items and announces none (unless
`announce_existing`); items older than `max_age_days` are recorded, never announced. An item
is known by its guid, and also by its normalised post path within its newsletter (the feed's
title), so a changed guid or a moved domain does not announce it again. Dates order items;
they never identify them. A feed that fails is core.essays.feed_health's to back off; nothing
here raises for one feed.

Several hosts may run the poller: a feed is polled under a lease in the store, by one host at a
time, and a host that gets the lease checks again that the feed is still due (another host may
have just polled it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from core.config import Settings
from core.errors import FeedError
from core.essays import feeds, wording
from core.essays.feed_health import FeedHealth
from core.essays.feed_parsing import FeedItem, ParsedFeed, parse
from core.store.essay_records import FeedRecord, NewEssay
from core.store.essays_repo import EssaysRepo
from core.store.feeds_repo import FeedsRepo
from core.store.leases_repo import LeasesRepo

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class FeedReport:
    """What one poll of one feed did."""

    url: str
    ok: bool
    error: str = ""
    not_modified: bool = False
    items: int = 0
    recorded: int = 0  # new items remembered without an announcement
    announced: tuple[str, ...] = ()  # titles of new items announced
    queued: int = 0  # delivery rows written for them
    first_poll: bool = False

    def summary(self) -> str:
        return wording.feed_report(self)


class Poller:
    def __init__(
        self,
        settings: Settings,
        feed_rows: FeedsRepo,
        essays: EssaysRepo,
        health: FeedHealth,
        leases: LeasesRepo,
        *,
        clock: Clock,
        fetch_deadline: float = 30.0,
        max_feed_bytes: int = 5_000_000,
    ) -> None:
        self.settings = settings
        self._feeds = feed_rows
        self._essays = essays
        self._health = health
        self._leases = leases
        self._holder = secrets.token_hex(8)  # this poller, as its feed leases name it
        self._clock = clock
        self._fetch_deadline = fetch_deadline
        self._max_feed_bytes = max_feed_bytes
        self._http: aiohttp.ClientSession | None = None

    def configured(self) -> list[str]:
        """The configured feed URLs, each once, in order."""
        return list(dict.fromkeys(self.settings.essays.feeds))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop; redirects are followed by core.essays.feeds.
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._fetch_deadline))
        return self._http

    async def next_polls(self) -> list[datetime]:
        """When each configured feed is next due (now, for a feed never polled)."""
        now = self._clock()
        urls = self.configured()
        scheduled = await self._feeds.next_polls(urls)
        return [scheduled.get(url) or now for url in urls]

    async def poll_once(self, *, due_only: bool = False) -> list[FeedReport]:
        """Poll every configured feed (only those due, with `due_only`); never raises for a feed."""
        urls = self.configured()
        if due_only:
            urls = await self._due(urls)
        reports = await asyncio.gather(*(self._poll_alone(url, due_only) for url in urls))
        return [report for report in reports if report is not None]

    async def _poll_alone(self, url: str, due_only: bool) -> FeedReport | None:
        """Poll `url` unless another host is polling it (None when due-only polling skips it)."""
        lease = "feed:" + hashlib.sha256(url.encode()).hexdigest()[:40]
        # Held for the longest a poll should take; a host that dies mid-poll lets go by then.
        if not await self._leases.take(lease, self._holder, self._fetch_deadline + 60.0):
            return None if due_only else FeedReport(url, ok=False, error=wording.POLLED_ELSEWHERE)
        try:
            if due_only and not await self._due([url]):
                return None  # another host polled it just now
            return await self._poll(url)
        finally:
            await self._leases.release(lease, self._holder)

    async def _due(self, urls: Sequence[str]) -> list[str]:
        now = self._clock()
        scheduled = await self._feeds.next_polls(urls)
        later = {url for url, at in scheduled.items() if at is not None and at > now}
        return [url for url in urls if url not in later]

    async def _poll(self, url: str) -> FeedReport:
        """One feed's poll, whatever happens in it: a failure is recorded against this feed
        alone and backs it off, and the other feeds' polls carry on."""
        feed = FeedRecord(url)
        try:
            feed = await self._feeds.ensure(url)
            return await self._fetch_and_record(feed)
        except FeedError as error:
            return await self._failed(feed, error)
        except Exception as error:  # a bug, a surprise from a library, a hostile answer
            log.exception("polling %s failed unexpectedly", url)
            return await self._failed(feed, FeedError(wording.unexpected(error)))

    async def _fetch_and_record(self, feed: FeedRecord) -> FeedReport:
        fetched = await feeds.fetch(
            self._session(),
            feed.url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            deadline=self._fetch_deadline,
            max_bytes=self._max_feed_bytes,
        )
        report = FeedReport(feed.url, ok=True, not_modified=True)
        if fetched.body is not None:
            # Parsing a large feed takes a while: off the loop, so chat never waits for it.
            parsed = await asyncio.to_thread(parse, fetched.body, fetched.content_type)
            report = await self._record(feed, parsed)
        await self._health.succeeded(feed, fetched)
        return report

    async def _failed(self, feed: FeedRecord, error: FeedError) -> FeedReport:
        try:
            await self._health.failed(feed, error)
        except Exception:  # the database, most likely: the report still says what happened
            log.exception("could not record the failure of %s", feed.url)
        return FeedReport(feed.url, ok=False, error=str(error))

    async def _record(self, feed: FeedRecord, parsed: ParsedFeed) -> FeedReport:
        family = (parsed.title or feed.url).casefold()[:200]
        # Oldest first, so announcements go out in publication order; undated items keep feed order.
        items = sorted(reversed(parsed.items), key=lambda i: i.published_at or self._clock())
        first_poll = not feed.seeded
        paths = [i.post_path for i in items if i.post_path]
        known_guids, known_paths = await self._essays.known(family, [i.key for i in items], paths)
        # A "new" feed whose items ember already knows is the same newsletter at a new address.
        announcing = (
            not first_poll or self.settings.essays.announce_existing or bool(known_guids or known_paths)
        )
        oldest = self._clock() - timedelta(days=self.settings.essays.max_age_days)
        recorded, queued, announced = 0, 0, []
        for item in items:
            if item.key in known_guids:
                continue  # known under this very guid: nothing to write (one read for the whole feed)
            announce = announcing and (item.published_at is None or item.published_at >= oldest)
            outcome = await self._essays.record(_new_essay(feed.url, family, item, announce), self._clock())
            if outcome is None:
                continue
            if announce:
                announced.append(item.title)
                queued += outcome
            else:
                recorded += 1
        if announced:
            log.info("new essays from %s: %s (%d deliveries queued)", feed.url, "; ".join(announced), queued)
        return FeedReport(
            feed.url,
            ok=True,
            items=len(items),
            recorded=recorded,
            announced=tuple(announced),
            queued=queued,
            first_poll=first_poll,
        )


def _new_essay(feed_url: str, family: str, item: FeedItem, announce: bool) -> NewEssay:
    return NewEssay(
        feed_url=feed_url,
        family=family,
        guid=item.key,
        post_path=item.post_path,
        title=item.title,
        link=item.link,
        summary=item.summary,
        author=item.author,
        published_at=item.published_at,
        image_url=item.image_url,
        full_text=item.full_text,
        announced=announce,
    )
