"""Essay announcements on Discord end to end: the loopback feed host, the real discord.py client
against the fake Discord, ember's runtime on SQLite, and the fake Anthropic API for the
discussion thread."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from aiohttp import web
from sqlalchemy import text

from bots.discord.announcer import THREAD_NAME, DiscordAnnouncer
from bots.discord.app import make_client
from bots.discord.traits import ANNOUNCE_CONCURRENCY
from core.chat import OpenGate
from core.config import Settings
from core.essays import EssayService
from core.essays.outbox import LEASE
from core.events import User, utcnow
from core.runtime import Runtime, open_runtime
from tests.discord_support import EDIT, POST, Ember, ember_settings, model_text
from tests.essay_support import Crash, hang_after, now_post, rows, seed_and_publish
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import (
    BODY,
    GUILD_ANNOUNCEMENT,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Json,
    Recorded,
    run_client,
)
from tests.fakes.feed_server import FeedServer

CHANNELS = 20
CROSSPOST = "POST /channels/{channel_id}/messages/{message_id}/crosspost"
THREAD = "POST /channels/{channel_id}/messages/{message_id}/threads"
HISTORY = "GET /channels/{channel_id}/messages"


def essay_guild() -> FakeGuild:
    """A server with twenty text channels, an announcement channel, a moderators' channel and a
    "readers" role; alice moderates, bob reads."""
    moderator = FakeRole("moderator", permissions=1 << 5, position=2)
    channels = [FakeChannel(f"essays-{n}") for n in range(CHANNELS)]
    channels += [FakeChannel("news", type=GUILD_ANNOUNCEMENT), FakeChannel("mods")]
    alice, bob = FakeUser("alice", global_name="Alice"), FakeUser("bob", global_name="Bob")
    return FakeGuild(
        "Essay Readers",
        channels=channels,
        roles=[moderator, FakeRole("readers")],
        members=[FakeMember(alice, roles=[moderator]), FakeMember(bob)],
        owner=alice,
    )


def crash_after(fake: FakeDiscord, after: int) -> Crash:
    """Must run before the fake starts (its routes take the handler then)."""
    crash = Crash(after)

    def is_announcement(request: web.Request, _response: web.StreamResponse) -> bool:
        body = request[BODY]
        return isinstance(body, dict) and bool(body.get("embeds"))

    fake._create_message = hang_after(crash, fake._create_message, is_announcement)  # type: ignore[method-assign]
    return crash


@asynccontextmanager
async def discord_world(crash: int | None = None) -> AsyncIterator[tuple[FakeDiscord, Crash | None]]:
    fake = FakeDiscord([essay_guild()])
    crashing = crash_after(fake, crash) if crash is not None else None
    async with fake:
        with fake.pointed():
            try:
                yield fake, crashing
            finally:
                if crashing is not None:
                    crashing.release.set()


@asynccontextmanager
async def running_ember(
    fake: FakeDiscord, anthropic: FakeAnthropic, settings: Settings, roles: tuple[str, ...] = ()
) -> AsyncIterator[Ember]:
    """ember's runtime and Discord client, connected and ready (its essay announcer registers
    itself then); afterwards, checks that nothing but `roles` could have been pinged."""
    with patch.dict(os.environ, {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with open_runtime(settings, access=OpenGate()) as runtime:
            client = make_client(runtime, guild_ready_timeout=0.05)
            async with run_client(client, fake):
                yield Ember(client, runtime, fake, anthropic)
    assert_pings_only(fake.requests, roles)


def assert_pings_only(requests: list[Recorded], roles: tuple[str, ...]) -> None:
    """Every message ember wrote names what it may ping: nothing, or only a subscribed role."""
    for r in requests:
        if r.route in (POST, EDIT):
            allowed = (r.body or {}).get("allowed_mentions")
            assert allowed is not None and allowed.get("parse") == [], r
            assert not allowed.get("users") and not allowed.get("replied_user"), r
            assert {str(role) for role in allowed.get("roles") or []} <= set(roles), r


def settings_for(tmp_path: Path, fake: FakeDiscord, anthropic: FakeAnthropic, feeds: FeedServer) -> Settings:
    return ember_settings(
        tmp_path,
        anthropic,
        discord={"mod_channel": str(fake.channel("mods").id)},
        essays={"feeds": [feeds.url()]},
    )


def moderator(fake: FakeDiscord) -> User:
    alice = fake.user("alice")
    return User(str(alice.id), "Alice", "discord", str(fake.guild.id), is_moderator=True)


async def subscribe(runtime: Runtime, fake: FakeDiscord, names: list[str], role: str = "") -> None:
    by = moderator(fake)
    for name in names:
        await runtime.essays.subscribe("discord", by.workspace_id, str(fake.channel(name).id), role, by)


def announcements(fake: FakeDiscord, channel: FakeChannel) -> list[Json]:
    """ember's essay posts in a channel, as the fake holds them."""
    bot = str(fake.bot.id)
    return [m for m in fake.history(channel) if m["author"]["id"] == bot and m["embeds"]]


# ---------------------------------------------------------------- announcing


async def test_a_new_essay_is_announced_once_per_channel_and_not_again_after_a_restart(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with discord_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        readers = fake.role("readers")
        essay = now_post("on-being-retired", "On being retired")
        async with running_ember(fake, fake_anthropic, settings, (str(readers.id),)) as ember:
            assert ember.runtime.essays.outbox.platforms == ("discord",)  # registered when ready
            await subscribe(ember.runtime, fake, ["essays-0", "essays-1"])
            await subscribe(ember.runtime, fake, ["news"], role=str(readers.id))
            await seed_and_publish(ember.runtime, feed_server, essay)
            report = await ember.runtime.essays.deliver_pending()
            assert report.sent == 3 and report.failed == 0

        for name in ("essays-0", "essays-1", "news"):
            [message] = announcements(fake, fake.channel(name))
            [embed] = message["embeds"]
            assert embed["title"] == "On being retired" and embed["url"] == essay.link
            assert embed["description"] == "A short subtitle."
            assert embed["author"]["name"] == "Claude Opus 3"
            assert embed["image"]["url"] == essay.image
            assert datetime.fromisoformat(embed["timestamp"]) == essay.published.replace(microsecond=0)
            thread = fake.channels[int(message["id"])]  # a message's thread has its id
            assert thread.name == THREAD_NAME and thread.owner is fake.bot

        # Only the subscription with a role pings, and only that role.
        posts = {r.path: r.body for r in fake.requests if r.route == POST and r.body.get("embeds")}
        news = posts[f"/channels/{fake.channel('news').id}/messages"]
        assert news["content"] == readers.mention
        assert news["allowed_mentions"] == {"parse": [], "roles": [readers.id]}
        [stored] = announcements(fake, fake.channel("news"))
        assert stored["mention_roles"] == [str(readers.id)] and not stored["mention_everyone"]
        plain = posts[f"/channels/{fake.channel('essays-0').id}/messages"]
        assert "content" not in plain or not plain["content"]
        assert plain["allowed_mentions"]["parse"] == [] and not plain["allowed_mentions"].get("roles")
        assert all(
            body["enforce_nonce"] and body["nonce"].startswith("ember-essay-") for body in posts.values()
        )
        # Published in the announcement channel only.
        crossposts = [r for r in fake.requests if r.route == CROSSPOST]
        assert [r.path.split("/")[2] for r in crossposts] == [str(fake.channel("news").id)]

        # A restart on the same database: the essay is known, nothing is posted again.
        before = len(fake.requests)
        async with running_ember(fake, fake_anthropic, settings, (str(readers.id),)) as ember:
            [again] = await ember.runtime.essays.poll_once()
            assert again.ok and not again.announced
            assert (await ember.runtime.essays.deliver_pending()).sent == 0
        assert not [r for r in fake.requests[before:] if r.route == POST]
        assert all(len(announcements(fake, fake.channel(n))) == 1 for n in ("essays-0", "essays-1", "news"))


async def test_killed_mid_fan_out_then_restarted_leaves_one_announcement_per_channel(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with discord_world(crash=6) as (fake, crash):
        assert crash is not None
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        names = [f"essays-{n}" for n in range(CHANNELS)]
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, fake, names)
            await seed_and_publish(ember.runtime, feed_server, now_post("fan-out", "Fan-out"))
            delivering = asyncio.create_task(ember.runtime.essays.deliver_pending())
            await asyncio.wait_for(crash.crashed.wait(), 10)
            delivering.cancel()  # kill -9: nothing after this point runs
            with pytest.raises(asyncio.CancelledError):
                await delivering
        states = dict(await _states(settings))
        assert states.get("sending", 0) >= 1, states  # posted (or about to be), never marked
        crash.armed = False
        crash.release.set()
        first_round = sum(len(announcements(fake, fake.channel(n))) for n in names)
        assert crash.after < first_round <= CHANNELS

        async with running_ember(fake, fake_anthropic, settings) as ember:
            # The dead process's leases have run out by the time this one looks.
            later = EssayService(settings, ember.runtime.store, clock=lambda: utcnow() + LEASE * 2)
            scheduler = ember.runtime.budgets.for_platform("discord")  # the running adapter's
            announcer = DiscordAnnouncer(ember.client, settings.discord, scheduler)
            later.register_announcer(
                "discord", announcer, scheduler=scheduler, concurrency=ANNOUNCE_CONCURRENCY
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

    for name in names:
        [message] = announcements(fake, fake.channel(name))
        assert sent[str(fake.channel(name).id)] == message["id"]  # ember recorded the post that stands
    # The posts ember never heard back about were found in their channels' history, not sent
    # again; each channel saw one post, each with its own nonce.
    nonces = [r.body["nonce"] for r in fake.requests if r.route == POST and r.body.get("embeds")]
    assert len(nonces) == len(set(nonces)) == CHANNELS
    assert [r for r in fake.requests if r.route == HISTORY]


async def test_an_uncertain_delivery_beyond_discords_nonce_memory_is_found_not_posted_again(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with discord_world(crash=2) as (fake, crash):
        assert crash is not None
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        names = ["essays-0", "essays-1", "essays-2", "news"]
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, fake, names)
            await seed_and_publish(ember.runtime, feed_server, now_post("outage", "After an outage"))
            delivering = asyncio.create_task(ember.runtime.essays.deliver_pending())
            await asyncio.wait_for(crash.crashed.wait(), 10)
            delivering.cancel()  # kill -9 mid fan-out
            with pytest.raises(asyncio.CancelledError):
                await delivering
        crash.armed = False
        crash.release.set()
        fake.nonce_window = 0.0  # a long outage: Discord has forgotten every nonce
        posted_before = {n: len(announcements(fake, fake.channel(n))) for n in names}
        assert crash.after < sum(posted_before.values()) <= len(names)

        async with running_ember(fake, fake_anthropic, settings) as ember:
            later = EssayService(settings, ember.runtime.store, clock=lambda: utcnow() + LEASE * 2)
            scheduler = ember.runtime.budgets.for_platform("discord")  # the running adapter's
            announcer = DiscordAnnouncer(ember.client, settings.discord, scheduler)
            later.register_announcer(
                "discord", announcer, scheduler=scheduler, concurrency=ANNOUNCE_CONCURRENCY
            )
            try:
                report = await later.deliver_pending()
            finally:
                await later.close()
            sent = dict(
                await rows(
                    ember.runtime.store, "SELECT channel_id, platform_message_id FROM essay_deliveries"
                )
            )
        assert report.failed == 0 and report.retrying == 0

    for name in names:
        [message] = announcements(fake, fake.channel(name))
        assert sent[str(fake.channel(name).id)] == message["id"]
    # The deliveries left uncertain were found by reading their channels, then got their
    # discussion threads on the post that stood; no channel got a second post.
    read = {r.path.split("/")[2] for r in fake.requests if r.route == HISTORY}
    assert read
    threaded = {r.path.split("/")[2] for r in fake.requests if r.route == THREAD}
    assert read <= threaded


async def _states(settings: Settings) -> list[tuple[Any, ...]]:
    from core.store import Store

    store = Store.open(settings.database.url)
    try:
        async with store.engine.connect() as conn:
            result = await conn.execute(text("SELECT state, count(*) FROM essay_deliveries GROUP BY state"))
            return [tuple(r) for r in result.all()]
    finally:
        await store.close()


async def test_a_changed_guid_on_the_same_post_path_is_not_announced_again(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with discord_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        essay = now_post("same-path", "Same path")
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, fake, ["essays-0"])
            await seed_and_publish(ember.runtime, feed_server, essay)
            await ember.runtime.essays.deliver_pending()
            essay.guid = "https://opus3.substack.com/p/same-path?ref=renamed"
            essay.host = "https://essays.example.org"  # and the newsletter moved domain
            [report] = await ember.runtime.essays.poll_once()
            assert report.ok and not report.announced
            assert (await ember.runtime.essays.deliver_pending()).sent == 0
        assert len(announcements(fake, fake.channel("essays-0"))) == 1


async def test_html_and_mentions_in_an_essay_are_shown_not_obeyed(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with discord_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        bob, readers = fake.user("bob"), fake.role("readers")
        title = f"@everyone meet {bob.mention} and {readers.mention} @here *now*"
        subtitle = "<p>Why <b>bold</b> &amp; <script>alert(1)</script>bright " + "words " * 80 + "</p>"
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, fake, ["essays-0"])
            await seed_and_publish(ember.runtime, feed_server, now_post("loud", title, subtitle=subtitle))
            assert (await ember.runtime.essays.deliver_pending()).sent == 1
        [request] = [r for r in fake.requests if r.route == POST and r.body.get("embeds")]
        assert request.body["allowed_mentions"]["parse"] == []
        assert not request.body["allowed_mentions"].get("roles") and not request.body["allowed_mentions"].get(
            "users"
        )
        [message] = announcements(fake, fake.channel("essays-0"))
        assert (
            message["mentions"] == [] and message["mention_roles"] == [] and not message["mention_everyone"]
        )
        [embed] = message["embeds"]
        # Defused: no mention renders, Markdown shows as typed.
        assert "@everyone" not in embed["title"] and "<@" + str(bob.id) not in embed["title"]
        assert "@\u200beveryone" in embed["title"] and "\\*now\\*" in embed["title"]
        description = embed["description"]
        assert "<b>" not in description and "<script>" not in description and "<p>" not in description
        assert description.startswith("Why bold & ")
        assert len(description.replace("\\", "")) <= 300


async def test_a_forbidden_channel_pauses_its_subscription_and_tells_the_moderators(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    async with discord_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        forbidden = fake.channel("essays-1")
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, fake, ["essays-0", "essays-1"])
            await seed_and_publish(ember.runtime, feed_server, now_post("x", "Essay X"))
            fake.fail_next("POST", f"/channels/{forbidden.id}/messages", status=403)
            report = await ember.runtime.essays.deliver_pending()
            assert (report.sent, report.disabled) == (1, 1)
            views = await ember.runtime.essays.subscriptions("discord", str(fake.guild.id))
            paused = {v.channel_id: v for v in views}[str(forbidden.id)]
            assert not paused.enabled and "403" in paused.disabled_reason
        [told] = [m for m in fake.history(fake.channel("mods")) if m["author"]["id"] == str(fake.bot.id)]
        assert forbidden.mention in told["content"] and "paused" in told["content"]
        assert not announcements(fake, forbidden)
        [request] = [r for r in fake.requests if r.path == f"/channels/{fake.channel('mods').id}/messages"]
        assert request.body["allowed_mentions"]["parse"] == []


async def test_the_discuss_thread_carries_the_essay_to_the_model(
    tmp_path: Path, fake_anthropic: FakeAnthropic, feed_server: FeedServer
) -> None:
    fake_anthropic.script.append(Reply.text(["It was ", "about endings."]))
    async with discord_world() as (fake, _):
        settings = settings_for(tmp_path, fake, fake_anthropic, feed_server)
        body = "<p>Endings are <em>beginnings</em> seen from the other side.</p><p>Second thought.</p>"
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await subscribe(ember.runtime, fake, ["essays-0"])
            await seed_and_publish(
                ember.runtime, feed_server, now_post("endings", "On endings", body_html=body)
            )
            await ember.runtime.essays.deliver_pending()
            [announcement] = announcements(fake, fake.channel("essays-0"))
            thread = fake.channels[int(announcement["id"])]
            await fake.say(fake.user("bob"), thread, "What was the essay about?")  # no mention needed
            [request] = await fake_anthropic.wait_for_requests(1)
            await ember.wait(lambda r: r.route == POST and r.path == f"/channels/{thread.id}/messages")
        seen = model_text(request)
        assert 'discussion of the essay "On endings"' in seen
        assert "Endings are beginnings seen from the other side." in seen and "Second thought." in seen
        assert "What was the essay about?" in seen
        assert [r for r in fake.requests if r.route == THREAD]
