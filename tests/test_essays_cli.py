"""`ember essays poll --once` and `ember essays status`, run as the operator runs them."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.events import User
from core.store import Store
from tests.essay_support import FakeTime, make_service
from tests.fakes.discord_server import DiscordLimits, FakeChannel, FakeDiscord, FakeGuild
from tests.fakes.feed_server import FeedServer, Post
from tests.fakes.slack_server import FakeSlack

ROOT = Path(__file__).resolve().parent.parent


async def ember(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    # Only the tokens a test gives: a developer's own DISCORD_TOKEN must not reach the real Discord.
    tokens = ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")
    environ = {k: v for k, v in os.environ.items() if k not in tokens} | (env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bots.cli",
        *args,
        "--config",
        str(config),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def recent(n: int, days_ago: float) -> Post:
    # Real time: the subprocess judges max_age_days by its own clock.
    return Post(slug=f"essay-{n}", title=f"Essay {n}", published=datetime.now(UTC) - timedelta(days=days_ago))


async def subscribed(database: str, feed_server: FeedServer, channels: list[tuple[User, str]]) -> None:
    """A database that has seen the feed's first essay (not announced), with each channel
    subscribed by its moderator; then a second essay appears in the feed, to be announced."""
    feed_server.feed().posts.append(recent(1, 3))
    store = Store.open(database)
    await store.upgrade()
    service = make_service(store, FakeTime(), [feed_server.url()])
    await service.poll_once()
    for mod, channel_id in channels:
        await service.subscribe(mod.platform, mod.workspace_id, channel_id, "", mod)
    await service.close()
    await store.close()
    feed_server.feed().posts.append(recent(2, 0.1))


async def test_poll_once_and_status(tmp_path: Path, feed_server: FeedServer) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{database}"\n\n[essays]\nfeeds = ["{feed_server.url()}"]\n'
        '\n[logging]\nlevel = "ERROR"\n'
    )
    feed_server.feed().posts += [recent(1, 3), recent(2, 2)]
    # An earlier run (in-process, to spare a start-up) saw the feed; a moderator subscribed.
    store = Store.open(database)
    await store.upgrade()
    service = make_service(store, FakeTime(), [feed_server.url()])
    [seeded] = await service.poll_once()
    await service.subscribe("discord", "G1", "C1", "", User("M", "M", "discord", "G1", is_moderator=True))
    await service.close()
    await store.close()
    assert seeded.first_poll and not seeded.announced
    feed_server.feed().posts.append(recent(3, 0.1))

    code, out, err = await ember(config, "essays", "poll", "--once", "--wait", "0")
    assert code == 0, err
    assert 'announced "Essay 3" (1 deliveries queued)' in out
    assert "1 queued for discord (its adapter is not running here)" in out

    code, out, err = await ember(config, "essays", "status")
    assert code == 0, err
    assert f"{feed_server.url()}: ok, last success" in out
    assert "subscriptions: discord 1" in out
    assert "deliveries: 0 sent, 1 pending" in out
    assert 'latest: "Essay 3"' in out

    feed_server.feed().fault = "500"
    code, out, err = await ember(config, "essays", "poll", "--once", "--wait", "0")
    assert code == 1
    assert f"{feed_server.url()}: FAILED: HTTP 500" in err


async def test_poll_once_delivers_on_every_platform_whose_token_is_set(
    tmp_path: Path, feed_server: FeedServer, fake_slack: FakeSlack
) -> None:
    """REST only: a Discord client logged in without the gateway, a Slack Web API client."""
    async with FakeDiscord() as discord:
        channel = discord.channel("general")
        guild = str(discord.guild.id)
        database = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "{database}"\n\n[essays]\nfeeds = ["{feed_server.url()}"]\n'
            f'\n[discord]\napi_base_url = "{discord.api_base_url}"\n'
            f'\n[slack]\napi_base_url = "{fake_slack.api_url}"\n\n[logging]\nlevel = "ERROR"\n'
        )
        mod = User("M", "M", "discord", guild, is_moderator=True)
        slack_mod = User("U2", "bob", "slack", "T1", is_moderator=True)
        await subscribed(database, feed_server, [(mod, str(channel.id)), (slack_mod, "C1")])

        env = {"DISCORD_TOKEN": discord.token, "SLACK_BOT_TOKEN": fake_slack.bot_token}
        code, out, err = await ember(config, "essays", "poll", "--once", "--wait", "0", env=env)
        assert code == 0, err
        assert "deliveries: 2 sent, 0 to retry, 0 failed" in out
        [post] = [r for r in discord.requests if r.path == f"/channels/{channel.id}/messages"]
        assert post.body["embeds"][0]["title"] == "Essay 2" and post.body["enforce_nonce"]
        assert [r for r in discord.requests if r.route.endswith("/threads")]  # the discussion
        assert not [f for f in discord.gateway_frames]  # REST only
        [call] = fake_slack.calls_to("chat.postMessage")
        assert call.args["channel"] == "C1" and call.args["blocks"][0]["text"]["text"] == "Essay 2"


async def test_poll_once_spends_discords_request_budget_as_ember_run_does(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Discord's budget is `[discord] requests_per_second` in any 1.05 s (bots.discord.traits):
    every request the one-off poll makes (logging in, posts, threads) keeps to it."""
    per_second, channels = 4, 5
    rooms = [FakeChannel(f"essays-{n}") for n in range(channels)]
    world = FakeDiscord(
        [FakeGuild("Readers", channels=rooms)], limits=DiscordLimits(global_per_second=per_second)
    )
    async with world as discord:
        guild = str(discord.guild.id)
        channel_ids = [str(room.id) for room in rooms]
        database = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "{database}"\n\n[essays]\nfeeds = ["{feed_server.url()}"]\n'
            f'\n[discord]\napi_base_url = "{discord.api_base_url}"\nrequests_per_second = {per_second}\n'
            '\n[logging]\nlevel = "ERROR"\n'
        )
        mod = User("M", "M", "discord", guild, is_moderator=True)
        await subscribed(database, feed_server, [(mod, channel_id) for channel_id in channel_ids])

        env = {"DISCORD_TOKEN": discord.token}
        code, out, err = await ember(config, "essays", "poll", "--once", "--wait", "0", env=env)
        assert code == 0, err
        assert f"deliveries: {channels} sent, 0 to retry, 0 failed" in out
        arrivals = sorted(request.time for request in discord.requests)
        assert len(arrivals) > 2 * channels  # a post and a thread in each channel, and the login
        # Never more than `per_second` requests in any 1.05 s: the configured budget, as under `ember run`.
        spans = [later - earlier for earlier, later in zip(arrivals, arrivals[per_second:], strict=False)]
        assert min(spans) >= 1.0, spans
        assert discord.rate_limited == []
