"""Essay announcements: watch the newsletter's feeds, remember every item, announce new ones.

    feeds ──poll──▶ essays (+ one delivery row per subscribed channel, one transaction)
                         └──▶ outbox worker ──▶ Announcer (the platform adapter) ──▶ channel
                                                    └──▶ discussion thread ──▶ chat context

Polling (`poll_once`, and `run` in the long-running process): each configured feed is fetched
with a conditional GET when due (`[essays] poll_seconds`, jittered). The first successful poll
of a feed records its items and announces none (unless `announce_existing`); items older than
`max_age_days` are recorded, never announced. An item is known by its guid, and also by its
normalised post path within its newsletter (the feed's title), so a changed guid or a moved
domain does not announce it again. Dates order items; they never identify them.

A feed that fails (timeout, HTTP error, malformed or empty) backs off exponentially on its own;
its state shows in `ember essays status` and the log, and after a day of failures the
moderators of every subscribed workspace are told once. Nothing here can stop chat or the
other feeds. Delivery, and how it stays exactly-once, is in core.essay_outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import aiohttp
from sqlalchemy import Update, and_, false, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import feeds
from core.config import Settings
from core.errors import FeedError
from core.essay_outbox import (
    LEASE,
    Announcement,
    Announcer,
    Clock,
    Delivery,
    DeliveryReport,
    Outbox,
    announcement_of,
)
from core.events import Place, User, utcnow
from core.ratelimit import RateLimit, Sleep
from core.store import Essay, EssayDelivery, EssayFeed, EssaySubscription, EssayThread, Store

__all__ = [
    "Announcement",
    "Announcer",
    "Delivery",
    "DeliveryReport",
    "EssayService",
    "EssayStatus",
    "FeedReport",
    "FeedStatus",
    "SubscriptionView",
]

log = logging.getLogger(__name__)

ALERT_AFTER = timedelta(days=1)
BACKOFF_CAP = timedelta(hours=6)
# The longest the loop sleeps: new subscriptions and other hosts' rows are noticed this soon.
IDLE_MAX = 60.0
# A discussion's system text stays well inside the model's context window.
CONTEXT_CHARS = 60_000


# ---------------------------------------------------------------- reports and views


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
        if not self.ok:
            return f"{self.url}: FAILED: {self.error}"
        if self.not_modified:
            return f"{self.url}: not modified since the last poll"
        text = f"{self.url}: {self.items} items"
        if self.first_poll and not self.announced:
            return f"{text}; first poll: recorded {self.recorded}, announced none"
        if self.recorded:
            text += f"; {self.recorded} recorded without announcing (older than max_age_days)"
        if not self.announced:
            return f"{text}; nothing new"
        titles = "; ".join(f'"{t}"' for t in self.announced)
        return f"{text}; announced {titles} ({self.queued} deliveries queued)"


@dataclass(frozen=True)
class FeedStatus:
    url: str
    state: Literal["ok", "failing", "never polled"]
    failures: int
    last_error: str
    last_success_at: datetime | None
    first_failure_at: datetime | None
    next_poll_at: datetime | None
    seeded: bool
    alerted: bool


@dataclass(frozen=True)
class SubscriptionView:
    platform: str
    workspace_id: str
    channel_id: str
    role_id: str
    enabled: bool
    disabled_reason: str


@dataclass(frozen=True)
class EssayStatus:
    feeds: tuple[FeedStatus, ...]
    essays: int
    announced: int
    subscriptions: dict[str, int]  # enabled, per platform
    paused: int  # subscriptions ember paused (channel gone or forbidden)
    deliveries: dict[str, int]  # per state
    latest: Announcement | None
    adapters: tuple[str, ...]  # platforms with an announcer in this process
    recent_errors: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """The status as a person reads it (`ember essays status`)."""
        out = [_feed_line(f) for f in self.feeds] or ["no feeds configured ([essays] feeds)"]
        subs = ", ".join(f"{p} {n}" for p, n in sorted(self.subscriptions.items())) or "none"
        out.append(f"subscriptions: {subs}; paused by ember: {self.paused}")
        states = ("sent", "pending", "sending", "failed", "disabled")
        out.append("deliveries: " + ", ".join(f"{self.deliveries.get(s, 0)} {s}" for s in states))
        out.extend(f"  failed: {e}" for e in self.recent_errors)
        out.append(f"essays: {self.essays} recorded, {self.announced} announced")
        if self.latest:
            out.append(f'latest: "{self.latest.title}" ({_day(self.latest.published_at)}) {self.latest.link}')
        return out


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "undated"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "—"


def _feed_line(feed: FeedStatus) -> str:
    if feed.state == "never polled":
        return f"{feed.url}: not polled yet"
    if feed.state == "failing":
        told = "; moderators told" if feed.alerted else ""
        return (
            f"{feed.url}: FAILING since {_when(feed.first_failure_at)} ({feed.failures} in a row{told}): "
            f"{feed.last_error} — next try {_when(feed.next_poll_at)}"
        )
    return f"{feed.url}: ok, last success {_when(feed.last_success_at)}, next poll {_when(feed.next_poll_at)}"


# ---------------------------------------------------------------- the service


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
    ) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock
        self._rng = rng or random.Random()
        self._fetch_deadline = fetch_deadline
        self._max_feed_bytes = max_feed_bytes
        self._http: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self.outbox = Outbox(
            settings, store, clock=clock, monotonic=monotonic, sleep=sleep, rng=self._rng, lease=lease
        )

    def register_announcer(self, platform: str, announcer: Announcer, limit: RateLimit | None = None) -> None:
        """An adapter is ready to post: deliveries for `platform` start flowing (paced by `limit`,
        else the platform's default)."""
        self.outbox.register(platform, announcer, limit)
        self._wake.set()

    async def close(self) -> None:
        await self.outbox.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop; redirects are followed by core.feeds.
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._fetch_deadline))
        return self._http

    # ------------------------------------------------------------ the long-running loop

    async def run(self) -> None:
        """Poll due feeds and deliver, until cancelled (`ember run` starts this)."""
        while True:
            try:
                await self.poll_once(due_only=True)
                await self.outbox.deliver_pending()
                pause = await self._idle_seconds()
            except Exception:
                log.exception("the essay loop failed; trying again in %.0f s", IDLE_MAX)
                pause = IDLE_MAX
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._wake.wait()

    async def deliver_pending(self, *, wait: float = 0.0) -> DeliveryReport:
        return await self.outbox.deliver_pending(wait=wait)

    async def _idle_seconds(self) -> float:
        now = self._clock()
        moments = [await self.outbox.next_due()]
        async with self.store.session() as session:
            rows = (await session.exec(select(EssayFeed).where(col(EssayFeed.url).in_(self._feeds())))).all()
        known = {r.url: r.next_poll_at for r in rows}
        moments += [known.get(url) or now for url in self._feeds()]
        soonest = min((m for m in moments if m is not None), default=now + timedelta(seconds=IDLE_MAX))
        return min(IDLE_MAX, max(1.0, (soonest - now).total_seconds()))

    # ------------------------------------------------------------ polling

    def _feeds(self) -> list[str]:
        return list(dict.fromkeys(self.settings.essays.feeds))

    async def poll_once(self, *, due_only: bool = False) -> list[FeedReport]:
        """Poll every configured feed (only those due, with `due_only`); never raises for a feed."""
        urls = self._feeds()
        if due_only:
            urls = await self._due_feeds(urls)
        return list(await asyncio.gather(*(self._poll(url) for url in urls)))

    async def _due_feeds(self, urls: Sequence[str]) -> list[str]:
        now = self._clock()
        async with self.store.session() as session:
            rows = (await session.exec(select(EssayFeed).where(col(EssayFeed.url).in_(urls)))).all()
        later = {r.url for r in rows if r.next_poll_at is not None and r.next_poll_at > now}
        return [url for url in urls if url not in later]

    async def _poll(self, url: str) -> FeedReport:
        feed = await self._feed_row(url)
        try:
            fetched = await feeds.fetch(
                self._session(),
                url,
                etag=feed.etag,
                last_modified=feed.last_modified,
                deadline=self._fetch_deadline,
                max_bytes=self._max_feed_bytes,
            )
            # Parsing a large feed takes a while: off the loop, so chat never waits for it.
            parsed = (
                None
                if fetched.body is None
                else await asyncio.to_thread(feeds.parse, fetched.body, fetched.content_type)
            )
        except FeedError as error:
            return await self._failed(feed, error)
        except Exception as error:  # a bug or a surprise from a library: still only this feed
            log.exception("polling %s failed unexpectedly", url)
            return await self._failed(feed, FeedError(f"unexpected error: {error!r}"))
        report = FeedReport(url, ok=True, not_modified=True)
        if parsed is not None:
            report = await self._record(feed, parsed)
        await self._succeeded(feed, fetched)
        return report

    async def _feed_row(self, url: str) -> EssayFeed:
        async with self.store.session() as session:
            # Several hosts may meet a new feed at once: the first insert wins, the rest read it.
            await session.exec(self.store.insert(EssayFeed).values(url=url).on_conflict_do_nothing())
            row = await session.get(EssayFeed, url)
        assert row is not None
        return row

    async def _record(self, feed: EssayFeed, parsed: feeds.ParsedFeed) -> FeedReport:
        family = (parsed.title or feed.url).casefold()[:200]
        # Oldest first, so announcements go out in publication order; undated items keep feed order.
        items = sorted(reversed(parsed.items), key=lambda i: i.published_at or self._clock())
        first_poll = not feed.seeded
        known_guids, known_paths = await self._known(family, items)
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
            outcome = await self._record_item(feed.url, family, item, announce)
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

    @staticmethod
    def _matches(family: str, key: str, path: str | None) -> ColumnElement[bool]:
        by_path = and_(col(Essay.family) == family, col(Essay.post_path) == path) if path else false()
        return or_(col(Essay.guid) == key, by_path)

    async def _known(self, family: str, items: Sequence[feeds.FeedItem]) -> tuple[set[str], set[str]]:
        """Which of the feed's guids, and of its post paths (in this newsletter), ember knows."""
        keys = [i.key for i in items]
        paths = [i.post_path for i in items if i.post_path]
        query = select(Essay.guid, Essay.family, Essay.post_path).where(
            or_(
                col(Essay.guid).in_(keys),
                and_(col(Essay.family) == family, col(Essay.post_path).in_(paths)),
            )
        )
        async with self.store.reading() as session:
            rows = (await session.exec(query)).all()
        wanted = set(keys)
        guids = {guid for guid, _, _ in rows if guid in wanted}
        known_paths = {path for _, fam, path in rows if fam == family and path}
        return guids, known_paths

    async def _record_item(
        self, feed_url: str, family: str, item: feeds.FeedItem, announce: bool
    ) -> int | None:
        """Remember a new item (and owe it to every subscribed channel when announcing), in one
        transaction. Returns the deliveries queued, or None when the item was already known."""
        now = self._clock()
        try:
            async with self.store.session() as session:
                query = select(Essay).where(self._matches(family, item.key, item.post_path)).limit(2)
                known = list((await session.exec(query)).all())
                if known:
                    self._follow_moved(known, item, feed_url)
                    return None
                essay = _essay_row(feed_url, family, item, announce, now)
                session.add(essay)
                await session.flush()
                return await self.outbox.enqueue(session, essay.id or 0, now) if announce else 0
        except IntegrityError:
            return None  # another host recorded it first, with its deliveries

    @staticmethod
    def _follow_moved(known: list[Essay], item: feeds.FeedItem, feed_url: str) -> None:
        """The post is known by its path under another guid: remember the new guid and link."""
        if len(known) == 1 and known[0].guid != item.key:
            essay = known[0]
            log.info(
                "essay %d changed its guid from %r to %r; not announcing it again",
                essay.id,
                essay.guid,
                item.key,
            )
            essay.guid, essay.feed_url = item.key, feed_url
            essay.link = item.link or essay.link

    async def _succeeded(self, feed: EssayFeed, fetched: feeds.Fetched) -> None:
        now = self._clock()
        values: dict[str, object] = {
            "seeded": True,
            "failures": 0,
            "first_failure_at": None,
            "last_error": "",
            "alerted": False,
            "last_success_at": now,
            "next_poll_at": now + self._jittered(self.settings.essays.poll_seconds),
        }
        if fetched.body is not None:
            values.update(etag=fetched.etag[:300], last_modified=fetched.last_modified[:100])
        async with self.store.session() as session:
            await session.exec(_update_feed(feed.url, values))
        if feed.alerted:
            await self._tell_subscribers(f"The essay feed {feed.url} works again; announcements resume.")

    async def _failed(self, feed: EssayFeed, error: FeedError) -> FeedReport:
        now = self._clock()
        failures = feed.failures + 1
        since = feed.first_failure_at or now
        wait = self._backoff(failures)
        if error.retry_after is not None:
            wait = max(wait, min(timedelta(seconds=error.retry_after), ALERT_AFTER))
        values: dict[str, object] = {
            "failures": failures,
            "first_failure_at": since,
            "last_error": str(error)[:500],
            "next_poll_at": now + wait,
        }
        async with self.store.session() as session:
            await session.exec(_update_feed(feed.url, values))
        log.warning(
            "essay feed %s failed (%d in a row, since %s; next try in %.0f min): %s",
            feed.url,
            failures,
            _when(since),
            wait.total_seconds() / 60,
            error,
        )
        if not feed.alerted and now - since >= ALERT_AFTER:
            await self._alert(feed.url, since, error)
        return FeedReport(feed.url, ok=False, error=str(error))

    def _backoff(self, failures: int) -> timedelta:
        poll = self.settings.essays.poll_seconds
        base = min(poll, 60.0)
        cap = max(poll, BACKOFF_CAP.total_seconds())
        return self._jittered(min(cap, base * 2 ** min(failures - 1, 30)))

    def _jittered(self, seconds: float) -> timedelta:
        # ±10%, so several hosts (and several feeds) drift apart instead of polling in step.
        return timedelta(seconds=seconds * self._rng.uniform(0.9, 1.1))

    async def _alert(self, url: str, since: datetime, error: FeedError) -> None:
        """Tell moderators once per failure streak; the flag is claimed first, so one host does."""
        async with self.store.session() as session:
            claimed = await session.exec(
                _update_feed(url, {"alerted": True}).where(col(EssayFeed.alerted).is_(False))
            )
        if not claimed.rowcount:
            return
        text = (
            f"The essay feed {url} has been failing since {_when(since)}, so new essays may not be "
            f"announced. Last error: {error}. ember keeps retrying; the operator can see more "
            "with `ember essays status`."
        )
        told, audience = await self._tell_subscribers(text)
        if audience and not told:
            # Nobody could be told (no adapter running here): let a later poll try again.
            async with self.store.session() as session:
                await session.exec(_update_feed(url, {"alerted": False}))

    async def _tell_subscribers(self, text: str) -> tuple[int, int]:
        """Tell the moderators of every workspace with an enabled subscription: (told, asked)."""
        query = (
            select(EssaySubscription.platform, EssaySubscription.workspace_id)
            .where(col(EssaySubscription.enabled).is_(True))
            .distinct()
        )
        async with self.store.session() as session:
            workspaces = list((await session.exec(query)).all())
        log.warning("%s", text)
        results = [await self.outbox.notify(platform, workspace, text) for platform, workspace in workspaces]
        return sum(results), len(workspaces)

    # ------------------------------------------------------------ subscriptions

    async def subscribe(
        self, platform: str, workspace_id: str, channel_id: str, role_id: str, by: User
    ) -> tuple[SubscriptionView, bool]:
        """Announce essays in a channel (pinging `role_id`, if any). Returns (view, was new)."""
        now = self._clock()
        values = {
            "role_id": role_id,
            "enabled": True,
            "disabled_reason": "",
            "disabled_by": "",
            "updated_at": now,
        }
        for _ in range(2):  # a rival insert between our read and write: read again
            try:
                async with self.store.session() as session:
                    row = await self._subscription(session, platform, workspace_id, channel_id)
                    created = row is None
                    if row is None:
                        row = EssaySubscription(
                            platform=platform,
                            workspace_id=workspace_id,
                            channel_id=channel_id,
                            created_by=by.id,
                            created_at=now,
                        )
                    for key, value in values.items():
                        setattr(row, key, value)
                    session.add(row)
                return _subscription_view(row), created
            except IntegrityError:
                continue
        raise RuntimeError("the subscription kept changing while it was being written")

    async def unsubscribe(self, platform: str, workspace_id: str, channel_id: str, by: User) -> bool:
        """Stop announcing in a channel; essays already owed to it are dropped. False if not subscribed."""
        async with self.store.session() as session:
            row = await self._subscription(session, platform, workspace_id, channel_id)
            if row is None or not row.enabled:
                return False
            row.enabled, row.disabled_by, row.updated_at = False, by.id, self._clock()
            row.disabled_reason = f"unsubscribed by {by.id}"
            session.add(row)
            await session.exec(
                update(EssayDelivery)
                .where(col(EssayDelivery.subscription_id) == row.id, col(EssayDelivery.state) == "pending")
                .values(state="disabled", last_error="unsubscribed")
                .execution_options(synchronize_session=False)
            )
        return True

    @staticmethod
    async def _subscription(
        session: AsyncSession, platform: str, workspace_id: str, channel_id: str
    ) -> EssaySubscription | None:
        query = select(EssaySubscription).where(
            col(EssaySubscription.platform) == platform,
            col(EssaySubscription.workspace_id) == workspace_id,
            col(EssaySubscription.channel_id) == channel_id,
        )
        return (await session.exec(query)).first()

    async def subscriptions(self, platform: str, workspace_id: str) -> list[SubscriptionView]:
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
        async with self.store.session() as session:
            return [_subscription_view(r) for r in (await session.exec(query)).all()]

    # ------------------------------------------------------------ reading

    async def latest(self) -> Announcement | None:
        """The most recent essay (announced or not), by publication date."""
        query = (
            select(Essay).order_by(col(Essay.published_at).desc().nulls_last(), col(Essay.id).desc()).limit(1)
        )
        async with self.store.session() as session:
            essay = (await session.exec(query)).first()
        return announcement_of(essay) if essay else None

    async def discussion_context(self, place: Place) -> str:
        """A ChatEngine context source: in an announcement's discussion thread, the essay itself."""
        if not place.thread_id:
            return ""
        query = (
            select(Essay)
            .join(EssayThread, col(EssayThread.essay_id) == col(Essay.id))
            .where(
                col(EssayThread.platform) == place.platform,
                col(EssayThread.workspace_id) == place.workspace_id,
                col(EssayThread.channel_id) == place.channel_id,
                col(EssayThread.thread_id) == place.thread_id,
            )
        )
        async with self.store.reading() as session:
            essay = (await session.exec(query)).first()
        return discussion_prompt(announcement_of(essay)) if essay else ""

    async def status(self) -> EssayStatus:
        async with self.store.session() as session:
            rows = {r.url: r for r in (await session.exec(select(EssayFeed))).all()}
            essays = (await session.exec(select(func.count()).select_from(Essay))).one()
            announced = (
                await session.exec(
                    select(func.count()).select_from(Essay).where(col(Essay.announced).is_(True))
                )
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
                    .where(
                        col(EssaySubscription.enabled).is_(False), col(EssaySubscription.disabled_by) == ""
                    )
                )
            ).one()
            deliveries = (
                await session.exec(
                    select(EssayDelivery.state, func.count()).group_by(col(EssayDelivery.state))
                )
            ).all()
            errors = (
                await session.exec(
                    select(EssayDelivery)
                    .where(col(EssayDelivery.state) == "failed")
                    .order_by(col(EssayDelivery.id).desc())
                    .limit(3)
                )
            ).all()
        return EssayStatus(
            feeds=tuple(_feed_status(url, rows.get(url)) for url in self._feeds()),
            essays=essays,
            announced=announced,
            subscriptions=dict(subscriptions),
            paused=paused,
            deliveries=dict(deliveries),
            latest=await self.latest(),
            adapters=self.outbox.platforms,
            recent_errors=tuple(f"{d.platform}:{d.channel_id}: {d.last_error}" for d in errors),
        )


def discussion_prompt(essay: Announcement) -> str:
    """The system text for a discussion thread: which essay, then the essay itself."""
    text = essay.full_text or essay.summary
    if len(text) > CONTEXT_CHARS:
        text = text[:CONTEXT_CHARS] + "\n\n[The essay continues; the rest is not shown here.]"
    byline = f" by {essay.author}" if essay.author else ""
    published = f", published {essay.published_at:%d %B %Y}" if essay.published_at else ""
    return (
        f'This thread is a discussion of the essay "{essay.title}"{byline}{published}'
        f"{f' ({essay.link})' if essay.link else ''}, from your newsletter. "
        f"The people here have read it and want to talk about it with you. Its full text:\n\n{text}"
    )


def _essay_row(feed_url: str, family: str, item: feeds.FeedItem, announce: bool, now: datetime) -> Essay:
    return Essay(
        feed_url=feed_url,
        family=family,
        guid=item.key,
        post_path=item.post_path,
        title=item.title[:300],
        link=item.link,
        summary=item.summary,
        author=item.author,
        published_at=item.published_at,
        image_url=item.image_url,
        full_text=item.full_text,
        announced=announce,
        recorded_at=now,
    )


def _update_feed(url: str, values: dict[str, object]) -> Update:
    return (
        update(EssayFeed)
        .where(col(EssayFeed.url) == url)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def _feed_status(url: str, row: EssayFeed | None) -> FeedStatus:
    if row is None or (row.last_success_at is None and not row.failures):
        return FeedStatus(url, "never polled", 0, "", None, None, None, False, False)
    return FeedStatus(
        url=url,
        state="failing" if row.failures else "ok",
        failures=row.failures,
        last_error=row.last_error,
        last_success_at=row.last_success_at,
        first_failure_at=row.first_failure_at,
        next_poll_at=row.next_poll_at,
        seeded=row.seeded,
        alerted=row.alerted,
    )


def _subscription_view(row: EssaySubscription) -> SubscriptionView:
    return SubscriptionView(
        row.platform, row.workspace_id, row.channel_id, row.role_id, row.enabled, row.disabled_reason
    )
