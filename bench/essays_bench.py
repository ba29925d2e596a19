"""Essay fan-out: one new essay to 2,000 channels against a platform that enforces a rate limit.

The platform is a loopback HTTP server playing Discord's global limit: at most RATE requests in
any one-second window (stricter than Discord's own per-second bucket), answering 429 with a
Retry-After beyond that. A small adapter posts each announcement there (and, in the second run,
opens its discussion thread: a second request per channel). Everything else is ember's real
path: the feed is polled from the loopback feed host, the essay and its 2,000 deliveries are
written in one transaction to SQLite on disk, and the outbox worker sends them, paced by
Discord's request scheduler with the shipped budget (bots.discord.traits.discord_budget: 50
requests in any 1.05 s, counted from each answer, a slot kept for chat replies), as many at once
as the shipped traits say.

Figures: total time against the rate-limit bound (requests / RATE), duplicates and losses
(both must be 0), and the 429s the platform had to send.

Time compression: by default every rate is multiplied by SCALE = 10 (the platform enforces
500 requests/s and ember's budget is 500 per 1.05 s), so the run takes seconds, not minutes. The ratio is
then measured against the scaled bound; per-request overheads (database, HTTP) weigh ten times
more than at the real rate, so the scaled ratio is an upper bound of the real one. Set
EMBER_BENCH_SCALE=1 for the real 50 requests/s (about 2.5 minutes).

Run: `.venv/bin/python -m bench essays` (or `make bench BENCH=essays`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import insert, text

from bots.discord.traits import ANNOUNCE_CONCURRENCY, discord_budget
from core.budget import GLOBAL, RequestScheduler
from core.config import settings_from_dict
from core.errors import RateLimited
from core.essays import Delivery, EssayService
from core.store import EssaySubscription, Store
from tests.fakes.feed_server import FeedServer, Post

CHANNELS = 2_000
RATE = 50.0  # Discord: requests per second, for the whole bot


@dataclass
class Platform:
    """A chat platform that counts every post and refuses what exceeds its rate."""

    rate: float
    accepted: deque[float] = field(default_factory=deque)
    messages: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    refused: int = 0

    def admit(self) -> float:
        """0 when the request may pass now, else the seconds until it could."""
        now = time.monotonic()
        while self.accepted and self.accepted[0] <= now - 1.0:
            self.accepted.popleft()
        if len(self.accepted) >= self.rate:
            return self.accepted[0] + 1.0 - now
        self.accepted.append(now)
        return 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        wait = self.admit()
        if wait > 0:
            self.refused += 1
            return web.json_response({"retry_after": wait, "global": True}, status=429)
        channel = request.match_info["channel"]
        if request.match_info.get("message"):
            return web.json_response({"id": f"thread-{request.match_info['message']}"})
        self.messages[channel] += 1
        return web.json_response({"id": f"{channel}-{self.messages[channel]}"})


class BenchAnnouncer:
    """The adapter's part, minimal: one POST per announcement, one per thread."""

    def __init__(self, session: aiohttp.ClientSession, base: str, threads: bool) -> None:
        self.session, self.base, self.threads = session, base, threads

    async def _post(self, path: str, payload: dict[str, str]) -> str:
        async with self.session.post(f"{self.base}{path}", json=payload) as response:
            body = await response.json()
            if response.status == 429:
                raise RateLimited(float(body["retry_after"]), is_global=bool(body["global"]))
            return str(body["id"])

    async def announce(self, delivery: Delivery) -> str:
        essay = delivery.announcement
        payload = {"nonce": delivery.idempotency_key, "title": essay.title, "url": essay.link}
        # As every adapter does: each request is made in its turn, through the delivery.
        return await delivery.send(lambda: self._post(f"/channels/{delivery.channel_id}/messages", payload))

    async def open_discussion(self, delivery: Delivery, message_id: str) -> str | None:
        if not self.threads:
            return None  # no request, so nothing spent
        path = f"/channels/{delivery.channel_id}/messages/{message_id}/threads"
        return await delivery.send(lambda: self._post(path, {"name": "x"}))

    async def notify_moderators(self, workspace_id: str, text: str) -> None:
        return None


@dataclass(frozen=True)
class Result:
    label: str
    seconds: float
    requests: int
    refused: int
    duplicates: int
    losses: int  # channels the announcement never reached
    unconfirmed: int  # deliveries not marked sent (a post the outbox would retry)
    enqueue_seconds: float


async def fan_out(scale: float, threads: bool, workdir: Path) -> Result:
    platform = Platform(rate=RATE * scale)
    app = web.Application()
    app.router.add_post("/channels/{channel}/messages", platform.handle)
    app.router.add_post("/channels/{channel}/messages/{message}/threads", platform.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    database = workdir / f"essays-{int(threads)}.db"
    try:
        async with FeedServer() as feeds, aiohttp.ClientSession() as http:
            store = Store.open(f"sqlite+aiosqlite:///{database}")
            await store.upgrade()
            service = EssayService(settings_from_dict({"essays": {"feeds": [feeds.url()]}}), store)
            try:
                return await _measure(
                    service, store, feeds, BenchAnnouncer(http, base, threads), platform, scale, threads
                )
            finally:
                await service.close()
                await store.close()
    finally:
        await runner.cleanup()


async def _measure(
    service: EssayService,
    store: Store,
    feeds: FeedServer,
    announcer: BenchAnnouncer,
    platform: Platform,
    scale: float,
    threads: bool,
) -> Result:
    await _subscribe_all(store)
    now = datetime.now(UTC)
    feeds.feed().posts.append(Post("older", "An older essay", now - timedelta(days=3)))
    await service.poll_once()  # first poll: recorded, not announced
    feeds.feed().posts.append(Post("new", "A new essay", now - timedelta(minutes=5)))
    scheduler = RequestScheduler(discord_budget(int(RATE * scale)))
    service.register_announcer("discord", announcer, scheduler=scheduler, concurrency=ANNOUNCE_CONCURRENCY)
    try:
        started = time.perf_counter()
        [report] = await service.poll_once()
        enqueued = time.perf_counter()
        assert report.queued == CHANNELS, report
        await service.deliver_pending(wait=60)
        seconds = time.perf_counter() - started
    finally:
        await scheduler.aclose()
    async with store.engine.connect() as conn:
        sent = (
            await conn.execute(text("SELECT count(*) FROM essay_deliveries WHERE state = 'sent'"))
        ).scalar_one()
    counts = [platform.messages[f"C{n}"] for n in range(CHANNELS)]
    return Result(
        label=f"posts{' + discussion threads' if threads else ''}",
        seconds=seconds,
        requests=platform.requests - platform.refused,
        refused=platform.refused,
        duplicates=sum(max(0, c - 1) for c in counts),
        losses=sum(c == 0 for c in counts),
        unconfirmed=CHANNELS - sent,
        enqueue_seconds=enqueued - started,
    )


async def _subscribe_all(store: Store) -> None:
    rows = [
        {
            "platform": "discord",
            "workspace_id": f"G{n % 50}",
            "channel_id": f"C{n}",
            "role_id": "",
            "enabled": True,
            "disabled_reason": "",
            "disabled_by": "",
            "created_by": "bench",
            "created_at": datetime.now(UTC),
            "updated_at": datetime.now(UTC),
        }
        for n in range(CHANNELS)
    ]
    async with store.session() as session:
        await session.exec(insert(EssaySubscription).values(rows[:1000]))
        await session.exec(insert(EssaySubscription).values(rows[1000:]))


def _report(result: Result, scale: float) -> None:
    rate = RATE * scale
    bound = result.requests / rate
    print(
        f"{result.label}: {CHANNELS:,} channels, {result.requests:,} requests in {result.seconds:.2f} s "
        f"(essay + {CHANNELS:,} deliveries written in {result.enqueue_seconds:.2f} s)"
    )
    print(
        f"  rate-limit bound {result.requests:,} / {rate:g} per s = {bound:.2f} s → "
        f"ratio {result.seconds / bound:.2f} (1.00 is the platform's limit)"
    )
    print(
        f"  duplicates {result.duplicates}, losses {result.losses}, unconfirmed {result.unconfirmed}, "
        f"429s from the platform {result.refused}"
    )
    # The promise, not a speed: every channel gets exactly one announcement.
    assert result.duplicates == 0 and result.losses == 0 and result.unconfirmed == 0, result


async def main() -> None:
    scale = float(os.environ.get("EMBER_BENCH_SCALE", "10"))
    budget = discord_budget(int(RATE * scale)).windows[GLOBAL]
    print(
        f"platform enforces {RATE * scale:g} requests in any 1 s window (Discord's {RATE:g}/s × {scale:g} "
        f"time compression); ember's budget: {budget.limit} requests in any {budget.seconds:g} s "
        f"(the shipped Discord budget × {scale:g}), {ANNOUNCE_CONCURRENCY} deliveries at once"
    )
    with tempfile.TemporaryDirectory() as workdir:
        for threads in (False, True):
            _report(await fan_out(scale, threads, Path(workdir)), scale)
