"""Access by request on Discord, end to end: the real discord.py client against the fake Discord,
the real anthropic SDK against the fake Anthropic API, and a real SQLite store. Time moves only
through an injected clock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

from bots.discord.app import make_client
from core.access import MODERATORS_ONLY
from core.config import Settings
from core.events import utcnow
from core.runtime import open_runtime
from core.store import AccessAudit, AccessGrant, AccessRequest, Usage
from tests.access_support import Clock, snapshot, table_rows
from tests.discord_support import Ember, custom_ids, ember_settings, finished, posts_in
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import (
    MANAGE_GUILD,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Recorded,
    run_client,
)

Json = dict[str, Any]
CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
FOLLOWUP = "POST /webhooks/{application_id}/{token}"
EDIT_ORIGINAL = "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"
EPHEMERAL = 1 << 6


def world() -> list[FakeGuild]:
    """Home: alice owns it (Manage Server), dave keeps it through a role named in
    `moderator_roles` (no permissions), carol has a member role, bob and erin are plain members,
    robot is a bot. Elsewhere: zed owns it; bob and yan are members."""
    moderator = FakeRole("moderator", permissions=MANAGE_GUILD, position=3)
    keeper, regular = FakeRole("keeper", position=2), FakeRole("regular", position=1)
    alice, bob, carol = (
        FakeUser("alice", global_name="Alice"),
        FakeUser("bob", global_name="Bob"),
        FakeUser("carol"),
    )
    dave, zed, yan, robot = FakeUser("dave"), FakeUser("zed"), FakeUser("yan"), FakeUser("robot", bot=True)
    erin = FakeUser("erin")
    home = FakeGuild(
        "Home",
        channels=[FakeChannel("general"), FakeChannel("mods")],
        roles=[moderator, keeper, regular],
        members=[
            FakeMember(alice, roles=[moderator]),
            FakeMember(bob),
            FakeMember(carol, roles=[regular]),
            FakeMember(dave, roles=[keeper]),
            FakeMember(robot),
            FakeMember(erin),
        ],
        owner=alice,
    )
    elsewhere = FakeGuild(
        "Elsewhere",
        channels=[FakeChannel("lounge")],
        members=[FakeMember(zed), FakeMember(bob), FakeMember(yan)],
        owner=zed,
    )
    return [home, elsewhere]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(world()) as server:
        with server.pointed():
            yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


def settings_for(tmp_path: Path, fake: FakeDiscord, anthropic: FakeAnthropic, **access: Any) -> Settings:
    home = fake.guilds[0]
    discord = {
        "mod_channel": str(fake.channel("mods").id),
        "moderator_roles": [str(fake.role("keeper", home).id)],
    }
    rules = {"member_roles": [str(fake.role("regular", home).id)], **access}
    return ember_settings(tmp_path, anthropic, discord=discord, access=rules)


@asynccontextmanager
async def running(
    fake: FakeDiscord, anthropic: FakeAnthropic, settings: Settings, clock: Clock
) -> AsyncIterator[Ember]:
    """ember with its real access service (on `clock`) as the gate, connected to the fake."""
    with patch.dict(os.environ, {"ANTHROPIC_API_KEY": "sk-ant-test-key"}):
        async with open_runtime(settings, access_clock=clock) as runtime:
            client = make_client(runtime, guild_ready_timeout=0.05)
            async with run_client(client, fake):
                yield Ember(client, runtime, fake, anthropic)


# ---------------------------------------------------------------- talking to ember as people do


async def command(ember: Ember, user: FakeUser, channel: FakeChannel, text: str, /, **options: Any) -> Json:
    """Run `/opus <text>` and return the message that answered it."""
    fake = ember.discord
    payload = fake.slash_command(user, channel, f"opus {text}", options)
    await fake.dispatch("INTERACTION_CREATE", payload)
    token = str(payload["token"])
    await ember.wait(lambda r: r.route == CALLBACK and token in r.path)
    state = fake.interactions[int(payload["id"])]
    if state.loading:  # deferred: the answer is the edit of the "thinking…" message
        await ember.wait(lambda r: r.route == EDIT_ORIGINAL and token in r.path)
    assert state.original_id is not None
    return fake.messages[state.original_id]


async def answer(ember: Ember, user: FakeUser, channel: FakeChannel, text: str, /, **options: Any) -> str:
    message = await command(ember, user, channel, text, **options)
    assert message["flags"] & EPHEMERAL, "access answers are private"
    return str(message["content"])


async def press(ember: Ember, user: FakeUser, message_id: int, custom_id: str) -> Json:
    """Press a button; return the private answer ember sent the presser."""
    payload = ember.discord.button_press(user, message_id, custom_id)
    await ember.discord.dispatch("INTERACTION_CREATE", payload)
    return await followup(ember, payload)


async def followup(ember: Ember, payload: Json) -> Json:
    token = str(payload["token"])
    [sent] = await ember.wait(lambda r: r.route == FOLLOWUP and token in r.path)
    return sent.body  # type: ignore[no-any-return]


async def mention(ember: Ember, user: FakeUser, channel: FakeChannel, text: str) -> Json:
    return await ember.discord.say(user, channel, f"{ember.discord.bot.mention} {text}")


async def request_card(ember: Ember, count: int = 1) -> tuple[Recorded, Json]:
    """The `count`-th access request posted in #mods: what ember sent, and the stored message."""
    mods = ember.discord.channel("mods")
    posts = await ember.wait(posts_in(mods.id), count=count)
    return posts[count - 1], ember.discord.history(mods)[count - 1]


def replies_to(ember: Ember, message: Json) -> list[Recorded]:
    return [
        r
        for r in ember.discord.requests
        if r.route == "POST /channels/{channel_id}/messages"
        and (r.body.get("message_reference") or {}).get("message_id") == int(message["id"])
    ]


async def refusal_of(ember: Ember, message: Json) -> str:
    """ember's answer to `message` when it does not reach the model."""
    await ember.wait(lambda r: bool(replies_to(ember, message)))
    [reply] = replies_to(ember, message)
    return str(reply.body["content"])


async def dms_to(ember: Ember, user: FakeUser, count: int = 1) -> list[str]:
    posts = await ember.wait(posts_in(ember.discord.dm_channel(user).id), count=count)
    return [str(p.body["content"]) for p in posts]


async def chat(ember: Ember, user: FakeUser, channel: FakeChannel, text: str, replies: int) -> None:
    """Say something to ember and wait until its reply (the `replies`-th so far) is finished."""
    await mention(ember, user, channel, text)
    await ember.wait(finished, count=replies)


# ---------------------------------------------------------------- the tests


async def test_a_non_member_is_told_how_to_ask_and_the_model_is_not_called(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        asked = await mention(ember, fake.user("bob"), fake.channel("general"), "hello there")
        text = await refusal_of(ember, asked)
        assert text.startswith("Hi Bob! Talking with Claude Opus 3 here is by request")
        assert "`/opus access request [reason]`" in text
        assert fake_anthropic.requests == []
        assert await table_rows(ember.runtime.store, Usage) == []


async def test_request_posts_buttons_to_the_moderators_and_approve_lets_the_member_chat(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, general = fake.user("alice"), fake.user("bob"), fake.channel("general")
        said = await answer(ember, bob, general, "access request", reason="I read every essay <@&1>")
        assert said == "Thanks, Bob! Your request is with the moderators; you'll hear back by DM."

        sent, card = await request_card(ember)
        [request] = await table_rows(ember.runtime.store, AccessRequest)
        approve, deny = f"ember:access:approve:{request.id}", f"ember:access:deny:{request.id}"
        assert custom_ids(sent.body) == [approve, deny]
        assert card["content"] == f"Access request #{request.id} from <@{bob.id}> (Bob)"
        assert sent.body["allowed_mentions"]["parse"] == []  # the card pings nobody
        assert card["mentions"] == [] and card["mention_roles"] == []
        assert card["embeds"][0]["description"] == "I read every essay <@&1>"

        reply = await press(ember, alice, int(card["id"]), approve)
        assert reply["flags"] & EPHEMERAL
        assert reply["content"].startswith(f"Approved request #{request.id}: <@{bob.id}> now has access.")
        assert reply["content"].endswith("They've been told by DM.")
        [dm] = await dms_to(ember, bob)
        assert dm.startswith("Good news: you may now talk with Claude Opus 3")

        # The card now says who decided, and its buttons are gone for everyone.
        assert card["components"] == []
        assert card["embeds"][0]["fields"][-1]["value"].startswith(f"Approved by <@{alice.id}>")

        await chat(ember, bob, general, "hello at last", replies=1)
        assert len(fake_anthropic.requests) == 1
        [audit] = [a for a in await table_rows(ember.runtime.store, AccessAudit) if a.action == "approve"]
        assert (audit.actor_id, audit.target_id) == (str(alice.id), str(bob.id))


async def test_deny_tells_the_member_and_the_card_says_so(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        dave, bob, general = fake.user("dave"), fake.user("bob"), fake.channel("general")
        await answer(ember, bob, general, "access request")
        _, card = await request_card(ember)
        [request] = await table_rows(ember.runtime.store, AccessRequest)

        # dave holds no permission at all: the role named in moderator_roles makes him a moderator.
        reply = await press(ember, dave, int(card["id"]), f"ember:access:deny:{request.id}")
        assert reply["content"] == f"Denied request #{request.id} from <@{bob.id}>. They've been told by DM."
        [dm] = await dms_to(ember, bob)
        assert dm == "The moderators decided not to give you access to Claude Opus 3 for now."
        assert card["components"] == []
        assert card["embeds"][0]["fields"][-1]["value"].startswith(f"Denied by <@{dave.id}>")

        asked = await mention(ember, bob, general, "please?")
        assert "by request" in await refusal_of(ember, asked)
        again = await answer(ember, bob, general, "access request")
        assert again.startswith("The moderators decided on your last request at ")
        assert fake_anthropic.requests == []


async def test_a_button_pressed_by_a_member_or_twice_changes_nothing_more(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, carol = fake.user("alice"), fake.user("bob"), fake.user("carol")
        await answer(ember, bob, fake.channel("general"), "access request")
        _, card = await request_card(ember)
        [request] = await table_rows(ember.runtime.store, AccessRequest)
        approve = f"ember:access:approve:{request.id}"
        before = await snapshot(ember.runtime.store)

        for member in (bob, carol):  # the asker himself, and a member through a role
            reply = await press(ember, member, int(card["id"]), approve)
            assert reply["content"] == MODERATORS_ONLY and reply["flags"] & EPHEMERAL
        assert await snapshot(ember.runtime.store) == before
        assert custom_ids(card) == [approve, f"ember:access:deny:{request.id}"]  # the card is untouched

        # A double click: both presses leave before the card loses its buttons.
        clicks = [fake.button_press(alice, int(card["id"]), approve) for _ in range(2)]
        for payload in clicks:
            await fake.dispatch("INTERACTION_CREATE", payload)
        first, second = sorted([str((await followup(ember, p))["content"]) for p in clicks])
        assert first.startswith(f"Approved request #{request.id}")
        assert second.startswith(
            f"Request #{request.id} from <@{bob.id}> was already approved by <@{alice.id}> at "
        )
        assert second.endswith("nothing changed.")
        assert [g.status for g in await table_rows(ember.runtime.store, AccessGrant)] == ["active"]
        assert [a.action for a in await table_rows(ember.runtime.store, AccessAudit)] == [
            "request",
            "approve",
        ]


async def test_a_button_pressed_after_a_decision_by_command_says_so_and_retires(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, dave, bob, general = (
            fake.user("alice"),
            fake.user("dave"),
            fake.user("bob"),
            fake.channel("general"),
        )
        await answer(ember, bob, general, "access request")
        _, card = await request_card(ember)
        denied = await answer(ember, dave, general, "access deny", user=bob, reason="not yet")
        assert denied == f"Denied request #1 from <@{bob.id}>. They've been told by DM."
        before = await snapshot(ember.runtime.store)

        late = await press(ember, alice, int(card["id"]), "ember:access:approve:1")
        assert late["content"].startswith(f"Request #1 from <@{bob.id}> was already denied by <@{dave.id}>")
        assert await snapshot(ember.runtime.store) == before
        assert card["components"] == []
        assert card["embeds"][0]["fields"][-1]["value"].startswith(f"Denied by <@{dave.id}>")


async def test_two_moderators_pressing_at_once_make_one_decision(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, dave, bob = fake.user("alice"), fake.user("dave"), fake.user("bob")
        await answer(ember, bob, fake.channel("general"), "access request")
        _, card = await request_card(ember)
        [request] = await table_rows(ember.runtime.store, AccessRequest)
        presses = [
            fake.button_press(alice, int(card["id"]), f"ember:access:approve:{request.id}"),
            fake.button_press(dave, int(card["id"]), f"ember:access:deny:{request.id}"),
        ]
        for payload in presses:  # both arrive before either is answered
            await fake.dispatch("INTERACTION_CREATE", payload)
        replies = [str((await followup(ember, p))["content"]) for p in presses]

        [decided] = [r for r in await table_rows(ember.runtime.store, AccessRequest)]
        decisions = [
            a for a in await table_rows(ember.runtime.store, AccessAudit) if a.action in ("approve", "deny")
        ]
        assert len(decisions) == 1 and decided.status in ("approved", "denied")
        winner = 0 if decided.status == "approved" else 1
        assert replies[winner].startswith(("Approved request", "Denied request"))
        assert f"was already {decided.status} by <@{decided.decided_by}>" in replies[1 - winner]
        grants = await table_rows(ember.runtime.store, AccessGrant)
        assert len(grants) == (1 if decided.status == "approved" else 0)


async def test_revoking_mid_conversation_lets_the_reply_finish_and_stops_the_next(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    held = Reply.held(["Let me think", " about that."], after=1)
    fake_anthropic.script.append(held)
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, general = fake.user("alice"), fake.user("bob"), fake.channel("general")
        granted = await answer(ember, alice, general, "access grant", user=bob, note="essay club")
        assert granted.startswith(f"<@{bob.id}> now has access.")

        await mention(ember, bob, general, "what do you make of memory?")
        await fake_anthropic.wait_for_request(0)
        revoked = await answer(ember, alice, general, "access revoke", user=bob, reason="club ended")
        assert revoked == f"Revoked <@{bob.id}>'s access. They've been told by DM."
        held.release.set()
        await ember.wait(finished)  # the reply in flight is not cut off

        asked = await mention(ember, bob, general, "and what about forgetting?")
        assert "by request" in await refusal_of(ember, asked)
        assert len(fake_anthropic.requests) == 1
        dms = await dms_to(ember, bob, count=2)
        assert dms[1] == "A moderator has ended your access to Claude Opus 3. Reason: club ended"


async def test_a_grant_for_days_expires_on_the_clock(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, general = fake.user("alice"), fake.user("bob"), fake.channel("general")
        await answer(ember, alice, general, "access grant", user=bob, days=2)
        listed = await answer(ember, alice, general, "access list")
        assert listed.startswith(f"1 with access:\n<@{bob.id}>: expires ")
        assert "(in 2 days), granted by" in listed
        await chat(ember, bob, general, "hello", replies=1)

        clock.advance(days=2, seconds=1)
        asked = await mention(ember, bob, general, "still there?")
        assert "by request" in await refusal_of(ember, asked)
        assert len(fake_anthropic.requests) == 1

        assert await ember.runtime.access.expire_due() == 1
        dms = await dms_to(ember, bob, count=2)
        assert dms[1].startswith("Your access to Claude Opus 3 has ended.")
        assert [a.action for a in await table_rows(ember.runtime.store, AccessAudit)] == ["grant", "expire"]
        assert await answer(ember, alice, general, "access list") == "Nobody has a grant here yet."


async def test_a_member_role_grants_implicitly(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        carol, general = fake.user("carol"), fake.channel("general")
        await chat(ember, carol, general, "hi from a regular", replies=1)
        assert len(fake_anthropic.requests) == 1
        status = await answer(ember, carol, general, "access status")
        assert status == "You may talk with Claude Opus 3 here through a member role."
        assert await table_rows(ember.runtime.store, AccessGrant) == []


MODERATOR_COMMANDS = [
    ("access grant", {"user": "carol", "days": 3}),
    ("access deny", {"user": "carol", "reason": "no"}),
    ("access revoke", {"user": "erin"}),
    ("access pending", {}),
    ("access list", {}),
    ("access log", {}),
    ("access status", {"user": "carol"}),
    ("usage", {"user": "carol"}),
]


async def test_members_running_moderator_commands_change_nothing(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, carol, general = (
            fake.user("alice"),
            fake.user("bob"),
            fake.user("carol"),
            fake.channel("general"),
        )
        await answer(ember, carol, general, "access request", reason="please")  # something to deny
        granted = await answer(ember, alice, general, "access grant", user=fake.user("erin"))
        assert "now has access" in granted  # something to revoke
        before = await snapshot(ember.runtime.store)
        posts_before = len(fake.requests)
        for text, options in MODERATOR_COMMANDS:
            values = {k: fake.user(v) if k == "user" else v for k, v in options.items()}
            said = await answer(ember, bob, general, text, **values)
            assert said == "That command is for moderators only; nothing was changed.", text
        assert await snapshot(ember.runtime.store) == before
        dms = [r for r in fake.requests[posts_before:] if r.route == "POST /users/@me/channels"]
        assert dms == []  # nobody was told anything either


async def test_daily_messages_and_one_reply_at_a_time(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    held = Reply.held(["One", " moment."], after=1)
    fake_anthropic.script.append(held)
    settings = settings_for(tmp_path, fake, fake_anthropic, daily_messages=1, max_concurrent=1)
    async with running(fake, fake_anthropic, settings, clock) as ember:
        carol, general = fake.user("carol"), fake.channel("general")
        await mention(ember, carol, general, "first")
        await fake_anthropic.wait_for_request(0)
        second = await mention(ember, carol, general, "second, too soon")
        busy = await refusal_of(ember, second)
        assert busy == "I'm still writing a reply for you; please wait until it's finished, then ask again."
        held.release.set()
        await ember.wait(finished)

        third = await mention(ember, carol, general, "third, over the limit")
        limit = await refusal_of(ember, third)
        assert limit.startswith("You've reached today's limit of 1 messages to Claude Opus 3.")
        assert "It resets at 00:00 UTC, in " in limit
        assert len(fake_anthropic.requests) == 1


async def test_the_monthly_spend_cap_names_when_it_resets(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    fake_anthropic.script.append(Reply.text(["Costly."], input_tokens=10_000, output_tokens=1_000))
    settings = settings_for(tmp_path, fake, fake_anthropic, monthly_spend_usd=0.10)
    async with running(fake, fake_anthropic, settings, clock) as ember:
        carol, general = fake.user("carol"), fake.channel("general")
        await chat(ember, carol, general, "an expensive question", replies=1)
        clock.advance(minutes=1)  # past the short cache of the month's spend
        asked = await mention(ember, carol, general, "another")
        text = await refusal_of(ember, asked)
        assert text.startswith(
            "This server has used its monthly budget of $0.10 for Claude Opus 3. It resets on 1 "
        )
        assert len(fake_anthropic.requests) == 1


async def test_a_grant_in_one_server_does_not_open_another_but_opens_dms(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, yan = fake.user("alice"), fake.user("bob"), fake.user("yan")
        await answer(ember, alice, fake.channel("general"), "access grant", user=bob)

        asked = await mention(ember, bob, fake.channel("lounge"), "hello over here")
        assert "by request" in await refusal_of(ember, asked)
        await fake.say(bob, fake.dm_channel(bob), "and privately?")
        await ember.wait(finished)
        assert len(fake_anthropic.requests) == 1

        stranger = await fake.say(yan, fake.dm_channel(yan), "hi")
        assert "in a channel of a server where I live" in await refusal_of(ember, stranger)
        # A request from the other server is kept, but never shown in this server's #mods.
        said = await answer(ember, yan, fake.channel("lounge"), "access request")
        assert said.endswith("Your request is recorded; the moderators will see it and you'll hear back.")
        assert [r.workspace_id for r in await table_rows(ember.runtime.store, AccessRequest)] == [
            str(fake.guilds[1].id)
        ]
        assert fake.history(fake.channel("mods")) == []
        assert len(fake_anthropic.requests) == 1


async def test_the_audit_log_shows_who_did_what_to_whom_and_why(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, general = fake.user("alice"), fake.user("bob"), fake.channel("general")
        await answer(ember, bob, general, "access request", reason="for my thesis")
        clock.advance(minutes=5)
        await answer(ember, alice, general, "access grant", user=bob, days=30, note="thesis")
        clock.advance(minutes=5)
        await answer(ember, alice, general, "access revoke", user=bob, reason="thesis done")
        log = await answer(ember, alice, general, "access log", user=bob)
        lines = log.splitlines()
        assert lines[0] == "Newest first:"
        assert lines[1].endswith(f"revoke: <@{alice.id}> → <@{bob.id}> (reason: thesis done)")
        assert f"approve: <@{alice.id}> → <@{bob.id}> (request #1; until " in lines[2]
        assert lines[2].endswith("; reason: thesis)")
        assert lines[3].endswith(f"request: <@{bob.id}> (for my thesis)")
        assert len(lines) == 4


async def test_bad_input_gets_a_clear_answer(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob, general = fake.user("alice"), fake.user("bob"), fake.channel("general")
        robot = fake.user("robot")
        assert (
            await answer(ember, alice, general, "access grant", user=robot)
            == f"<@{robot.id}> is a bot; access is for people."
        )
        assert (await answer(ember, alice, general, "access revoke", user=bob)).startswith(
            f"<@{bob.id}> has no access grant here to revoke"
        )
        assert (await answer(ember, alice, general, "access deny", user=bob)).startswith(
            f"<@{bob.id}> has no pending request here"
        )
        too_long = await answer(ember, bob, general, "access request", reason="x" * 501)
        assert too_long.startswith("the reason is 501 characters long; please keep it to 500")
        await answer(ember, bob, general, "access request")
        again = await answer(ember, bob, general, "access request")
        assert (
            again == "You've already asked, and the moderators haven't decided yet. You'll hear back by DM."
        )
        await answer(ember, alice, general, "access grant", user=bob, days=5)
        extended = await answer(ember, alice, general, "access grant", user=bob, days=5)
        assert extended.startswith(f"<@{bob.id}> already had access until ")
        assert [a.action for a in await table_rows(ember.runtime.store, AccessAudit)] == [
            "request",
            "approve",
            "extend",
        ]


async def test_a_member_with_closed_dms_is_reported_to_the_moderator(
    tmp_path: Path, fake: FakeDiscord, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running(fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock) as ember:
        alice, bob = fake.user("alice"), fake.user("bob")
        dm = fake.dm_channel(bob)
        fake.fail_next(
            "POST",
            f"/channels/{dm.id}/messages",
            status=403,
            code=50007,
            message="Cannot send messages to this user",
        )
        said = await answer(ember, alice, fake.channel("general"), "access grant", user=bob)
        assert said == f"<@{bob.id}> now has access. I couldn't DM them, so please let them know."
