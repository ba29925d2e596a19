"""The essay outbox: every announcement owed to a channel is a row, sent at most once.

Exactly once, step by step:
1. Recording an essay writes one `essay_deliveries` row per enabled subscription in the same
   transaction (core.store.essays_repo), so an essay is never recorded without its deliveries
   (or vice versa).
2. A worker claims a due row with a compare-and-set (state → "sending", attempts + 1, a lease;
   core.store.outbox_repo) and commits that *before* calling the platform. Two hosts never
   claim the same row.
3. It calls the platform adapter's `Announcer.announce(delivery)` and marks the row "sent" with
   the platform's message id only after the platform confirmed the post.
4. If ember dies between 3's post and its mark, the row is still "sending". Its lease is renewed
   only while this process works on it, so when the lease runs out another attempt claims it with `delivery.uncertain = True` and the *same*
   `delivery.idempotency_key`: the adapter uses that key to find or suppress the earlier post
   (Discord: the key is the message nonce with enforce_nonce; Slack: the key is in the
   message's metadata and the adapter looks for it in the channel before posting again).

Failures: RateLimited retries after its Retry-After (and pauses the platform when global);
ChannelGone pauses the subscription and tells the moderators; DeliveryRejected fails that one
row (logged, counted in `ember essays status`); anything else retries with exponential back-off,
marked uncertain, until MAX_ATTEMPTS. Rows for a platform whose adapter is not running stay
pending until it registers.

Pacing: each platform's deliveries are paced by its one request scheduler (core.budget, through
a BudgetPacer), so the fan-out spends the budget chat shares, below chat in priority, whether
`ember run` or `ember essays poll` sends it. The adapter makes every platform request of a
delivery (the post, a publish, opening a thread) through `delivery.send(call)`, made in its turn
(inside the scheduler, which then counts it once); so the budget is spent exactly when a request
is made: a thread the adapter does not open, or a retry found already posted, costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.budget import BudgetPacer, RequestScheduler
from core.config import Settings
from core.errors import ChannelGone, DeliveryError, DeliveryRejected, RateLimited
from core.essays import wording
from core.essays.delivery import (
    Announcement,
    Delivery,
    DeliveryReport,
    announcement_of,
    delivery_key,
)
from core.essays.leases import Held, LeaseKeeper
from core.ports import Announcer
from core.store.essay_records import ClaimedRow
from core.store.essays_repo import EssaysRepo
from core.store.outbox_repo import OutboxRepo

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]
MAX_ATTEMPTS = 10
# How long a claimed row is left alone before another attempt may take it as "uncertain". Short,
# so that after a crash every owed announcement goes out within seconds of the restart (and well
# inside the minutes Discord remembers a nonce): while a delivery is in progress its lease is
# renewed (core.essays.leases), so a slow call is never mistaken for a dead one.
LEASE = timedelta(seconds=15)
# Opening a discussion thread is retried this often when the platform says "wait".
DISCUSS_ATTEMPTS = 3
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
# A Retry-After of 0 is still a little wait, so a confused platform cannot spin the worker.
MIN_RETRY = timedelta(seconds=0.5)


@dataclass(frozen=True)
class _Claim:
    delivery: Delivery
    subscription_id: int


class Outbox:
    def __init__(
        self,
        settings: Settings,
        essays: EssaysRepo,
        rows: OutboxRepo,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        lease: timedelta = LEASE,
        send_timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self._essays = essays
        self._rows = rows
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lease = lease
        self._leases = LeaseKeeper(rows, clock, lease)
        self._send_timeout = send_timeout
        self._announcers: dict[str, Announcer] = {}
        self._pacers: dict[str, BudgetPacer] = {}
        # Essays being delivered by this process (a weekly newsletter: a handful).
        self._announcements: dict[int, Announcement] = {}

    def register(
        self,
        platform: str,
        announcer: Announcer,
        *,
        scheduler: RequestScheduler,
        concurrency: int,
    ) -> None:
        """Deliveries for `platform` go through `announcer`, `concurrency` at once, each request
        in its turn at the platform's request `scheduler`."""
        if concurrency < 1:
            raise ValueError(f"{platform}: announcements need a concurrency of at least 1, not {concurrency}")
        self._announcers[platform] = announcer
        self._pacers[platform] = BudgetPacer(scheduler, concurrency)

    async def close(self) -> None:
        await self._rows.drain()

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(sorted(self._announcers))

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
        report.waiting = await self._rows.owed_elsewhere(self.platforms)
        return report

    async def next_due(self) -> datetime | None:
        """When the next pending or leased row of a registered platform comes due."""
        if not self._announcers:
            return None
        return await self._rows.next_due(self.platforms)

    async def _drain(self, platform: str, report: DeliveryReport) -> None:
        concurrency = self._pacers[platform].concurrency
        # Claimed rows wait for the pacer while "sending": a small batch keeps that wait short.
        # A sender finding the batch used up claims the next while the others' requests are
        # still on their way, so the budget never idles between batches.
        queue: deque[_Claim] = deque()
        held: Held = {}
        claiming = asyncio.Lock()
        nothing_due = False  # once a claim finds nothing, the other senders stop asking

        async def next_claim() -> _Claim | None:
            nonlocal nothing_due
            async with claiming:
                if not queue and not nothing_due:
                    claims = await self._claim_due(platform, limit=concurrency * 2)
                    held.update({c.delivery.id: c.delivery.attempt for c in claims})
                    queue.extend(claims)
                    nothing_due = not claims
                return queue.popleft() if queue else None

        try:
            async with self._leases.holding(held), asyncio.TaskGroup() as group:
                for _ in range(concurrency):
                    group.create_task(self._work(next_claim, held, report))
        except asyncio.CancelledError:
            # Shutting down: rows not yet started go back at once rather than wait a lease.
            await self._leases.give_back({c.delivery.id: c.delivery.attempt for c in queue})
            raise

    async def _work(
        self, next_claim: Callable[[], Awaitable[_Claim | None]], held: Held, report: DeliveryReport
    ) -> None:
        """One of a platform's concurrent senders: the pacer, not their number, sets the pace."""
        while (claim := await next_claim()) is not None:
            try:
                await self._attempt(claim, report)
            finally:
                held.pop(claim.delivery.id, None)  # its outcome is recorded: no more renewals

    async def _claim_due(self, platform: str, limit: int) -> list[_Claim]:
        """Take up to `limit` due rows for one attempt each, committed before any platform call."""
        rows = await self._rows.claim_due(platform, limit, self._clock(), self._lease)
        return [await self._claim_of(row) for row in rows]

    async def _claim_of(self, row: ClaimedRow) -> _Claim:
        pacer = self._pacers[row.platform]
        delivery = Delivery(
            id=row.id,
            idempotency_key=delivery_key(row.id),
            platform=row.platform,
            workspace_id=row.workspace_id,
            channel_id=row.channel_id,
            role_id=row.role_id,
            attempt=row.attempts,
            uncertain=row.uncertain,
            announcement=await self._announcement(row.essay_id),
            turns=pacer,
        )
        return _Claim(delivery, row.subscription_id)

    async def _announcement(self, essay_id: int) -> Announcement:
        cached = self._announcements.get(essay_id)
        if cached is None:
            essay = await self._essays.get(essay_id)
            if essay is None:
                raise LookupError("a delivery names a missing essay", essay_id)
            note = self.settings.studio.disclaimer if essay.from_studio else ""
            cached = self._announcements[essay_id] = announcement_of(essay, note)
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
            await self._fail(delivery, wording.rejected(delivery.platform, rejected))
        except DeliveryError as error:
            report.retrying += await self._back_off(delivery, str(error), uncertain=False)
        except Exception as error:  # timeouts, dropped connections, adapter bugs: outcome unknown
            log.warning("essay delivery %d to %s: %r", delivery.id, where(delivery), error)
            report.retrying += await self._back_off(delivery, repr(error), uncertain=True)
        else:
            report.sent += 1
            await self._rows.mark_sent(delivery.id, delivery.attempt, str(message_id), self._clock())
            await self._discuss(delivery, message_id)

    # ------------------------------------------------------------ outcomes

    async def _retry(self, delivery: Delivery, wait: timedelta, error: str, *, uncertain: bool) -> None:
        due = self._clock() + wait
        await self._rows.mark_retry(delivery.id, delivery.attempt, due, error, uncertain=uncertain)

    async def _back_off(self, delivery: Delivery, error: str, *, uncertain: bool) -> int:
        """Retry later, or give up after MAX_ATTEMPTS. Returns 1 when a retry was scheduled."""
        if delivery.attempt >= MAX_ATTEMPTS:
            await self._fail(delivery, wording.gave_up(delivery.attempt, error))
            return 0
        wait = min(RETRY_CAP, RETRY_BASE * 2 ** (delivery.attempt - 1)) * self._rng.uniform(0.8, 1.2)
        await self._retry(delivery, wait, error, uncertain=uncertain)
        return 1

    async def _fail(self, delivery: Delivery, error: str) -> None:
        log.error("essay delivery %d to %s failed: %s", delivery.id, where(delivery), error)
        await self._rows.mark_failed(delivery.id, delivery.attempt, error)

    async def _channel_gone(self, claim: _Claim, reason: str) -> None:
        """Pause the subscription (once, whichever worker sees it first) and tell moderators."""
        delivery = claim.delivery
        note = wording.channel_gone_note(reason)[:500]
        paused = await self._rows.pause_channel(claim.subscription_id, delivery.id, note, self._clock())
        log.warning("essay announcements paused for %s: %s", where(delivery), note)
        if paused:
            command = self.settings.command_for(delivery.platform)
            text = wording.channel_gone(delivery.channel_id, reason, command)
            await self.notify(delivery.platform, delivery.workspace_id, text)

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
                    log.warning("no discussion thread for %s: still rate limited", where(delivery))
                    return
                await asyncio.sleep(limited.retry_after)  # a busy moment, not a refusal: wait it out
            except Exception as error:
                log.warning(
                    "no discussion thread for essay delivery %d in %s: %r",
                    delivery.id,
                    where(delivery),
                    error,
                )
                return
        if thread_id:
            await self._essays.remember_thread(
                delivery.announcement.essay_id,
                delivery.platform,
                delivery.workspace_id,
                delivery.channel_id,
                str(thread_id),
                self._clock(),
            )

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


def where(delivery: Delivery) -> str:
    return f"{delivery.platform}:{delivery.workspace_id}:{delivery.channel_id}"
