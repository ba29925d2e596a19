"""Bursts on Slack under its documented tiers: do 200 threads at once in one workspace all end
complete, with nothing rate limited?

The fake Slack holds each method to its tier floor per workspace (chat.startStream and
chat.stopStream 20 a minute, chat.update 50, chat.appendStream 100) and chat.postMessage to one a
second per channel, answering `ratelimited` as Slack does. The model takes 0.4 s to its first
token, then sends 120 tokens at 40/s. `EMBER_BENCH_THREADS` people (default 200) each mention
ember in their own channel at the same moment. Printed:

- first visible text: from the model's first token leaving the fake to the reply's first write
  (chat.startStream or chat.postMessage) arriving;
- final text: from the model's last token to the call that gives the reply its final buttons;
- how many replies streamed natively and how many were posted and updated;
- `ratelimited` answers, and how many replies ended complete.

Run: `make bench BENCH=slack_burst` (or `.venv/bin/python -m bench slack_burst`).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
from pathlib import Path

from bench.measure import FIRST_TOKEN, TOKENS, TOKENS_PER_SECOND, percentile, quiet_run
from tests.fakes.anthropic_server import FakeAnthropic, Recorded, Reply
from tests.fakes.slack_server import Call, FakeSlack, SlackChannel, SlackLimits, SlackUser
from tests.slack_support import ember_settings, finished, running_ember

FIRST_WRITES = ("chat.startStream", "chat.postMessage")
# Every final update waits its turn at 50 a minute: 200 replies need about four minutes.
DEADLINE = 600.0


def threads() -> int:
    return max(1, int(os.environ.get("EMBER_BENCH_THREADS", "200")))


def world(count: int) -> FakeSlack:
    people = [SlackUser(f"U{i:04d}", f"person{i}", real_name=f"Person {i}") for i in range(count)]
    channels = [SlackChannel(f"C{i:04d}", f"room-{i}") for i in range(count)]
    return FakeSlack(users=people, channels=channels, limits=SlackLimits())


def channel_asked(request: Recorded) -> str:
    person = str(request.body["messages"]).split("question from ")[-1][:5]
    return f"C{person[1:]}"


async def main() -> None:
    quiet_run()
    count = threads()
    chunks = ["word "] * TOKENS
    with tempfile.TemporaryDirectory() as tmp:
        async with world(count) as fake, FakeAnthropic() as anthropic:
            for _ in range(count):
                anthropic.script.append(
                    Reply.text(chunks, first_token_delay=FIRST_TOKEN, token_delay=1 / TOKENS_PER_SECOND)
                )
            settings = ember_settings(Path(tmp), anthropic, fake)
            async with running_ember(fake, anthropic, settings):
                for i in range(count):
                    body = fake.event_callback(
                        fake.app_mention(f"C{i:04d}", f"U{i:04d}", f"question from U{i:04d}")
                    )
                    await fake.push("events_api", body)
                with contextlib.suppress(TimeoutError):
                    await fake.wait_for(finished, count=count, timeout=DEADLINE)
            report(count, fake.calls, anthropic.requests, len(fake.rate_limited))


def report(count: int, calls: list[Call], requests: list[Recorded], limited: int) -> None:
    models = {channel_asked(r): r for r in requests}
    first: dict[str, Call] = {}
    done: dict[str, Call] = {}
    for call in calls:
        channel = str(call.args.get("channel") or "")
        if call.method in FIRST_WRITES and call.at > 0:
            first.setdefault(channel, call)
        if finished(call):
            done[channel] = call
    after_token = [
        first[c].at - m.first_token_at
        for c, m in models.items()
        if c in first and m.first_token_at is not None
    ]
    final = [
        done[c].at - m.last_token_at for c, m in models.items() if c in done and m.last_token_at is not None
    ]
    native = sum(1 for call in first.values() if call.method == "chat.startStream")
    print(
        f"{count} threads in one workspace, tiers enforced; model first token {FIRST_TOKEN * 1000:.0f} ms, "
        f"{TOKENS} tokens at {TOKENS_PER_SECOND:.0f}/s"
    )
    print(
        "| shown | complete | native / posted | first text p50 / p99 | final text p50 / p99 | ratelimited |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {len(first)}/{count} | {len(done)}/{count} | {native} / {len(first) - native} | "
        f"{_ms(after_token)} | {_s(final)} | {limited} |"
    )


def _ms(delays: list[float]) -> str:
    if not delays:
        return "-"
    return f"{statistics.median(delays) * 1000:,.0f} / {percentile(delays, 99) * 1000:,.0f} ms"


def _s(delays: list[float]) -> str:
    if not delays:
        return "-"
    return f"{statistics.median(delays):,.1f} / {percentile(delays, 99):,.1f} s"
