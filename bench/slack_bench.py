"""The Slack bot under load: 200 conversations at once in one process.

ember's real slack-bolt app runs in Socket Mode against the loopback fake Slack, and the fake
Anthropic API streams every answer at 40 tokens a second after a fixed first-token delay. 200
people each mention ember in their own channel at the same moment (the same run as the Discord
benchmark). It runs twice: with Slack's native streaming (chat.startStream/appendStream/
stopStream), and with streaming refused so replies are posted and kept current with chat.update.
Measured:

- first visible text: from the app_mention envelope being sent to the first chat.startStream /
  chat.postMessage arriving at Slack, minus the model's own first-token time (the fake's
  scripted delay). What is left is ember's work before and after the model: bolt, user look-up,
  storage, routing, the SDK and the first write;
- Web API calls per reply (and which methods), and the fastest any one message was rewritten;
- event-loop lag: how late a 10 ms timer fires (the fakes share the loop: an upper bound);
- peak memory: the process's maximum resident set (ember, slack-bolt and both fakes).

Run: `.venv/bin/python -m bench slack`.
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
from collections import Counter, defaultdict
from pathlib import Path

from bench.measure import (
    CONVERSATIONS,
    DEADLINE,
    FIRST_TOKEN,
    LAG_TICK,
    TOKENS,
    TOKENS_PER_SECOND,
    percentile,
    watch_lag,
)
from bots.slack.sink import STREAM_INTERVAL, UPDATE_INTERVAL
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackUser
from tests.slack_support import ember_settings, finished, running_ember

FIRST_WRITES = ("chat.startStream", "chat.postMessage")
WRITES = ("chat.startStream", "chat.appendStream", "chat.stopStream", "chat.postMessage", "chat.update")
NOT_WEB_API = ("socket", "response_url", "url_private", "upload")


def world() -> FakeSlack:
    people = [SlackUser(f"U{i:04d}", f"person{i}", real_name=f"Person {i}") for i in range(CONVERSATIONS)]
    channels = [SlackChannel(f"C{i:04d}", f"room-{i}") for i in range(CONVERSATIONS)]
    return FakeSlack(users=people, channels=channels)


async def run(*, native: bool) -> None:
    chunks = ["word "] * TOKENS
    delay = 1 / TOKENS_PER_SECOND
    with tempfile.TemporaryDirectory() as tmp:
        async with world() as fake, FakeAnthropic() as anthropic:
            if not native:
                fake.disable_streaming("unknown_method")
            for _ in range(CONVERSATIONS):
                anthropic.script.append(Reply.text(chunks, first_token_delay=FIRST_TOKEN, token_delay=delay))
            settings = ember_settings(Path(tmp), anthropic, fake)
            async with running_ember(fake, anthropic, settings):
                await measure(fake, anthropic, native=native)


async def measure(fake: FakeSlack, anthropic: FakeAnthropic, *, native: bool) -> None:
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_lag(lags, stop))
    calls_before = len(fake.calls)
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(CONVERSATIONS):
        channel, person = f"C{i:04d}", f"U{i:04d}"
        body = fake.event_callback(fake.app_mention(channel, person, f"question from {person}"))
        sent[channel] = loop.time()
        await fake.push("events_api", body)
    with contextlib.suppress(TimeoutError):  # reported below: how many finished
        await fake.wait_for(finished, count=CONVERSATIONS, timeout=DEADLINE)
    wall = time.perf_counter() - started
    stop.set()
    await watcher

    calls = fake.calls[calls_before:]
    asked: dict[str, float] = {}
    for request in anthropic.requests:
        person = str(request.body["messages"]).split("question from ")[-1][:5]
        asked[f"C{person[1:]}"] = request.at
    first_write: dict[str, float] = {}
    writes: dict[str, list[float]] = defaultdict(list)  # message ts → its writes
    for call in calls:
        channel = str(call.args.get("channel") or "")
        if call.method in FIRST_WRITES:
            first_write.setdefault(channel, call.at)
        if call.method in WRITES and call.args.get("ts") and not finished(call):
            writes[str(call.args["ts"])].append(call.at)
    visible = [first_write[c] - sent[c] for c in sent if c in first_write]
    overhead = [v - FIRST_TOKEN for v in visible]
    before_model = [asked[c] - sent[c] for c in sent if c in asked]
    after_model = [first_write[c] - (asked[c] + FIRST_TOKEN) for c in sent if c in asked and c in first_write]
    gaps = [b - a for t in writes.values() for a, b in itertools.pairwise(t)]
    web_api = [c for c in calls if c.method not in NOT_WEB_API]
    by_method = Counter(c.method for c in web_api)
    done = len([c for c in calls if finished(c)])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    ms = 1000
    path = "native streaming" if native else "fallback: chat.postMessage + chat.update"
    ending = "all finished in" if done == CONVERSATIONS else "stopped waiting after"
    interval = STREAM_INTERVAL if native else UPDATE_INTERVAL
    print(f"-- {path} --")
    print(
        f"{CONVERSATIONS} conversations, {TOKENS} tokens each at {TOKENS_PER_SECOND:.0f} tokens/s, model "
        f"first token {FIRST_TOKEN * ms:.0f} ms; finished {done}, shown {len(visible)}; {ending} {wall:.1f} s"
    )
    if not visible:
        print("nothing was shown: no figures")
        return
    print(
        f"first visible text, envelope → first write: p50 {statistics.median(visible) * ms:.0f} ms, "
        f"p99 {percentile(visible, 99) * ms:.0f} ms"
    )
    print(
        f"  minus the model's first-token time:     p50 {statistics.median(overhead) * ms:.0f} ms, "
        f"p99 {percentile(overhead, 99) * ms:.0f} ms"
    )
    if before_model:
        print(
            f"  of which before the model request:      p50 {statistics.median(before_model) * ms:.0f} ms, "
            f"p99 {percentile(before_model, 99) * ms:.0f} ms"
        )
    if after_model:
        print(
            f"  after the model's first token:          p50 {statistics.median(after_model) * ms:.0f} ms, "
            f"p99 {percentile(after_model, 99) * ms:.0f} ms"
        )
    per_reply = len(web_api) / max(done, 1)
    listed = ", ".join(f"{m} {n / max(done, 1):.2f}" for m, n in by_method.most_common())
    print(f"Web API calls per reply: {per_reply:.2f} ({listed})")
    print(
        f"shortest gap between two writes of one message: {min(gaps, default=float('inf')) * ms:.0f} ms "
        f"(throttle {interval * ms:.0f} ms; the closing write with buttons left out: it is not throttled)"
    )
    print(
        f"event-loop lag ({LAG_TICK * ms:.0f} ms timer, {len(lags)} samples): "
        f"p50 {statistics.median(lags) * ms:.1f} ms, p99 {percentile(lags, 99) * ms:.1f} ms, "
        f"max {max(lags) * ms:.1f} ms"
    )
    print(f"peak memory so far (max RSS, whole process incl. fakes): {rss / 1024:.0f} MiB")


async def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # tracebacks would drown the figures
    await run(native=True)
    await run(native=False)
