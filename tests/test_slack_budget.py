"""Slack's request budget end to end: the real slack-bolt app against a fake Slack that holds
each method to its tier floor per workspace. More threads at once than Tier 2 allows streams:
the first ones stream natively, the rest are posted and updated, nothing is rate limited, and
every reply ends complete with its buttons."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackLimits, SlackUser
from tests.slack_support import ember_settings, finished, running_ember, shown_text

THREADS = 24  # more than chat.startStream's 20 a minute
WORDS = [f"w{i} " for i in range(12)]


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
