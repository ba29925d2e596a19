"""The Discord bot under load: 200 conversations at once in one process.

ember's real discord.py client runs against the loopback fake Discord (REST + gateway), and the
fake Anthropic API streams every answer at 40 tokens a second after a fixed first-token delay.
200 people each mention ember in their own channel at the same moment. Measured:

- first visible text: from the MESSAGE_CREATE being sent to the first message post arriving at
  Discord, minus the model's own first-token time (the fake's scripted delay, counted from
  the moment the model request arrived). What is left is ember's work before and after the
  model: reading the event, history and storage, routing, the SDK, and the post itself;
- edits per message per second: the highest rate any one message was written at (each
  message's writes over its own lifetime, and the shortest gap between two of its writes);
  the design limit is one a second;
- event-loop lag: how late a 10 ms timer fires while all this runs (the fakes share the loop,
  so this is an upper bound on ember's own lag);
- peak memory: the process's maximum resident set (ember, discord.py and both fakes).

Run: `.venv/bin/python -m bench discord`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import resource
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.measure import (
    CONVERSATIONS,
    DEADLINE,
    FIRST_TOKEN,
    LAG_TICK,
    TOKENS,
    TOKENS_PER_SECOND,
    percentile,
    quiet_run,
    watch_lag,
)
from tests.discord_support import EDIT, POST, ember_settings, finished, running_ember
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import FakeChannel, FakeDiscord, FakeGuild, FakeMember, FakeUser, Recorded


class Failures(logging.Handler):
    """Counts conversations that broke off (logged by the facade, core.ember)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "broke off" in record.getMessage():
            self.messages.append(record.getMessage())


def world() -> tuple[FakeDiscord, list[FakeChannel], list[FakeUser]]:
    people = [FakeUser(f"person{i}", global_name=f"Person {i}") for i in range(CONVERSATIONS)]
    channels = [FakeChannel(f"room-{i}") for i in range(CONVERSATIONS)]
    guild = FakeGuild("Bench", channels=channels, members=[FakeMember(p) for p in people])
    return FakeDiscord([guild]), channels, people


def write_rates(writes: dict[int, list[float]]) -> tuple[float, float]:
    """Over every message (its post, then its edits): the highest edits-per-second rate of any
    one message over its own lifetime, and the shortest gap between two writes of one message."""
    rates = [(len(t) - 1) / (t[-1] - t[0]) for t in writes.values() if len(t) > 1]
    gaps = [b - a for t in writes.values() for a, b in itertools.pairwise(t)]
    return max(rates, default=0.0), min(gaps, default=float("inf"))


def channel_of(r: Recorded) -> int:
    return int(r.path.split("/")[2])


async def run() -> None:
    quiet_run()
    failures = Failures()
    for name in ("bots.discord", "core.ember"):  # the facade logs a conversation that broke off
        logging.getLogger(name).addHandler(failures)
        logging.getLogger(name).setLevel(logging.ERROR)
    fake, channels, people = world()
    chunks = ["word "] * TOKENS
    delay = 1 / TOKENS_PER_SECOND
    with tempfile.TemporaryDirectory() as tmp:
        async with fake, FakeAnthropic() as anthropic:
            for _ in range(CONVERSATIONS):
                anthropic.script.append(Reply.text(chunks, first_token_delay=FIRST_TOKEN, token_delay=delay))
            settings = ember_settings(Path(tmp), anthropic)
            with fake.pointed():
                async with running_ember(fake, anthropic, settings) as ember:
                    await measure(ember.discord, anthropic, channels, people, failures)


async def measure(
    fake: FakeDiscord,
    anthropic: FakeAnthropic,
    channels: list[FakeChannel],
    people: list[FakeUser],
    failures: Failures,
) -> None:
    loop = asyncio.get_running_loop()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lags: list[float] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_lag(lags, stop))
    sent: dict[int, float] = {}
    started = time.perf_counter()
    for person, channel in zip(people, channels, strict=True):
        payload = fake.message(person, channel, f"{fake.bot.mention} question from {person.username}")
        sent[channel.id] = loop.time()
        await fake.dispatch("MESSAGE_CREATE", payload)
    with contextlib.suppress(TimeoutError):  # reported below: how many finished, how many broke off
        await fake.wait_for(finished, count=CONVERSATIONS, timeout=DEADLINE)
    wall = time.perf_counter() - started
    stop.set()
    await watcher

    asked: dict[str, float] = {}  # who → when the model was asked (absent: never asked)
    for request in anthropic.requests:
        words = str(request.body["messages"]).split("question from ")[-1]
        asked[words.split("'")[0].split('"')[0]] = request.at
    writes: dict[int, list[float]] = defaultdict(list)  # channel → its one message's writes
    for r in fake.requests:
        if r.route in (POST, EDIT) and r.status < 300:
            writes[channel_of(r)].append(r.time)
    visible, before_model, after_model = [], [], []
    for person, channel in zip(people, channels, strict=True):
        if not writes[channel.id] or person.username not in asked:
            continue  # never shown, or never reached the model (counted below)
        first_post, model_asked = writes[channel.id][0], asked[person.username]
        visible.append(first_post - sent[channel.id])
        before_model.append(model_asked - sent[channel.id])
        after_model.append(first_post - (model_asked + FIRST_TOKEN))
    overhead = [v - FIRST_TOKEN for v in visible]
    rate, gap = write_rates(writes)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    ms = 1000
    done = len([r for r in fake.requests if finished(r)])
    ending = "all finished in" if done == CONVERSATIONS else "stopped waiting after"
    print(
        f"finished {done} of {CONVERSATIONS}; shown {len(visible)}; broke off {len(failures.messages)}"
        + (f" (first: {failures.messages[0][:300]})" if failures.messages else "")
    )
    print(
        f"{CONVERSATIONS} conversations, {TOKENS} tokens each at {TOKENS_PER_SECOND:.0f} tokens/s, "
        f"model first token {FIRST_TOKEN * ms:.0f} ms; {ending} {wall:.1f} s"
    )
    print(
        f"first visible text, MESSAGE_CREATE → first post: p50 {statistics.median(visible) * ms:.0f} ms, "
        f"p99 {percentile(visible, 99) * ms:.0f} ms"
    )
    print(
        f"  minus the model's own first-token time:      p50 {statistics.median(overhead) * ms:.0f} ms, "
        f"p99 {percentile(overhead, 99) * ms:.0f} ms"
    )
    print(
        f"  of which before the model request:          p50 {statistics.median(before_model) * ms:.0f} ms, "
        f"p99 {percentile(before_model, 99) * ms:.0f} ms; after its first token: "
        f"p50 {statistics.median(after_model) * ms:.0f} ms, p99 {percentile(after_model, 99) * ms:.0f} ms"
    )
    print(
        f"edits per message per second: max {rate:.2f} over {len(writes)} messages "
        f"(shortest gap between writes of one message {gap * ms:.0f} ms; limit 1/s)"
    )
    print(
        f"event-loop lag ({LAG_TICK * ms:.0f} ms timer, {len(lags)} samples): "
        f"p50 {statistics.median(lags) * ms:.1f} ms, p99 {percentile(lags, 99) * ms:.1f} ms, "
        f"max {max(lags) * ms:.1f} ms"
    )
    print(
        f"peak memory (max RSS, whole process incl. fakes): {rss_after / 1024:.0f} MiB "
        f"({rss_before / 1024:.0f} MiB before the conversations)"
    )
    assert rate <= 1.0 + 1e-6 and gap >= 1.0 - 0.01, "an edit came faster than once a second"


async def main() -> None:
    await run()
