"""Core overhead per message: message in → first delta handed to the sink.

The model is the loopback fake with zero latency. The time the request spends in the SDK and
on the wire (from the core handing it to the backend client until the first delta comes back)
is measured separately and subtracted, so the figure is ember's own work: access check, storing
the message, reading and rendering history, routing, and the first post to the sink.
The database holds 100,000 usage rows and 10,000 people, each with an access grant, as a grown
community's would; access is `request` mode (the default), so every message is checked.

Run: `.venv/bin/python -m bench core` (or `make bench BENCH=core`).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.measure import percentile
from core.chat.providers import Delta, ModelClient, build_client
from core.config import Backend, settings_from_dict
from core.events import Message, Place, User
from core.runtime import open_runtime
from core.store import AccessGrant, Person, Usage, db_now
from tests.fakes.anthropic_server import FakeAnthropic, Reply

USERS = 10_000
USAGE_ROWS = 100_000
PLACES = 500
WARMUP = 50
MESSAGES = 1_000


class TimedClient:
    """Wraps the real SDK client and notes how long the backend itself took to first delta."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.backend_seconds: list[float] = []

    async def stream(self, model: str, request: Mapping[str, Any]) -> AsyncIterator[Delta]:
        started = time.perf_counter()
        first = True
        async for delta in self.inner.stream(model, request):
            if first:
                self.backend_seconds.append(time.perf_counter() - started)
                first = False
            yield delta

    async def close(self) -> None:
        await self.inner.close()


class FirstPostSink:
    max_chars = 2000
    # No edit pacing: the benchmark measures ember's work, not a platform's rate limit.
    edit_interval = 0.0

    def __init__(self) -> None:
        self.first_post_at: float | None = None

    async def post(self, text: str) -> str:
        if self.first_post_at is None:
            self.first_post_at = time.perf_counter()
        return "m1"

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        return None

    async def notice(self, text: str) -> None:
        return None


async def seed(runtime: Any, rng: random.Random) -> None:
    now = db_now()
    people = [
        {
            "platform": "discord",
            "workspace_id": "g1",
            "user_id": str(u),
            "name": f"member{u}",
            "updated_at": now,
        }
        for u in range(USERS)
    ]
    usage = [
        {
            "created_at": now - timedelta(minutes=rng.randrange(60 * 24 * 60)),
            "platform": "discord",
            "workspace_id": "g1",
            "user_id": str(rng.randrange(USERS)),
            "place_key": f"discord:g1:c{rng.randrange(PLACES)}:-",
            "alias": "opus-3",
            "provider": "anthropic",
            "model": "claude-3-opus-20240229",
            "input_tokens": 1000,
            "output_tokens": 200,
            "cost_micros": 30_000,
            "trace_id": "seed",
            "outcome": "done",
        }
        for _ in range(USAGE_ROWS)
    ]
    grants = [
        {"platform": "discord", "workspace_id": "g1", "user_id": str(u), "granted_by": "bench", "version": 0}
        for u in range(USERS)
    ]
    async with runtime.store.session() as session:
        await session.exec(insert(Person), params=people)
        await session.exec(insert(AccessGrant), params=grants)
        for start in range(0, len(usage), 10_000):
            await session.exec(insert(Usage), params=usage[start : start + 10_000])


async def run() -> None:
    rng = random.Random(7)
    timed: list[TimedClient] = []
    async with FakeAnthropic() as fake:
        for _ in range(WARMUP + MESSAGES):
            fake.script.append(Reply.text(["ok"]))
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_from_dict(
                {
                    "database": {"url": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"},
                    "providers": {"anthropic": {"base_url": fake.url, "api_key_env": "EMBER_BENCH_KEY"}},
                    "access": {"mode": "request"},
                }
            )

            def factory(backend: Backend) -> ModelClient:
                client = TimedClient(build_client(backend, settings.providers, settings.source))
                timed.append(client)
                return client

            async with open_runtime(settings, client_factory=factory) as runtime:
                await seed(runtime, rng)
                overheads: list[float] = []
                started = time.perf_counter()
                for n in range(WARMUP + MESSAGES):
                    user = str(rng.randrange(USERS))
                    place = Place("discord", "g1", f"c{rng.randrange(PLACES)}")
                    author = User(user, f"member{user}", "discord", "g1")
                    message = Message(id=f"m{n}", place=place, author=author, text=f"message {n} " * 20)
                    sink = FirstPostSink()
                    t0 = time.perf_counter()
                    await runtime.engine.respond(message, sink)
                    assert sink.first_post_at is not None
                    backend = timed[0].backend_seconds[-1]
                    if n >= WARMUP:
                        overheads.append(sink.first_post_at - t0 - backend)
                elapsed = time.perf_counter() - started
    ms = [o * 1000 for o in overheads]
    print(
        f"database: {USAGE_ROWS:,} usage rows, {USERS:,} people with grants (SQLite, access mode request); {MESSAGES:,} messages after {WARMUP} warm-up"
    )
    print(
        f"core overhead, message in -> first delta at the sink: p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 99):.2f} ms"
    )
    print(
        f"whole request including the loopback model: {(WARMUP + MESSAGES) / elapsed:.0f} messages/s (sequential)"
    )


def main() -> None:
    os.environ.setdefault("EMBER_BENCH_KEY", "bench-key")  # the fake accepts any key
    asyncio.run(run())
