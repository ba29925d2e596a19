"""The essay outbox: every announcement owed to a channel is a row, sent at most once.

Exactly once, step by step:
1. `enqueue` writes one `essay_deliveries` row per enabled subscription in the same transaction
   that records the essay, so an essay is never recorded without its deliveries (or vice versa).
2. A worker claims a due row with a compare-and-set (state → "sending", attempts + 1, a lease)
   and commits that *before* calling the platform. Two hosts never claim the same row.
3. It calls the platform adapter's `Announcer.announce(delivery)` and marks the row "sent" with
   the platform's message id only after the platform confirmed the post.
4. If ember dies between 3's post and its mark, the row is still "sending". When the lease runs
   out another attempt claims it with `delivery.uncertain = True` and the *same*
   `delivery.idempotency_key`: the adapter uses that key to find or suppress the earlier post
   (Discord: the key is the message nonce with enforce_nonce; Slack: the key is in the
   message's metadata and the adapter looks for it in the channel before posting again).

Failures: RateLimited retries after its Retry-After (and pauses the platform when global);
ChannelGone pauses the subscription and tells the moderators; DeliveryRejected fails that one
row (logged, counted in `ember essays status`); anything else retries with exponential back-off,
marked uncertain, until MAX_ATTEMPTS. Rows for a platform whose adapter is not running stay
pending until it registers.

Pacing: each platform has one Pacer (core.ratelimit). The adapter awaits `delivery.pace()`
right before every platform request it makes for a delivery (the post, a publish, opening a
thread), so a token is spent exactly when a request is made: a thread the adapter does not
open, or a retry found already posted, costs nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row, Table, case, func, true, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core.config import Settings
from core.errors import ChannelGone, DeliveryError, DeliveryRejected, RateLimited
from core.ratelimit import Pacer, RateLimit, Sleep, default_rate_limit
from core.store import Essay, EssayDelivery, EssaySubscription, EssayThread, Store
from core.store.group_commit import GroupCommit

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Pace = Callable[[], Awaitable[None]]
MAX_ATTEMPTS = 10
# How long a claimed row is left alone before another attempt may take it as "uncertain": longer
# than one paced, time-limited call, and short, because Discord remembers nonces for minutes only.
LEASE = timedelta(minutes=2)
# Opening a discussion thread is retried this often when the platform says "wait".
DISCUSS_ATTEMPTS = 3
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
# A Retry-After of 0 is still a little wait, so a confused platform cannot spin the worker.
MIN_RETRY = timedelta(seconds=0.5)
KEY_PREFIX = "ember-essay-"  # + the row id: at most 25 characters, Discord's nonce limit
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


# ---------------------------------------------------------------- what adapters see


@dataclass(frozen=True)
class Announcement:
    """One essay, platform-neutral, for an adapter to render (Discord embed, Slack Block Kit).

    Every text field is plain text exactly as the newsletter wrote it: no HTML, no Markdown,
    no escaping of any kind. It may contain "@everyone", "<!channel>", "<@123>", "*", "_", "<"
    or "&". Adapters must escape it for their markup and allow no mention in it: the only
    thing an announcement may ping is `Delivery.role_id`.
    """

    essay_id: int
    title: str  # one line, at most 256 characters
    link: str  # an absolute http(s) URL, or ""
    summary: str  # one paragraph, at most 300 characters
    author: str
    published_at: datetime | None  # aware UTC
    image_url: str  # the cover image: an absolute http(s) URL, or ""
    # The whole essay as plain text, kept for discussion threads; not meant to be posted.
    full_text: str = field(repr=False)


async def _no_pace() -> None:
    return None


@dataclass(frozen=True)
class Delivery:
    """One announcement for one channel, as handed to `Announcer.announce`."""

    id: int
    # The same on every attempt at this delivery, across restarts and hosts; at most 25 characters.
    idempotency_key: str
    platform: str
    workspace_id: str
    channel_id: str
    role_id: str  # ping this role and nothing else; "" pings nobody
    attempt: int  # 1 on the first try
    # An earlier attempt may have posted (ember stopped, or the call failed without an answer):
    # look for `idempotency_key` before posting again.
    uncertain: bool
    announcement: Announcement
    # Await before each platform request made for this delivery: waits for the channel's gap
    # and a token of the platform's budget (shared with every other delivery of the platform).
    pace: Pace = field(default=_no_pace, repr=False, compare=False)


class Announcer(Protocol):
    """What a platform adapter does for essay announcements. Register with
    `EssayService.register_announcer(platform, announcer, limit)`."""

    async def announce(self, delivery: Delivery) -> str:
        """Post the announcement in `delivery.channel_id`; return the platform's message id.
        Await `delivery.pace()` before each platform request.
        Raise RateLimited, ChannelGone (403/404) or DeliveryRejected (400) when the platform
        says so; DeliveryError for any other certain non-post. Any other exception means
        "may have been posted" and the retry comes with `uncertain=True`."""
        ...

    async def open_discussion(self, delivery: Delivery, message_id: str) -> str | None:
        """Open a thread under the posted announcement; return its thread id (None: none).
        Await `delivery.pace()` before each platform request it makes (none: no token spent).
        Messages in it must reach the core with Place(channel_id=delivery.channel_id,
        thread_id=<this id>), so they are answered with the essay in context."""
        ...

    async def notify_moderators(self, workspace_id: str, text: str) -> None:
        """Post `text` (core-written; `<#channel>` mentions only) to the moderators' channel."""
        ...


@dataclass
class DeliveryReport:
    """What one `deliver_pending` did, for the CLI, the log and tests."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: int = 0
    rate_limited: int = 0
    # Due rows left for platforms without a registered adapter in this process.
    waiting: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        text = (
            f"deliveries: {self.sent} sent, {self.retrying} to retry, {self.failed} failed, "
            f"{self.disabled} to channels now paused"
        )
        for platform, count in sorted(self.waiting.items()):
            text += f"; {count} queued for {platform} (its adapter is not running here)"
        return text


@dataclass(frozen=True)
class _Claim:
    delivery: Delivery
    subscription_id: int


def delivery_key(delivery_id: int) -> str:
    return f"{KEY_PREFIX}{delivery_id}"


def announcement_of(essay: Essay) -> Announcement:
    return Announcement(
        essay_id=essay.id or 0,
        title=essay.title,
        link=essay.link,
        summary=essay.summary,
        author=essay.author,
        published_at=essay.published_at,
        image_url=essay.image_url,
        full_text=essay.full_text,
    )


# ---------------------------------------------------------------- the worker


class Outbox:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        lease: timedelta = LEASE,
        send_timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lease = lease
        self._send_timeout = send_timeout
        self._announcers: dict[str, Announcer] = {}
        self._pacers: dict[str, Pacer] = {}
        # The outcomes of every worker share transactions; each still waits for its own.
        self._writes = GroupCommit(store)
        # Essays being delivered by this process (a weekly newsletter: a handful).
        self._announcements: dict[int, Announcement] = {}

    def register(self, platform: str, announcer: Announcer, limit: RateLimit | None = None) -> None:
        self._announcers[platform] = announcer
        pace = limit or default_rate_limit(platform)
        self._pacers[platform] = Pacer(pace, clock=self._monotonic, sleep=self._sleep)

    async def close(self) -> None:
        await self._writes.drain()

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(sorted(self._announcers))

    # ------------------------------------------------------------ enqueue

    @staticmethod
    async def enqueue(session: AsyncSession, essay_id: int, now: datetime) -> int:
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

    # ------------------------------------------------------------ delivering

    async def deliver_pending(self, *, wait: float = 0.0) -> DeliveryReport:
        """Send every due delivery for the platforms with an adapter. With `wait`, also wait up
        to that many seconds for retries (Retry-After, back-off) that come due meanwhile."""
        report = DeliveryReport()
        give_up = self._monotonic() + wait
        while True:
            await asyncio.gather(*(self._drain(p, report) for p in self.platforms))
            due = await self.next_due()
            if due is None:
                break
            delay = max(0.0, (due - self._clock()).total_seconds())
            if delay > give_up - self._monotonic():
                break
            await self._sleep(delay)
        report.waiting = await self._waiting_elsewhere()
        return report

    async def _drain(self, platform: str, report: DeliveryReport) -> None:
        concurrency = max(1, self._pacers[platform].limit.concurrency)
        # Claimed rows wait for the pacer while "sending": a small batch keeps that wait short.
        while claims := await self._claim_due(platform, limit=concurrency * 2):
            queue = deque(claims)
            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency, len(claims))):
                    group.create_task(self._work(queue, report))

    async def _work(self, queue: deque[_Claim], report: DeliveryReport) -> None:
        """One of a platform's concurrent senders: the pacer, not their number, sets the pace."""
        while queue:
            await self._attempt(queue.popleft(), report)

    async def _claim_due(self, platform: str, limit: int) -> list[_Claim]:
        """Take up to `limit` due rows for one attempt each, committed before any platform call.

        One UPDATE ... RETURNING: a row is taken only while it is still pending (or its lease
        ran out) and due, so two workers or hosts never take the same row; on PostgreSQL a rival
        waiting for the row lock re-checks those conditions and skips it."""
        now = self._clock()
        table = _deliveries()
        due = (
            select(table.c.id)
            .where(
                table.c.platform == platform,
                table.c.state.in_(("pending", "sending")),
                table.c.next_attempt_at <= now,
            )
            .order_by(table.c.next_attempt_at, table.c.id)
            .limit(limit)
        )
        if self.store.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(table)
            .where(
                table.c.id.in_(due.scalar_subquery()),
                table.c.state.in_(("pending", "sending")),
                table.c.next_attempt_at <= now,
            )
            .values(
                state="sending",
                attempts=table.c.attempts + 1,
                # A row found "sending" was left by an attempt that never reported back.
                uncertain=case((table.c.state == "sending", true()), else_=table.c.uncertain),
                next_attempt_at=now + self._lease,
            )
            .returning(*(table.c[name] for name in CLAIMED_COLUMNS))
        )
        async with self.store.session() as session:
            rows = (await session.exec(claim)).all()
        return [await self._claim_of(row) for row in sorted(rows, key=lambda r: r.id)]

    async def _claim_of(self, row: Row[Any]) -> _Claim:
        pacer = self._pacers[row.platform]
        delivery = Delivery(
            id=row.id,
            idempotency_key=delivery_key(row.id),
            platform=row.platform,
            workspace_id=row.workspace_id,
            channel_id=row.channel_id,
            role_id=row.role_id,
            attempt=row.attempts,
            uncertain=bool(row.uncertain),
            announcement=await self._announcement(row.essay_id),
            pace=functools.partial(pacer.acquire, row.channel_id),
        )
        return _Claim(delivery, row.subscription_id)

    async def next_due(self) -> datetime | None:
        """When the next pending or leased row of a registered platform comes due."""
        if not self._announcers:
            return None
        query = select(func.min(EssayDelivery.next_attempt_at)).where(
            col(EssayDelivery.platform).in_(self.platforms),
            col(EssayDelivery.state).in_(("pending", "sending")),
        )
        async with self.store.session() as session:
            return (await session.exec(query)).one()

    async def _waiting_elsewhere(self) -> dict[str, int]:
        query = (
            select(EssayDelivery.platform, func.count())
            .where(col(EssayDelivery.state).in_(("pending", "sending")))
            .where(col(EssayDelivery.platform).not_in(self.platforms))
            .group_by(col(EssayDelivery.platform))
        )
        async with self.store.session() as session:
            return {platform: count for platform, count in (await session.exec(query)).all()}

    async def _announcement(self, essay_id: int) -> Announcement:
        cached = self._announcements.get(essay_id)
        if cached is None:
            async with self.store.session() as session:
                essay = await session.get(Essay, essay_id)
            if essay is None:
                raise LookupError(f"delivery for missing essay {essay_id}")
            cached = self._announcements[essay_id] = announcement_of(essay)
        return cached

    async def _attempt(self, claim: _Claim, report: DeliveryReport) -> None:
        delivery = claim.delivery
        announcer = self._announcers[delivery.platform]
        pacer = self._pacers[delivery.platform]
        try:
            async with asyncio.timeout(self._send_timeout):
                message_id = await announcer.announce(delivery)
        except RateLimited as limited:
            report.rate_limited += 1
            if limited.is_global:
                pacer.pause(limited.retry_after)
            wait = max(MIN_RETRY, timedelta(seconds=limited.retry_after))
            await self._retry(delivery, wait, str(limited), uncertain=False)
        except ChannelGone as gone:
            report.disabled += 1
            await self._channel_gone(claim, str(gone))
        except DeliveryRejected as rejected:
            report.failed += 1
            await self._fail(delivery, f"rejected by {delivery.platform}: {rejected}")
        except DeliveryError as error:
            report.retrying += await self._back_off(delivery, str(error), uncertain=False)
        except Exception as error:  # timeouts, dropped connections, adapter bugs: outcome unknown
            log.warning("essay delivery %d to %s: %r", delivery.id, _where(delivery), error)
            report.retrying += await self._back_off(delivery, repr(error), uncertain=True)
        else:
            report.sent += 1
            await self._sent(delivery, message_id)
            await self._discuss(delivery, message_id)

    # ------------------------------------------------------------ outcomes

    async def _set(self, delivery: Delivery, **values: object) -> None:
        """Record this attempt's outcome, unless the row has since been claimed again (a lease
        that ran out): the newer attempt, holding the same idempotency key, settles it."""
        table = _deliveries()
        await self._writes.execute(
            update(table)
            .where(
                table.c.id == delivery.id, table.c.state == "sending", table.c.attempts == delivery.attempt
            )
            .values(**values)
        )

    async def _sent(self, delivery: Delivery, message_id: str) -> None:
        await self._set(
            delivery,
            state="sent",
            platform_message_id=str(message_id)[:64],
            sent_at=self._clock(),
            last_error="",
        )

    async def _retry(self, delivery: Delivery, wait: timedelta, error: str, *, uncertain: bool) -> None:
        await self._set(
            delivery,
            state="pending",
            uncertain=uncertain,
            next_attempt_at=self._clock() + wait,
            last_error=error[:500],
        )

    async def _back_off(self, delivery: Delivery, error: str, *, uncertain: bool) -> int:
        """Retry later, or give up after MAX_ATTEMPTS. Returns 1 when a retry was scheduled."""
        if delivery.attempt >= MAX_ATTEMPTS:
            await self._fail(delivery, f"gave up after {delivery.attempt} attempts: {error}")
            return 0
        wait = min(RETRY_CAP, RETRY_BASE * 2 ** (delivery.attempt - 1)) * self._rng.uniform(0.8, 1.2)
        await self._retry(delivery, wait, error, uncertain=uncertain)
        return 1

    async def _fail(self, delivery: Delivery, error: str) -> None:
        log.error("essay delivery %d to %s failed: %s", delivery.id, _where(delivery), error)
        await self._set(delivery, state="failed", last_error=error[:500])

    async def _channel_gone(self, claim: _Claim, reason: str) -> None:
        """Pause the subscription (once, whichever worker sees it first) and tell moderators."""
        delivery = claim.delivery
        now = self._clock()
        note = f"the channel is gone or ember may not post there ({reason})"[:500]
        async with self.store.session() as session:
            paused = await session.exec(
                update(EssaySubscription)
                .where(
                    col(EssaySubscription.id) == claim.subscription_id,
                    col(EssaySubscription.enabled).is_(True),
                )
                .values(enabled=False, disabled_reason=note, disabled_by="", updated_at=now)
                .execution_options(synchronize_session=False)
            )
            await session.exec(
                update(EssayDelivery)
                .where(
                    col(EssayDelivery.subscription_id) == claim.subscription_id,
                    (col(EssayDelivery.id) == delivery.id) | (col(EssayDelivery.state) == "pending"),
                )
                .values(state="disabled", last_error=note)
                .execution_options(synchronize_session=False)
            )
        log.warning("essay announcements paused for %s: %s", _where(delivery), note)
        if paused.rowcount:
            command = self.settings.command_for(delivery.platform)
            await self.notify(
                delivery.platform,
                delivery.workspace_id,
                f"I can no longer post essay announcements in <#{delivery.channel_id}> ({reason}), "
                f"so that subscription is paused. Once I can post there again, a moderator can resume "
                f"it with `{command} essays subscribe <#{delivery.channel_id}>`.",
            )

    async def _discuss(self, delivery: Delivery, message_id: str) -> None:
        """Open the discussion thread and remember it. Best effort: the post already stands."""
        announcer = self._announcers[delivery.platform]
        thread_id: str | None = None
        for attempt in range(1, DISCUSS_ATTEMPTS + 1):
            try:
                async with asyncio.timeout(self._send_timeout):
                    thread_id = await announcer.open_discussion(delivery, message_id)
                break
            except RateLimited as limited:
                if attempt == DISCUSS_ATTEMPTS:
                    log.warning("no discussion thread for %s: still rate limited", _where(delivery))
                    return
                await asyncio.sleep(limited.retry_after)  # a busy moment, not a refusal: wait it out
            except Exception as error:
                log.warning(
                    "no discussion thread for essay delivery %d in %s: %r",
                    delivery.id,
                    _where(delivery),
                    error,
                )
                return
        if not thread_id:
            return
        row = {
            "platform": delivery.platform,
            "workspace_id": delivery.workspace_id,
            "channel_id": delivery.channel_id,
            "thread_id": str(thread_id)[:64],
            "essay_id": delivery.announcement.essay_id,
            "created_at": self._clock(),
        }
        async with self.store.session() as session:
            await session.exec(self.store.insert(EssayThread).values(row).on_conflict_do_nothing())

    async def notify(self, platform: str, workspace_id: str, text: str) -> bool:
        """Tell a workspace's moderators; False when no adapter could (it is logged either way)."""
        announcer = self._announcers.get(platform)
        if announcer is None:
            log.warning(
                "no %s adapter is running to tell the moderators of %s: %s", platform, workspace_id, text
            )
            return False
        try:
            await announcer.notify_moderators(workspace_id, text)
        except Exception:
            log.exception("could not tell the moderators of %s:%s: %s", platform, workspace_id, text)
            return False
        return True


def _deliveries() -> Table:
    # The outbox's hot statements use the table itself: the ORM's bulk-update path costs twice as much.
    return SQLModel.metadata.tables[EssayDelivery.__tablename__]


def _where(delivery: Delivery) -> str:
    return f"{delivery.platform}:{delivery.workspace_id}:{delivery.channel_id}"
