"""Essay announcements in Slack end to end: the loopback feed host, the real slack-bolt app and
slack_sdk client against the fake Slack, ember's runtime on SQLite, and the fake Anthropic API
for the discussion thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bots.slack.announcer import EVENT_TYPE, READ_ACTION, SlackAnnouncer
from bots.slack.traits import ANNOUNCE_CONCURRENCY
from core.config import Settings
from core.essays import EssayService
from core.essays.outbox import LEASE
from core.events import User, utcnow
from core.runtime import Runtime
from tests.essay_support import Crash, hang_after, now_post, rows, seed_and_publish
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.feed_server import FeedServer
from tests.fakes.slack_server import Call, FakeSlack, Json, SlackChannel, SlackUser
from tests.slack_support import ember_settings, running_ember

CHANNELS = 20
TEAM = "T1"
MOD = User("U2", "bob", "slack", TEAM, is_moderator=True)


def essay_slack(**options: Any) -> FakeSlack:
    channels = [SlackChannel(f"C{n}", f"essays-{n}") for n in range(CHANNELS)]
    channels += [
        SlackChannel("CMOD", "mods"),
        SlackChannel("CGONE", "archived", is_archived=True),
        SlackChannel("COUT", "without-ember", members=["U1"]),
    ]
    users = [SlackUser("U1", "alice"), SlackUser("U2", "bob", is_admin=True)]
    return FakeSlack(TEAM, users=users, channels=channels, **options)


def crash_after(fake: FakeSlack, after: int) -> Crash:
    """Must run before the fake starts (its routes take the handler then)."""
    crash = Crash(after)

    def is_announcement(_request: web.Request, response: web.StreamResponse) -> bool:
        body = response.body if isinstance(response, web.Response) else b""
        return isinstance(body, bytes) and EVENT_TYPE.encode() in body

    fake._api = hang_after(crash, fake._api, is_announcement)  # type: ignore[method-assign]
    return crash


@asynccontextmanager
async def slack_world(crash: int | None = None) -> AsyncIterator[tuple[FakeSlack, Crash | None]]:
    fake = essay_slack()
    crashing = crash_after(fake, crash) if crash is not None else None
    async with fake:
        try:
            yield fake, crashing
        finally:
            if crashing is not None:
                crashing.release.set()


def settings_for(tmp_path: Path, fake: FakeSlack, anthropic: FakeAnthropic, feeds: FeedServer) -> Settings:
    return ember_settings(
        tmp_path, anthropic, fake, slack={"mod_channel": "CMOD"}, essays={"feeds": [feeds.url()]}
    )


async def subscribe(runtime: Runtime, channels: list[str], role: str = "") -> None:
    for channel in channels:
        await runtime.essays.subscribe("slack", TEAM, channel, role, MOD)


def announcements(fake: FakeSlack, channel: str) -> list[Json]:
    """ember's essay posts in a channel, as the fake holds them."""
    return [
        m
        for m in fake.messages(channel)
        if m.get("user") == fake.bot_user_id and (m.get("metadata") or {}).get("event_type") == EVENT_TYPE
    ]


def posts(fake: FakeSlack) -> list[Call]:
    return [c for c in fake.calls if c.method == "chat.postMessage" and c.args.get("metadata")]


def mrkdwn_texts(call: Call) -> list[str]:
    """Every text Slack parses in a post: the fallback text and the mrkdwn of its blocks."""
    texts = [str(call.args.get("text") or "")]
    for block in call.args.get("blocks") or []:
        if block.get("type") == "section":
            texts.append(block["text"]["text"])
        for element in block.get("elements") or []:
            if element.get("type") == "mrkdwn":
                texts.append(element["text"])
    return texts


def falsy(value: Any) -> bool:
    return value in (False, "false", "0", 0)


# ---------------------------------------------------------------- announcing


async def test_a_new_essay_is_announced_once_per_channel_and_not_again_after_a_restart(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with slack_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        essay = now_post("on-being-retired", "On being retired")
        async with running_ember(fake, fake_anthropic, settings) as ember:
            assert ember.runtime.essays.outbox.platforms == ("slack",)  # registered with the app
            await subscribe(ember.runtime, ["C0", "C1"])
            await subscribe(ember.runtime, ["C2"], role="S0READERS")
            await seed_and_publish(ember.runtime, feed_server, essay)
            report = await ember.runtime.essays.deliver_pending()
            assert report.sent == 3 and report.failed == 0
            threads = await rows(
                ember.runtime.store, "SELECT channel_id, thread_id FROM essay_threads ORDER BY 1"
            )

        by_channel = {c.args["channel"]: c for c in posts(fake)}
        assert sorted(by_channel) == ["C0", "C1", "C2"]
        for channel, call in by_channel.items():
            [message] = announcements(fake, channel)
            blocks = call.args["blocks"]
            assert [b["type"] for b in blocks] == ["header", "section", "context", "actions"]
            assert blocks[0]["text"] == {"type": "plain_text", "text": "On being retired", "emoji": True}
            assert blocks[1]["text"]["text"].endswith("A short subtitle.")
            assert "Claude Opus 3" in blocks[2]["elements"][0]["text"]
            [button] = blocks[3]["elements"]
            assert button["text"]["text"] == "Read the essay" and button["url"] == essay.link
            assert button["action_id"] == READ_ACTION
            assert call.args["text"].endswith(f"New essay: On being retired by Claude Opus 3 {essay.link}")
            assert falsy(call.args["unfurl_links"]) and falsy(call.args["unfurl_media"])
            assert "link_names" not in call.args and "parse" not in call.args
            payload = call.args["metadata"]["event_payload"]
            assert call.args["metadata"]["event_type"] == EVENT_TYPE
            assert payload["delivery"].startswith("ember-essay-")
            assert (channel, message["ts"]) in threads  # the discussion is the announcement's thread
        # Only the subscription with a user group pings it.
        assert by_channel["C2"].args["blocks"][1]["text"]["text"].startswith("<!subteam^S0READERS> ")
        assert by_channel["C2"].args["text"].startswith("<!subteam^S0READERS> ")
        assert all("<!" not in t for c in ("C0", "C1") for t in mrkdwn_texts(by_channel[c]))

        # A restart on the same database: the essay is known, nothing is posted again.
        before = len(posts(fake))
        async with running_ember(fake, fake_anthropic, settings) as ember:
            [again] = await ember.runtime.essays.poll_once()
            assert again.ok and not again.announced
            assert (await ember.runtime.essays.deliver_pending()).sent == 0
        assert len(posts(fake)) == before
        assert all(len(announcements(fake, c)) == 1 for c in ("C0", "C1", "C2"))


async def test_killed_mid_fan_out_then_restarted_leaves_one_announcement_per_channel(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with slack_world(crash=6) as (fake, crash):
        assert crash is not None
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        channels = [f"C{n}" for n in range(CHANNELS)]
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, channels)
            await seed_and_publish(ember.runtime, feed_server, now_post("fan-out", "Fan-out"))
            delivering = asyncio.create_task(ember.runtime.essays.deliver_pending())
            await asyncio.wait_for(crash.crashed.wait(), 10)
            delivering.cancel()  # kill -9: nothing after this point runs
            with pytest.raises(asyncio.CancelledError):
                await delivering
            sending = await rows(
                ember.runtime.store, "SELECT count(*) FROM essay_deliveries WHERE state = 'sending'"
            )
            assert sending[0][0] >= 1  # posted (or about to be), never marked
        crash.armed = False
        crash.release.set()
        first_round = sum(len(announcements(fake, c)) for c in channels)
        assert crash.after < first_round <= CHANNELS

        async with running_ember(fake, fake_anthropic, settings) as ember:
            # The dead process's leases have run out by the time this one looks.
            later = EssayService(settings, ember.runtime.store, clock=lambda: utcnow() + LEASE * 2)
            scheduler = ember.runtime.budgets.for_platform("slack")  # the running adapter's
            announcer = SlackAnnouncer(fake.client(), settings.slack, scheduler)
            later.register_announcer(
                "slack", announcer, scheduler=scheduler, concurrency=ANNOUNCE_CONCURRENCY
            )
            try:
                report = await later.deliver_pending()
            finally:
                await later.close()
            assert report.failed == 0 and report.retrying == 0
            sent = dict(
                await rows(
                    ember.runtime.store, "SELECT channel_id, platform_message_id FROM essay_deliveries"
                )
            )
            assert await rows(ember.runtime.store, "SELECT DISTINCT state FROM essay_deliveries") == [
                ("sent",)
            ]

    for channel in channels:
        [message] = announcements(fake, channel)
        assert sent[channel] == message["ts"]  # ember recorded the post that stands
    # The uncertain retries looked first, with the metadata included, and found their posts.
    looked = [c for c in fake.calls if c.method == "conversations.history"]
    assert looked and all(c.args.get("include_all_metadata") in (True, "true", "1", 1) for c in looked)
    assert len(posts(fake)) == CHANNELS


async def test_a_changed_guid_on_the_same_post_path_is_not_announced_again(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with slack_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        essay = now_post("same-path", "Same path")
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, ["C0"])
            await seed_and_publish(ember.runtime, feed_server, essay)
            await ember.runtime.essays.deliver_pending()
            essay.guid = "https://opus3.substack.com/p/same-path?ref=renamed"
            [report] = await ember.runtime.essays.poll_once()
            assert report.ok and not report.announced
            assert (await ember.runtime.essays.deliver_pending()).sent == 0
        assert len(announcements(fake, "C0")) == 1


async def test_html_and_mentions_in_an_essay_are_shown_not_obeyed(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with slack_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        title = "<!channel> meet <@U1> & <!subteam^S9> <https://evil.example|here>"
        subtitle = "<p>Why <b>bold</b> &amp; <script>alert(1)</script>&lt;!here&gt; " + "words " * 80 + "</p>"
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, ["C0"])
            await seed_and_publish(ember.runtime, feed_server, now_post("loud", title, subtitle=subtitle))
            assert (await ember.runtime.essays.deliver_pending()).sent == 1
        [call] = posts(fake)
        for shown in mrkdwn_texts(call):
            assert "<!" not in shown and "<@" not in shown and "<http" not in shown, shown
        assert "&lt;!channel&gt; meet &lt;@U1&gt; &amp; &lt;!subteam^S9&gt;" in call.args["text"]
        summary = call.args["blocks"][1]["text"]["text"]
        assert summary.startswith("Why bold &amp; &lt;!here&gt;")
        assert "<b>" not in summary and "script" not in summary
        assert len(summary.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")) <= 300


async def test_a_channel_ember_cannot_post_in_pauses_its_subscription_and_tells_the_moderators(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with slack_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, ["C0", "CGONE", "COUT"])
            await seed_and_publish(ember.runtime, feed_server, now_post("x", "Essay X"))
            fake.fail_next("chat.postMessage", error="invalid_blocks")  # C0's first try: a 400
            report = await ember.runtime.essays.deliver_pending()
            assert (report.sent, report.disabled, report.failed) == (0, 2, 1)
            views = {v.channel_id: v for v in await ember.runtime.essays.subscriptions("slack", TEAM)}
            assert views["C0"].enabled
            assert not views["CGONE"].enabled and "is_archived" in views["CGONE"].disabled_reason
            assert not views["COUT"].enabled and "not_in_channel" in views["COUT"].disabled_reason
            failed = await rows(
                ember.runtime.store,
                "SELECT channel_id, last_error FROM essay_deliveries WHERE state = 'failed'",
            )
            assert failed == [("C0", "rejected by slack: invalid_blocks")]
        told = [m["text"] for m in fake.messages("CMOD") if m.get("user") == fake.bot_user_id]
        assert len(told) == 2 and any("<#CGONE>" in t for t in told) and any("<#COUT>" in t for t in told)
        assert all("paused" in t for t in told)


async def test_the_discussion_thread_carries_the_essay_to_the_model(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    fake_anthropic.script.append(Reply.text(["It was ", "about endings."]))
    async with slack_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        body = "<p>Endings are <em>beginnings</em> seen from the other side.</p><p>Second thought.</p>"
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, ["C0"])
            await seed_and_publish(
                ember.runtime, feed_server, now_post("endings", "On endings", body_html=body)
            )
            await ember.runtime.essays.deliver_pending()
            [announcement] = announcements(fake, "C0")
            question = fake.message("C0", "U1", "What was the essay about?", thread_ts=announcement["ts"])
            await ember.deliver(question)  # no mention: a reply in ember's thread
            [request] = await fake_anthropic.wait_for_requests(1)
            await ember.idle()
        system = request.body.get("system")
        seen = system if isinstance(system, str) else "\n".join(b["text"] for b in system or [])
        assert 'discussion of the essay "On endings"' in seen
        assert "Endings are beginnings seen from the other side." in seen and "Second thought." in seen
        assert "What was the essay about?" in str(request.body["messages"])
