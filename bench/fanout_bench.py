"""An essay fanning out to 2,000 Discord channels while 50 people ask ember at once.

The fake Discord enforces its limits as in the `burst` benchmark (50 requests/s per token, 5
message writes per 5 s per channel). ember runs whole: the real discord.py client, its runtime
on SQLite, the essay outbox delivering through the same request scheduler as chat (each
announcement is a post and its discussion thread: two requests). First, `EMBER_BENCH_BURSTS`
bursts of 50 conversations (default 3) with nothing else going on; then the essay is published
and, `LEAD` seconds into its fan-out, the same number of bursts again, a quiet `SETTLE` apart.

Printed:
- chat first text after the model's first token, p50 / p99, without and with the fan-out
  (goal: p99 within 10%);
- the fan-out's duration against the bound its requests set on the budget chat left: (its
  requests + every other request made while it ran) / the rate (goal: at most 1.15×), for two
  rates: Discord's published 50 a second, and ember's budget of 50 per 1.05 s (the README's
  margin for clocks that disagree, `bots.discord.traits.GLOBAL_SECONDS`);
- the same against the budget chat left over once its reservations are counted too: while as
  many replies are in flight as the budget has slots, each holds one for its first and final
  text (core.budget.holds) and no essay post may go, whatever those replies send. The bound is
  then that reserved time + (the fan-out's requests + the others made outside it) / the rate;
- 429s answered.

Run: `make bench BENCH=fanout` (or `.venv/bin/python -m bench fanout`); about three minutes.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench.burst_bench import FIRST_TOKEN, SETTLE, TOKENS, TOKENS_PER_SECOND, _ms, bursts, one_burst
from bench.measure import env_count, percentile, quiet_run
from bots.discord.traits import GLOBAL_SECONDS
from core.budget import GLOBAL, RequestScheduler
from core.runtime import Runtime
from core.store import EssaySubscription
from tests.discord_support import ember_settings, running_ember
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import (
    DiscordLimits,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeUser,
    Recorded,
)
from tests.fakes.feed_server import FeedServer, Post

SIZE = 50
SAMPLE = 0.01  # seconds between two looks at the replies' reservations
CHANNELS = 2_000
PER_GUILD = 500  # Discord's most channels in one server
RATE = 50.0  # Discord's published global limit, requests per second
LEAD = 2.0  # seconds of fan-out before the first burst during it
DEADLINE = 600.0


class World:
    def __init__(self, repeats: int) -> None:
        self.people = [FakeUser(f"person{i}") for i in range(SIZE * repeats * 2)]
        self.rooms = [FakeChannel(f"room-{i}") for i in range(SIZE * repeats * 2)]
        chat = FakeGuild("Chat", channels=self.rooms, members=[FakeMember(p) for p in self.people])
        self.essay_guilds = [
            FakeGuild(f"Readers {g}", channels=[FakeChannel(f"essays-{g}-{n}") for n in range(PER_GUILD)])
            for g in range(channels() // PER_GUILD)
        ]
        self.fake = FakeDiscord([chat, *self.essay_guilds], limits=DiscordLimits())

    def essay_channel_ids(self) -> set[str]:
        return {str(channel.id) for guild in self.essay_guilds for channel in guild.channels}

    def burst(self, index: int) -> tuple[list[FakeChannel], list[FakeUser]]:
        chosen = slice(index * SIZE, (index + 1) * SIZE)
        return self.rooms[chosen], self.people[chosen]


async def subscribe_all(runtime: Runtime, world: World) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "platform": "discord",
            "workspace_id": str(guild.id),
            "channel_id": str(channel.id),
            "role_id": "",
            "enabled": True,
            "disabled_reason": "",
            "disabled_by": "",
            "created_by": "bench",
            "created_at": now,
            "updated_at": now,
        }
        for guild in world.essay_guilds
        for channel in guild.channels
    ]
    async with runtime.store.session() as session:
        for start in range(0, len(rows), 500):
            await session.exec(insert(EssaySubscription).values(rows[start : start + 500]))


async def publish(runtime: Runtime, feeds: FeedServer) -> None:
    """First poll records an older essay (not announced); the second finds the new one."""
    feeds.feed().posts.append(Post("older", "An older essay", datetime.now(UTC) - timedelta(days=3)))
    await runtime.essays.poll_once()
    feeds.feed().posts.append(Post("new", "A new essay", datetime.now(UTC) - timedelta(minutes=5)))
    [report] = await runtime.essays.poll_once()
    assert report.announced, report


async def chat_bursts(world: World, anthropic: FakeAnthropic, first: int, count: int) -> list[float]:
    """`count` bursts of SIZE conversations; each first text's delay after the first token."""
    delays: list[float] = []
    for index in range(first, first + count):
        if index > first:
            await asyncio.sleep(SETTLE)
        rooms, people = world.burst(index)
        _first, after_token, _final = await one_burst(world.fake, anthropic, rooms, people)
        delays += after_token
    return delays


async def watch_reservations(scheduler: RequestScheduler, spans: list[tuple[float, float]]) -> None:
    """Record the spans during which the replies in flight reserve the whole global budget:
    an essay post needs a slot beyond every held one and the standing headroom."""
    window = scheduler.policy.windows[GLOBAL]
    standing = scheduler.policy.kept_for_replies.get(GLOBAL, 0)
    loop = asyncio.get_running_loop()
    began: float | None = None
    try:
        while True:
            reserved = scheduler.held() + standing + 1 > window.limit
            now = loop.time()
            if reserved and began is None:
                began = now
            elif not reserved and began is not None:
                spans.append((began, now))
                began = None
            await asyncio.sleep(SAMPLE)
    finally:
        if began is not None:
            spans.append((began, loop.time()))


def inside(spans: list[tuple[float, float]], moment: float) -> bool:
    return any(start <= moment <= end for start, end in spans)


def channel_of(r: Recorded) -> str:
    parts = r.path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "channels" else ""


async def run(repeats: int) -> None:
    world = World(repeats)
    fake = world.fake
    essay_channels = world.essay_channel_ids()
    with tempfile.TemporaryDirectory() as tmp:
        async with fake, FakeAnthropic() as anthropic, FeedServer() as feeds:
            for _ in range(SIZE * repeats * 2):
                anthropic.script.append(
                    Reply.text(
                        ["word "] * TOKENS, first_token_delay=FIRST_TOKEN, token_delay=1 / TOKENS_PER_SECOND
                    )
                )
            settings = ember_settings(Path(tmp), anthropic, essays={"feeds": [feeds.url()]})
            with fake.pointed():
                async with running_ember(fake, anthropic, settings) as ember:
                    await subscribe_all(ember.runtime, world)
                    await asyncio.sleep(SETTLE)  # login's own requests leave the window
                    alone = await chat_bursts(world, anthropic, 0, repeats)
                    await asyncio.sleep(SETTLE)
                    await publish(ember.runtime, feeds)
                    started = asyncio.get_running_loop().time()
                    fan_out = asyncio.create_task(ember.runtime.essays.deliver_pending(wait=DEADLINE))
                    spans: list[tuple[float, float]] = []
                    scheduler = ember.runtime.budgets.for_platform("discord")
                    watching = asyncio.create_task(watch_reservations(scheduler, spans))
                    await asyncio.sleep(LEAD)
                    during = await chat_bursts(world, anthropic, repeats, repeats)
                    report = await fan_out
                    watching.cancel()
                    await asyncio.gather(watching, return_exceptions=True)
    answered = [r for r in fake.requests if r.status < 300]
    essay = [r for r in answered if channel_of(r) in essay_channels]
    ended = max(r.time for r in essay)
    others = [r for r in answered if started <= r.time <= ended and channel_of(r) not in essay_channels]
    seconds = ended - started
    needed = len(essay) + len(others)
    budget_rate = RATE / GLOBAL_SECONDS
    print(
        f"| chat first text after first token, p50 / p99 | alone {_ms(alone)} | during the fan-out {_ms(during)} |"
    )
    print(f"| p99 during ÷ alone | {_p99(during) / _p99(alone):.2f} (goal ≤ 1.10) | |")
    print(
        f"| fan-out: {report.sent:,} of {len(essay_channels):,} channels | {len(essay):,} requests in {seconds:.1f} s | "
        f"chat and the rest made {len(others):,} meanwhile |"
    )
    for label, rate in (("Discord's", RATE), ("the budget's", budget_rate)):
        bound = needed / rate
        print(
            f"| bound at {label} {rate:.1f} per s: ({len(essay):,} + {len(others):,}) / {rate:.1f} = "
            f"{bound:.1f} s | ratio {seconds / bound:.2f} (goal ≤ 1.15) | |"
        )
    reserved = sum(
        min(end, ended) - max(start, started) for start, end in spans if end > started and start < ended
    )
    unreserved = [r for r in others if not inside(spans, r.time)]
    for label, rate in (("Discord's", RATE), ("the budget's", budget_rate)):
        bound = reserved + (len(essay) + len(unreserved)) / rate
        print(
            f"| bound on what chat left at {label} rate: {reserved:.1f} s reserved by replies + "
            f"({len(essay):,} + {len(unreserved):,}) / {rate:.1f} = {bound:.1f} s | "
            f"ratio {seconds / bound:.2f} (goal ≤ 1.15) | |"
        )
    print(f"| 429s | {len(fake.rate_limited)} | |")


def _p99(delays: list[float]) -> float:
    return percentile(delays, 99) if delays else float("nan")


def channels() -> int:
    """Essay channels (`EMBER_BENCH_CHANNELS`, default 2,000), in servers of PER_GUILD."""
    return max(PER_GUILD, env_count("EMBER_BENCH_CHANNELS", CHANNELS))


async def main() -> None:
    quiet_run()
    repeats = bursts(default=1)
    print(
        f"Discord limits enforced (50/s global, 5 per 5 s per channel); {channels():,} essay channels "
        f"(post + discussion thread each); {repeats} bursts of {SIZE} conversations alone, then "
        f"{repeats} during the fan-out"
    )
    print("| figure | | |")
    print("|---|---|---|")
    await run(repeats)
