"""Slack's request budget end to end: the real slack-bolt app against a fake Slack that holds
each method to its tier floor per workspace. More threads at once than Tier 2 allows streams:
the first ones stream natively, the rest are posted and updated, nothing is rate limited, and
every reply ends complete with its buttons."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from aiohttp import web

from bots.slack.announcer import EVENT_TYPE
from bots.slack.traits import ANNOUNCE_CONCURRENCY, BUDGET
from core.budget import BudgetPacer, RequestScheduler
from core.events import User
from tests.essay_support import Crash, hang_after, now_post, seed_and_publish
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.feed_server import FeedServer
from tests.fakes.slack_server import Call, FakeSlack, SlackChannel, SlackLimits, SlackUser
from tests.slack_support import SAFETY, ember_settings, finished, running_ember, shown_text
from tests.test_budget import Recorder, VirtualTime

THREADS = 24  # more than chat.startStream's 20 a minute
WORDS = [f"w{i} " for i in range(12)]
ESSAY_CHANNELS = 40  # two seconds of Slack's essay budget (20 a second, an assumption)
ANSWERED = 4  # essay posts answered before the fake stops answering them


async def test_more_threads_than_streams_allowed_are_posted_instead_and_none_is_rate_limited(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    people = [SlackUser(f"U{i:03d}", f"person{i}") for i in range(THREADS)]
    channels = [SlackChannel(f"C{i:03d}", f"room-{i}") for i in range(THREADS)]
    async with FakeSlack(users=people, channels=channels, limits=SlackLimits()) as fake:
        fake_anthropic.script.extend(Reply.text(WORDS, token_delay=0.02) for _ in range(THREADS))
        settings = ember_settings(tmp_path, fake_anthropic, fake)
        async with running_ember(fake, fake_anthropic, settings) as ember:
            mentions = [fake.app_mention(f"C{i:03d}", f"U{i:03d}", "go") for i in range(THREADS)]
            for mention in mentions:
                await ember.deliver(mention)
            await ember.wait(finished, count=THREADS, timeout=60)
            await ember.idle()

    assert fake.rate_limited == []
    streams, posts = fake.calls_to("chat.startStream"), fake.calls_to("chat.postMessage")
    # Each stream started has its stop kept in the budget: never more streams than stops allowed.
    assert 0 < len(streams) <= SlackLimits().per_minute["chat.stopStream"]
    assert len(streams) + len(posts) == THREADS
    for i, mention in enumerate(mentions):
        assert shown_text(fake, f"C{i:03d}", mention["ts"]) == "".join(WORDS)


async def test_a_reply_is_not_held_behind_an_essay_fan_out(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    """An essay fans out to more channels than Slack's essay budget lets go at once, and its
    posts stop being answered after the first few: the fan-out stands still, a full window of
    its posts answered or in flight. A question asked meanwhile is answered whole, first text to
    buttons, before the fan-out goes on: nothing of the reply waits behind the essay."""
    readers = [SlackChannel(f"C{n:03d}", f"essays-{n}") for n in range(ESSAY_CHANNELS)]
    people = [SlackUser("U1", "alice"), SlackUser("U2", "bob", is_admin=True)]
    fake = FakeSlack("T1", users=people, channels=[SlackChannel("CCHAT", "chat"), *readers])
    crash = Crash(after=ANSWERED)

    def is_essay_post(request: web.Request, response: web.StreamResponse) -> bool:
        body = response.body if isinstance(response, web.Response) else b""
        return isinstance(body, bytes) and EVENT_TYPE.encode() in body

    fake._api = hang_after(crash, fake._api, is_essay_post)  # type: ignore[method-assign]
    async with fake:
        fake_anthropic.script.append(Reply.text(WORDS))
        settings = ember_settings(tmp_path, fake_anthropic, fake, essays={"feeds": [feed_server.url()]})
        async with running_ember(fake, fake_anthropic, settings) as ember:
            moderator = User("U2", "bob", "slack", "T1", is_moderator=True)
            for channel in readers:
                await ember.runtime.essays.subscribe("slack", "T1", channel.id, "", moderator)
            await seed_and_publish(ember.runtime, feed_server, now_post("fan-out", "Fan-out"))
            fanning_out = asyncio.create_task(ember.runtime.essays.deliver_pending())
            async with asyncio.timeout(SAFETY):
                await crash.crashed.wait()  # the fan-out stands still from here

            mention = fake.app_mention("CCHAT", "U1", "go")
            await ember.deliver(mention)
            await ember.wait(finished)
            # The whole reply went while the fan-out stood still: no essay post was answered
            # beyond the first few, and most were never sent (each sender waits on its answer).
            assert crash.stored <= ANSWERED + ANNOUNCE_CONCURRENCY < ESSAY_CHANNELS
            assert not fanning_out.done()
            reply_done = len(fake.calls)

            crash.armed = False
            crash.release.set()
            report = await asyncio.wait_for(fanning_out, SAFETY)

    assert fake.rate_limited == []
    assert shown_text(fake, "CCHAT", mention["ts"]) == "".join(WORDS)
    assert report.failed == 0
    assert sorted(c.args["channel"] for c in essay_posts(fake.calls)) == [c.id for c in readers]
    # Most of the fan-out came after the whole reply.
    assert len(essay_posts(fake.calls[reply_done:])) >= ESSAY_CHANNELS - ANSWERED - ANNOUNCE_CONCURRENCY


def essay_posts(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.method == "chat.postMessage" and c.args.get("metadata")]


async def test_essay_fan_out_on_the_shipped_budget_posts_once_a_second_per_channel() -> None:
    """chat.postMessage allows about one message a second in a channel: the shipped budget
    spaces deliveries to one channel by a second, and holds the fan-out to 20 a second."""
    time = VirtualTime()
    budget = RequestScheduler(BUDGET, clock=time.clock, sleep=time.sleep)
    pacer = BudgetPacer(budget, concurrency=ANNOUNCE_CONCURRENCY)
    calls = Recorder(time)
    channels = [f"C{n}" for n in range(45)] + ["busy"] * 3
    await asyncio.gather(*(pacer.send(channel, calls.call(channel)) for channel in channels))
    busy = [at for name, at in calls.sent if name == "busy"]
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(busy))
    moments = sorted(at for _, at in calls.sent)
    assert len(moments) == len(channels)
    assert all(later - earlier >= 1.0 for earlier, later in zip(moments, moments[20:], strict=False))
    await budget.aclose()
