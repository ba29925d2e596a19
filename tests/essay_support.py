"""Stand-ins for what a platform adapter gives essay announcements (a recording Announcer),
a clock tests can move, and helpers to build the service over a real database."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text

from core.budget import Budgets
from core.config import settings_from_dict
from core.essays import Delivery, EssayService
from core.ports import Announcer
from core.runtime import Runtime
from core.store import Store
from tests.fakes.feed_server import FeedServer, Post

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
# Deliveries sent at once where the pace is not what a test is about.
CONCURRENCY = 8
DATABASES = ["sqlite", "postgres"]


class FakeTime:
    """Wall clock and monotonic clock together; `sleep` moves both instead of waiting."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now
        self.mono = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.now += step
        self.mono += step.total_seconds()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds=seconds)
        await asyncio.sleep(0)


class Killed(BaseException):
    """The process died here (kill -9): nothing after this point runs."""


class RecordingAnnouncer:
    """Plays a platform adapter: posts go into per-channel lists. Like Discord's nonce with
    enforce_nonce, a repeated idempotency key returns the earlier message instead of posting."""

    def __init__(self, platform: str = "discord") -> None:
        self.platform = platform
        self.calls: list[Delivery] = []
        self.posts: dict[str, list[tuple[str, Delivery]]] = defaultdict(list)
        self.by_key: dict[str, str] = {}
        self.replays = 0
        # channel id → errors to raise on the next calls for it, in order
        self.errors: dict[str, list[BaseException]] = defaultdict(list)
        self.die_after: int | None = None
        self.threads = True
        self.thread_errors: list[BaseException] = []  # raised by the next open_discussion calls
        self.opened: list[tuple[str, str]] = []  # (channel, thread id)
        self.moderators: list[tuple[str, str]] = []  # (workspace, text)
        self.posted_event = asyncio.Event()

    @property
    def post_count(self) -> int:
        return sum(len(p) for p in self.posts.values())

    async def announce(self, delivery: Delivery) -> str:
        self.calls.append(delivery)
        return await delivery.send(lambda: self._post(delivery))  # one request: the post

    async def _post(self, delivery: Delivery) -> str:
        if self.errors[delivery.channel_id]:
            raise self.errors[delivery.channel_id].pop(0)
        if delivery.idempotency_key in self.by_key:
            self.replays += 1
            return self.by_key[delivery.idempotency_key]
        message_id = f"{self.platform}-m{len(self.by_key) + 1}"
        self.by_key[delivery.idempotency_key] = message_id
        self.posts[delivery.channel_id].append((message_id, delivery))
        self.posted_event.set()
        if self.die_after is not None and self.post_count >= self.die_after:
            raise Killed()  # posted, but ember never heard back
        return message_id

    async def open_discussion(self, delivery: Delivery, message_id: str) -> str | None:
        if not self.threads:
            return None  # no request made, so no pace
        return await delivery.send(lambda: self._open(delivery, message_id))

    async def _open(self, delivery: Delivery, message_id: str) -> str:
        if self.thread_errors:
            raise self.thread_errors.pop(0)
        thread_id = f"t-{message_id}"
        self.opened.append((delivery.channel_id, thread_id))
        return thread_id

    async def notify_moderators(self, workspace_id: str, text: str) -> None:
        self.moderators.append((workspace_id, text))


def announce_unpaced(
    service: EssayService,
    budgets: Budgets,
    announcer: Announcer,
    platform: str = "discord",
    *,
    concurrency: int = CONCURRENCY,
) -> None:
    """Deliveries for `platform` go through `announcer`, `concurrency` at once, on the platform's
    scheduler from `budgets` (the `budgets` fixture's: no windows, so nothing waits)."""
    service.register_announcer(
        platform, announcer, scheduler=budgets.for_platform(platform), concurrency=concurrency
    )


def post(n: int, *, days_ago: float = 1.0, **fields: Any) -> Post:
    values: dict[str, Any] = {"slug": f"essay-{n}", "title": f"Essay {n}"}
    values.update(fields)
    return Post(published=START - timedelta(days=days_ago), **values)


@asynccontextmanager
async def open_store(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> AsyncIterator[Store]:
    if kind == "postgres":
        url = str(request.getfixturevalue("postgres_db_url"))
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
    store = Store.open(url)
    await store.upgrade()
    try:
        yield store
    finally:
        await store.close()


def make_service(
    store: Store,
    clock: FakeTime,
    feeds: list[str],
    *,
    announce_existing: bool = False,
    max_age_days: int = 7,
    poll_seconds: float = 900.0,
    **options: Any,
) -> EssayService:
    settings = settings_from_dict(
        {
            "essays": {
                "feeds": feeds,
                "announce_existing": announce_existing,
                "max_age_days": max_age_days,
                "poll_seconds": poll_seconds,
            }
        }
    )
    options.setdefault("fetch_deadline", 5.0)
    return EssayService(
        settings,
        store,
        clock=clock,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
        rng=random.Random(7),
        **options,
    )


async def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    async with store.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


# ---------------------------------------------------------------- end to end, on a platform fake


@dataclass
class Crash:
    """Makes a platform fake stop answering once it stored more than `after` announcements:
    the posts stand, ember never hears back (then the test kills ember)."""

    after: int
    stored: int = 0
    armed: bool = True
    crashed: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def hang_after(
    crash: Crash, handler: Handler, is_announcement: Callable[[web.Request, web.StreamResponse], bool]
) -> Handler:
    """`handler`, answering as usual until `crash` trips: then it stores and never answers."""

    async def answer_then_hang(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        if crash.armed and is_announcement(request, response):
            crash.stored += 1
            if crash.stored > crash.after:
                crash.crashed.set()
                await crash.release.wait()
        return response

    return answer_then_hang


def now_post(slug: str, title: str, **fields: Any) -> Post:
    return Post(slug, title, datetime.now(UTC) - timedelta(hours=1), **fields)


async def seed_and_publish(runtime: Runtime, feeds: FeedServer, new: Post) -> None:
    """First poll (an older essay: recorded, not announced), then the new essay appears."""
    feeds.feed().posts.append(now_post("older", "An older essay"))
    [first] = await runtime.essays.poll_once()
    assert first.ok and first.first_poll and not first.announced
    feeds.feed().posts.append(new)
    [second] = await runtime.essays.poll_once()
    assert second.announced == (new.title,), second
