"""Bursts on Discord under its real rate limits: do replies appear first and finish promptly?

The fake Discord enforces 50 requests/s for the bot token and 5 message writes (creates, edits,
typing) per 5 s per channel, answering 429 as Discord does. The model takes 0.5 s to its first
token, then sends 200 tokens at 40/s. N people each mention ember in their own channel at the
same moment; each N is repeated in `EMBER_BENCH_BURSTS` bursts (default 10), each on fresh
channels, a quiet `SETTLE` seconds apart (a burst is N people at once, not the tail of the burst
before it still spending the budget). Printed per N:

- first text: from the message to its first visible text, minus the model's first-token delay
  (so it includes ember reading the message and asking the model);
- after first token: from the model's first token leaving the fake to the first visible text;
- final text: from the model's last token leaving the fake to the reply's finished text
  (its final buttons) being visible;
- 429s answered across all bursts of that N;
- the most message edits landing in any 0.1 s.

Run: `make bench BENCH=burst` (or `.venv/bin/python -m bench burst`).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
from collections import Counter
from pathlib import Path

from bench.measure import env_count, percentile, quiet_run
from tests.discord_support import EDIT, POST, ember_settings, finished, running_ember
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import (
    DiscordLimits,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeUser,
)

SIZES = (1, 10, 50)
FIRST_TOKEN = 0.5
TOKENS = 200
TOKENS_PER_SECOND = 40.0
DEADLINE = 30.0
SETTLE = 2.0


def bursts(default: int = 10) -> int:
    """Bursts per figure (`EMBER_BENCH_BURSTS`)."""
    return env_count("EMBER_BENCH_BURSTS", default)


def world(channels: int) -> tuple[FakeDiscord, list[FakeChannel], list[FakeUser]]:
    people = [FakeUser(f"person{i}") for i in range(channels)]
    rooms = [FakeChannel(f"room-{i}") for i in range(channels)]
    guild = FakeGuild("Bench", channels=rooms, members=[FakeMember(p) for p in people])
    return FakeDiscord([guild], limits=DiscordLimits()), rooms, people


async def one_burst(
    fake: FakeDiscord, anthropic: FakeAnthropic, rooms: list[FakeChannel], people: list[FakeUser]
) -> tuple[list[float], list[float], list[float]]:
    """Mention ember in every room at once; (first-text, after-first-token, final-text) delays
    in seconds."""
    loop = asyncio.get_running_loop()
    already = len(anthropic.requests)
    sent: dict[int, float] = {}
    for person, room in zip(people, rooms, strict=False):
        payload = fake.message(person, room, f"{fake.bot.mention} question in {room.name}")
        sent[room.id] = loop.time()
        await fake.dispatch("MESSAGE_CREATE", payload)
    ids = {str(room.id) for room in rooms}
    with contextlib.suppress(TimeoutError):
        await fake.wait_for(
            lambda r: finished(r) and r.path.split("/")[2] in ids, count=len(rooms), timeout=DEADLINE
        )
    asked = {_room_named(str(r.body["messages"])): r for r in anthropic.requests[already:]}
    first, after_token, final = [], [], []
    for room in rooms:
        posts = [
            r.time
            for r in fake.requests
            if r.route == POST and r.status < 300 and r.path.split("/")[2] == str(room.id)
        ]
        done = [r.time for r in fake.requests if finished(r) and r.path.split("/")[2] == str(room.id)]
        model = asked.get(room.name)
        if not posts or not done or model is None or model.first_token_at is None:
            continue
        first.append(posts[0] - sent[room.id] - FIRST_TOKEN)
        after_token.append(posts[0] - model.first_token_at)
        final.append(done[-1] - (model.last_token_at or model.first_token_at))
    return first, after_token, final


def _room_named(messages: str) -> str:
    """The room a model request is about, from the question text ember passed on."""
    return messages.split("question in ")[-1].split("'")[0].split('"')[0]


def peak_edits(fake: FakeDiscord) -> int:
    per_slot = Counter(int(r.time * 10) for r in fake.requests if r.route == EDIT and r.status < 300)
    return max(per_slot.values(), default=0)


async def run_size(size: int, repeats: int) -> str:
    fake, rooms, people = world(size * repeats)
    chunks = ["word "] * TOKENS
    with tempfile.TemporaryDirectory() as tmp:
        async with fake, FakeAnthropic() as anthropic:
            for _ in range(size * repeats):
                anthropic.script.append(
                    Reply.text(chunks, first_token_delay=FIRST_TOKEN, token_delay=1 / TOKENS_PER_SECOND)
                )
            settings = ember_settings(Path(tmp), anthropic)
            with fake.pointed():
                async with running_ember(fake, anthropic, settings):
                    first: list[float] = []
                    after_token: list[float] = []
                    final: list[float] = []
                    for burst in range(repeats):
                        if burst:
                            await asyncio.sleep(SETTLE)
                        chosen = slice(burst * size, (burst + 1) * size)
                        got = await one_burst(fake, anthropic, rooms[chosen], people[chosen])
                        first += got[0]
                        after_token += got[1]
                        final += got[2]
            return (
                f"| {size} | {len(first)}/{size * repeats} | {_ms(first)} | {_ms(after_token)} | "
                f"{_ms(final)} | {len(fake.rate_limited)} | {peak_edits(fake)} |"
            )


def _ms(delays: list[float]) -> str:
    """p50 / p99 in milliseconds ("-" when no reply finished within the deadline)."""
    if not delays:
        return "-"
    return f"{statistics.median(delays) * 1000:,.0f} / {percentile(delays, 99) * 1000:,.0f} ms"


async def main() -> None:
    quiet_run()
    repeats = bursts()
    print(
        f"Discord limits enforced (50/s global, 5 per 5 s per channel); model first token "
        f"{FIRST_TOKEN * 1000:.0f} ms, {TOKENS} tokens at {TOKENS_PER_SECOND:.0f}/s; {repeats} bursts per N"
    )
    print(
        "| N | shown | first text p50 / p99 | after first token p50 / p99 | final text p50 / p99 "
        "| 429s | peak edits in 0.1 s |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in SIZES:
        print(await run_size(size, repeats), flush=True)
