"""Prompt caching on a long conversation: billed input cost ÷ the cost with no caching.

A 40-turn reply chain among three people in one Slack thread, each message a few sentences and
each answer a few paragraphs, through the whole chat path (store, context, payload, SDK) against
the fake Anthropic billing like the API (tests/fakes/prompt_cache.py: writes at breakpoints,
reads of a prefix written less than five minutes ago ending at a breakpoint or at one of the 20
block boundaries before it). A turn comes every 40 seconds of the fake's clock. The figures are
read back from ember's own usage rows and priced with the config's prices. Goal: ≤ 0.4.

Run: `.venv/bin/python -m bench cache` (or `make bench BENCH=cache`).
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

from sqlmodel import select

from bots.slack.traits import slack_traits
from core.config import OPUS_3, Price, settings_from_dict
from core.events import Message, Place, User
from core.runtime import open_runtime
from core.store import Usage
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.prompt_cache import PromptCache
from tests.test_streaming import RecordingSink

TURNS = 40
FIRST_ID = 1_700_000_000  # Slack-like message timestamps
SECONDS_BETWEEN_TURNS = 40.0
SPEAKERS = (
    User("U1", "Ana", "slack", "T1"),
    User("U2", "Ben", "slack", "T1"),
    User("U3", "Cy", "slack", "T1"),
)
PLACE = Place("slack", "T1", "C1", thread_id="100.0")
VOCABULARY = (
    "essay memory river lantern quiet question answer model weather garden letters patience "
    "reading winter harbour thought wonder reason kindness language music evening light small "
    "world careful honest story the a of and to in that it is was for on with as"
)


class ThreadSink(RecordingSink):
    """A reply's messages, with ids unique in the thread (ember records its turn under them)."""

    def __init__(self, turn: int) -> None:
        super().__init__(max_chars=40_000, edit_interval=0.0)
        self._turn = turn

    async def post(self, text: str) -> str:
        return f"{self._turn}-{await super().post(text)}"

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        await super().edit(handle.split("-", 1)[1], text)


def sentences(rng: random.Random, count: int) -> str:
    said = []
    words = VOCABULARY.split()
    for _ in range(count):
        words = [rng.choice(words) for _ in range(rng.randint(9, 18))]
        said.append(" ".join(words).capitalize() + ".")
    return " ".join(said)


def answer(rng: random.Random) -> str:
    return "\n\n".join(sentences(rng, rng.randint(3, 5)) for _ in range(rng.randint(2, 4)))


async def main() -> None:
    rng = random.Random(14)
    now = [0.0]
    async with FakeAnthropic() as fake:
        fake.biller = PromptCache(clock=lambda: now[0])
        os.environ.setdefault("ANTHROPIC_API_KEY", "bench")
        with tempfile.TemporaryDirectory() as folder:
            settings = settings_from_dict(
                {
                    "database": {"url": f"sqlite+aiosqlite:///{Path(folder) / 'ember.db'}"},
                    "providers": {"anthropic": {"base_url": fake.url}},
                    "models": {"opus-3": {"backends": [{"provider": "anthropic", "model": OPUS_3}]}},
                    "access": {"mode": "open"},
                }
            )
            async with open_runtime(settings) as rt:
                rt.platforms.attach(slack_traits(settings.slack))
                for turn in range(TURNS):
                    fake.script.append(Reply.text([answer(rng)]))
                    speaker = SPEAKERS[turn % len(SPEAKERS)]
                    text = sentences(rng, rng.randint(1, 4))
                    message = Message(id=f"{FIRST_ID + turn}.0", place=PLACE, author=speaker, text=text)
                    outcome = await rt.engine.respond(message, ThreadSink(turn))
                    if outcome.status != "done":
                        raise RuntimeError(f"turn {turn} ended {outcome.status}: {outcome.error}")
                    now[0] += SECONDS_BETWEEN_TURNS
                async with rt.store.session() as session:
                    rows = list((await session.exec(select(Usage))).all())
    report(rows, settings.models["opus-3"].price)


def report(rows: list[Usage], price: Price) -> None:
    plain = sum(r.input_tokens for r in rows)
    written = sum(r.cache_write_tokens for r in rows)
    read = sum(r.cache_read_tokens for r in rows)
    billed = plain * price.input + written * price.cache_write + read * price.cache_read
    uncached = (plain + written + read) * price.input
    print(f"{len(rows)} requests over {TURNS} turns, 3 speakers")
    print(f"input tokens: {plain:,} plain, {written:,} written to cache, {read:,} read from cache")
    print(f"billed input ${billed / 1e6:.4f}; uncached ${uncached / 1e6:.4f}")
    print(f"billed input cost / uncached cost: {billed / uncached:.3f} (goal <= 0.4)")
