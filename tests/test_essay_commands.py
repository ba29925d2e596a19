"""`/opus essays …` through the one command grammar, on both platforms' mention syntax."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from bots.discord.traits import discord_traits
from bots.slack.traits import slack_traits
from core.chat.commands import build_commands
from core.commands import CommandContext, Commands
from core.config_platforms import DiscordSettings, SlackSettings
from core.essays import EssayService
from core.events import Place, User
from core.platforms import Platforms
from core.store import Store
from tests.essay_support import FakeTime, make_service, open_store, post, rows
from tests.fakes.feed_server import FeedServer

GUILD = Place("discord", "G1", "C-here")
MOD = User("M1", "Mod", "discord", "G1", is_moderator=True)
MEMBER = User("U1", "Member", "discord", "G1")


@pytest.fixture
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EssayService]:
    async with open_store(request, tmp_path, "sqlite") as store:
        service = make_service(store, FakeTime(), [])
        yield service
        await service.close()


@pytest.fixture
def commands() -> Commands:
    return build_commands("/opus")


def ctx(service: EssayService, user: User = MOD, place: Place = GUILD) -> CommandContext:
    # Each adapter's facts, as attaching them would register them.
    platforms = Platforms([discord_traits(DiscordSettings()), slack_traits(SlackSettings())])
    return CommandContext(
        invoker=user, place=place, runtime=SimpleNamespace(essays=service, platforms=platforms)
    )


async def subscriptions(store: Store) -> list[tuple[str, str, str, bool]]:
    return [
        (p, c, r, bool(e))
        for p, c, r, e in await rows(
            store, "SELECT platform, channel_id, role_id, enabled FROM essay_subscriptions ORDER BY id"
        )
    ]


async def test_members_cannot_subscribe_or_unsubscribe(service: EssayService, commands: Commands) -> None:
    for typed in ("essays subscribe", "essays unsubscribe <#C1>"):
        result = await commands.execute(typed, ctx(service, MEMBER))
        assert "moderators only" in result.text and result.ephemeral
    assert await subscriptions(service.store) == []


async def test_subscribe_defaults_to_this_channel_and_can_name_channel_and_role(
    service: EssayService, commands: Commands
) -> None:
    here = await commands.execute("essays subscribe", ctx(service))
    assert here.text == "New essays will now be announced in <#C-here> (pinging nobody)."
    there = await commands.execute("essays subscribe <#C9> <@&R1>", ctx(service))
    assert there.text == "New essays will now be announced in <#C9>, pinging <@&R1>."
    again = await commands.execute("essays subscribe <#C9>", ctx(service))
    assert again.text.startswith("New essays are announced in <#C9>")  # updated, not duplicated
    assert await subscriptions(service.store) == [
        ("discord", "C-here", "", True),
        ("discord", "C9", "", True),
    ]


async def test_slack_mentions_parse_the_same_way(service: EssayService, commands: Commands) -> None:
    mod = User("UM", "Mod", "slack", "T1", is_moderator=True)
    result = await commands.execute(
        "essays subscribe <#C42|essays> <!subteam^S7|@readers>", ctx(service, mod, Place("slack", "T1", "C1"))
    )
    assert result.text == "New essays will now be announced in <#C42>, pinging <!subteam^S7>."
    assert await subscriptions(service.store) == [("slack", "C42", "S7", True)]


async def test_a_direct_message_must_name_the_channel(service: EssayService, commands: Commands) -> None:
    dm = Place("discord", "G1", "D1", is_direct=True)
    result = await commands.execute("essays subscribe", ctx(service, MOD, dm))
    assert "name the channel" in result.text


async def test_list_shows_active_and_paused_but_not_unsubscribed(
    service: EssayService, commands: Commands
) -> None:
    await commands.execute("essays subscribe <#C1> <@&R1>", ctx(service))
    await commands.execute("essays subscribe <#C2>", ctx(service))
    await commands.execute("essays subscribe <#C3>", ctx(service))
    done = await commands.execute("essays unsubscribe <#C3>", ctx(service))
    assert done.text == "Essays will no longer be announced in <#C3>."
    none = await commands.execute("essays unsubscribe <#C3>", ctx(service))
    assert "was not subscribed" in none.text
    async with service.store.session() as session:
        await session.exec(  # type: ignore[call-overload]
            text(
                "UPDATE essay_subscriptions SET enabled = false, disabled_reason = 'the channel is gone' WHERE channel_id = 'C2'"
            )
        )
    listed = await commands.execute("essays list", ctx(service, MEMBER))
    assert listed.text == (
        "Essays are announced in:\n• <#C1>, pinging <@&R1>\n• <#C2> — paused: the channel is gone"
    )
    elsewhere = await commands.execute("essays list", ctx(service, MEMBER, Place("discord", "G2", "C1")))
    assert elsewhere.text == "No channel here is subscribed to essays yet."


async def test_latest_shows_the_newest_essay_with_mentions_defused(
    service: EssayService, commands: Commands, feed_server: FeedServer
) -> None:
    assert (
        await commands.execute("essays latest", ctx(service, MEMBER))
    ).text == "No essay has been seen yet."
    feed_server.feed().posts += [post(1, days_ago=3), post(2, days_ago=1, title="Hi @everyone <!channel>")]
    service.settings.essays.feeds.append(feed_server.url())
    await service.poll_once()
    result = await commands.execute("essays latest", ctx(service, MEMBER))
    assert result.ephemeral
    assert result.text.splitlines()[0] == "**Hi @\u200beveryone ‹!channel›** by Claude Opus 3, 09 March 2026"
    assert result.text.splitlines()[1] == "https://opus3.substack.com/p/essay-2"
    assert result.extra["essay"].title == "Hi @everyone <!channel>"


async def test_help_lists_the_essay_commands(service: EssayService, commands: Commands) -> None:
    help_text = (await commands.execute("help", ctx(service, MEMBER))).text
    assert "`/opus essays subscribe [channel] [role]` — announce new essays" in help_text
    assert "(moderators)" in help_text.split("essays subscribe")[1].splitlines()[0]
