"""Access by request on Slack, end to end: the real slack-bolt app in Socket Mode against the fake
Slack, the real anthropic SDK against the fake Anthropic API, and a real SQLite store. Time
moves only through an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bots.slack.service import running
from core.access import MODERATORS_ONLY
from core.config import Settings
from core.events import User, utcnow
from core.runtime import open_runtime
from core.store import AccessAudit, AccessGrant, AccessRequest
from tests.access_support import Clock, snapshot, table_rows
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackUser
from tests.slack_support import (
    SAFETY,
    Ember,
    action_ids,
    ember_settings,
    finished,
    model_clients,
    slack_env,
)

Json = dict[str, Any]
MODS, MEMBERS = "S0MODS", "S0MEMBERS"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    """alice is a plain member, bob an admin, carol in the member group, dave in the moderators'
    group (no admin rights), robot a bot; #general and #mods."""
    users = [
        SlackUser("U1", "alice", real_name="Alice Liddell", display_name="alice"),
        SlackUser("U2", "bob", real_name="Bob Admin", is_admin=True),
        SlackUser("U3", "carol", real_name="Carol"),
        SlackUser("U4", "dave", real_name="Dave"),
        SlackUser("U5", "robot", is_bot=True, bot_id="B05"),
    ]
    channels = [SlackChannel("C1", "general"), SlackChannel("C2", "mods")]
    async with FakeSlack(
        users=users, channels=channels, usergroups={MODS: ["U4"], MEMBERS: ["U3"]}
    ) as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(utcnow())


def settings_for(tmp_path: Path, fake: FakeSlack, anthropic: FakeAnthropic, **access: Any) -> Settings:
    slack = {"mod_channel": "C2", "moderator_roles": [MODS]}
    return ember_settings(
        tmp_path, anthropic, fake, slack=slack, access={"member_roles": [MEMBERS], **access}
    )


@asynccontextmanager
async def running_access(
    fake: FakeSlack, anthropic: FakeAnthropic, settings: Settings, clock: Clock
) -> AsyncIterator[Ember]:
    """ember with its real access service (on `clock`) as the gate, connected over Socket Mode."""
    async with (
        open_runtime(settings, client_factory=model_clients(anthropic), access_clock=clock) as runtime,
        running(runtime, environ=slack_env(fake), host="127.0.0.1", port=0) as run,
    ):
        await fake.wait_connected(timeout=SAFETY)
        yield Ember(run.bot, runtime, fake, anthropic, "socket", run.url)
        await run.bot.idle()


# ---------------------------------------------------------------- talking to ember as people do


async def answer(ember: Ember, user_id: str, text: str) -> str:
    """`/opus <text>` from `user_id` in #general; the private answer."""
    before = len(ember.slack.calls_to("response_url"))
    await ember.command(text, user_id=user_id, channel_id="C1")
    calls = await ember.wait(lambda c: c.method == "response_url", count=before + 1)
    reply = calls[before].args
    assert reply["response_type"] == "ephemeral", "access answers are private"
    return str(reply["text"])


async def press(ember: Ember, user_id: str, card: Json, action_id: str) -> str:
    """Press a button on the request card; the private answer to the presser."""
    before = len(ember.slack.calls_to("response_url"))
    await ember.press(ember.slack.button_press(user_id, "C2", str(card["ts"]), action_id))
    calls = await ember.wait(lambda c: c.method == "response_url", count=before + 1)
    await ember.idle()  # the card is updated after the presser is answered
    return str(calls[before].args["text"])


def blocks_of(ember: Ember, card: Json) -> Any:
    """The card's blocks as they stand now."""
    return ember.slack.stored("C2", str(card["ts"]))["blocks"]


async def card(ember: Ember, count: int = 1) -> Json:
    """The `count`-th request card in #mods, as stored (and later updated) by Slack."""
    await ember.wait(lambda c: c.method == "chat.postMessage" and c.args.get("channel") == "C2", count=count)
    return ember.slack.messages("C2")[count - 1]


async def refusal(ember: Ember, user_id: str, text: str) -> str:
    """Mention ember; the private note it answers with instead of the model."""
    before = len(ember.slack.calls_to("chat.postEphemeral"))
    await ember.deliver(ember.slack.app_mention("C1", user_id, f"{ember.slack.mention} {text}"))
    notes = await ember.wait(lambda c: c.method == "chat.postEphemeral", count=before + 1)
    assert notes[before].args["user"] == user_id
    return str(notes[before].args["text"])


async def chat(ember: Ember, user_id: str, text: str, replies: int) -> None:
    await ember.deliver(ember.slack.app_mention("C1", user_id, f"{ember.slack.mention} {text}"))
    await ember.wait(finished, count=replies)


def dms_to(ember: Ember, user_id: str) -> list[str]:
    channel = ember.slack.dm(user_id)
    return [
        str(c.args["text"])
        for c in ember.slack.calls_to("chat.postMessage")
        if c.args.get("channel") == channel
    ]


# ---------------------------------------------------------------- the tests


async def test_a_non_member_is_told_privately_how_to_ask_and_the_model_is_not_called(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        text = await refusal(ember, "U1", "hello")
        assert text.startswith("Hi alice! Talking with Claude Opus 3 here is by request")
        assert "`/opus access request [reason]`" in text
        assert fake_anthropic.requests == []


async def test_request_card_approve_then_the_member_can_chat(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        said = await answer(ember, "U1", "access request I read <!channel> every essay")
        assert said == "Thanks, alice! Your request is with the moderators; you'll hear back by DM."
        posted = await card(ember)
        [request] = await table_rows(ember.runtime.store, AccessRequest)
        assert request.reason == "I read @channel every essay"
        assert action_ids(posted["blocks"]) == [
            request_id("approve", request.id),
            request_id("deny", request.id),
        ]
        assert "<!channel>" not in str(posted["blocks"])  # the card pings nobody

        reply = await press(ember, "U2", posted, request_id("approve", request.id))
        assert reply == f"Approved request #{request.id}: <@U1> now has access. They've been told by DM."
        assert action_ids(blocks_of(ember, posted)) == []  # the buttons gave way to who decided
        assert "Approved by <@U2>" in str(blocks_of(ember, posted))
        assert dms_to(ember, "U1")[0].startswith("Good news: you may now talk with Claude Opus 3")

        await chat(ember, "U1", "hello at last", replies=1)
        assert len(fake_anthropic.requests) == 1


def request_id(action: str, number: int | None) -> str:
    return f"ember:access:{action}:{number}"


async def test_deny_by_a_moderator_group_and_presses_by_members_or_late(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        await answer(ember, "U1", "access request")
        posted = await card(ember)
        deny, approve = request_id("deny", 1), request_id("approve", 1)
        before = await snapshot(ember.runtime.store)
        for member in ("U1", "U3"):
            assert await press(ember, member, posted, approve) == MODERATORS_ONLY
        assert await snapshot(ember.runtime.store) == before
        assert action_ids(blocks_of(ember, posted)) == [approve, deny]

        assert (
            await press(ember, "U4", posted, deny) == "Denied request #1 from <@U1>. They've been told by DM."
        )
        assert dms_to(ember, "U1") == [
            "The moderators decided not to give you access to Claude Opus 3 for now."
        ]
        late = await press(ember, "U2", posted, approve)
        assert late.startswith("Request #1 from <@U1> was already denied by <@U4> at ")
        assert await table_rows(ember.runtime.store, AccessGrant) == []
        assert "by request" in await refusal(ember, "U1", "please?")
        assert fake_anthropic.requests == []


async def test_two_moderators_pressing_at_once_make_one_decision(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        await answer(ember, "U1", "access request")
        posted = await card(ember)
        await ember.press(fake.button_press("U2", "C2", str(posted["ts"]), request_id("approve", 1)))
        await ember.press(fake.button_press("U4", "C2", str(posted["ts"]), request_id("deny", 1)))
        answers = [
            str(c.args["text"]) for c in await ember.wait(lambda c: c.method == "response_url", count=3)
        ][1:]
        [decided] = await table_rows(ember.runtime.store, AccessRequest)
        assert sum(a.startswith(("Approved request", "Denied request")) for a in answers) == 1
        assert sum(f"was already {decided.status} by <@{decided.decided_by}>" in a for a in answers) == 1
        decisions = [
            a.action
            for a in await table_rows(ember.runtime.store, AccessAudit)
            if a.action in ("approve", "deny")
        ]
        assert len(decisions) == 1
        assert len(await table_rows(ember.runtime.store, AccessGrant)) == (
            1 if decided.status == "approved" else 0
        )


async def test_revoke_mid_conversation_and_expiry_on_the_clock(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    held = Reply.held(["Let me", " think."], after=1)
    fake_anthropic.script.append(held)
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        assert (await answer(ember, "U2", "access grant <@U1>")).startswith("<@U1> now has access.")
        await ember.deliver(fake.app_mention("C1", "U1", f"{fake.mention} what is memory?"))
        await fake_anthropic.wait_for_request(0)
        assert (
            await answer(ember, "U2", "access revoke <@U1> done")
            == "Revoked <@U1>'s access. They've been told by DM."
        )
        held.release.set()
        await ember.wait(finished)  # the reply in flight finishes
        assert "by request" in await refusal(ember, "U1", "and forgetting?")

        await answer(ember, "U2", "access grant <@U1> 3")
        await chat(ember, "U1", "back again", replies=2)
        clock.advance(days=3, seconds=1)
        assert "by request" in await refusal(ember, "U1", "still there?")
        assert await ember.runtime.access.expire_due() == 1
        assert dms_to(ember, "U1")[-1].startswith("Your access to Claude Opus 3 has ended.")
        assert len(fake_anthropic.requests) == 2
        actions = [a.action for a in await table_rows(ember.runtime.store, AccessAudit)]
        assert actions == ["grant", "revoke", "grant", "expire"]


async def test_a_member_group_grants_implicitly(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        await chat(ember, "U3", "hi from the group", replies=1)
        assert len(fake_anthropic.requests) == 1
        assert (
            await answer(ember, "U3", "access status")
            == "You may talk with Claude Opus 3 here through a member role."
        )


MODERATOR_COMMANDS = [
    "access grant <@U3> 3",
    "access deny <@U1> no",
    "access revoke <@U4>",
    "access pending",
    "access list",
    "access log",
    "access status <@U3>",
    "usage <@U3>",
]


async def test_members_running_moderator_commands_change_nothing(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        await answer(ember, "U1", "access request")
        assert "now has access" in await answer(ember, "U2", "access grant <@U4>")
        before = await snapshot(ember.runtime.store)
        told = len(fake.calls_to("conversations.open"))
        for text in MODERATOR_COMMANDS:
            assert (
                await answer(ember, "U1", text) == "That command is for moderators only; nothing was changed."
            ), text
        assert await snapshot(ember.runtime.store) == before
        assert len(fake.calls_to("conversations.open")) == told


async def test_daily_messages_and_one_reply_at_a_time(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    held = Reply.held(["One", " moment."], after=1)
    fake_anthropic.script.append(held)
    settings = settings_for(tmp_path, fake, fake_anthropic, daily_messages=1)
    async with running_access(fake, fake_anthropic, settings, clock) as ember:
        await ember.deliver(fake.app_mention("C1", "U3", f"{fake.mention} first"))
        await fake_anthropic.wait_for_request(0)
        busy = await refusal(ember, "U3", "second, too soon")
        assert busy == "I'm still writing a reply for you; please wait until it's finished, then ask again."
        held.release.set()
        await ember.wait(finished)
        limit = await refusal(ember, "U3", "third")
        assert limit.startswith(
            "You've reached today's limit of 1 messages to Claude Opus 3. It resets at 00:00 UTC, in "
        )
        assert len(fake_anthropic.requests) == 1


async def test_a_flood_while_a_reply_is_written_earns_one_notice_and_one_model_call(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    held = Reply.held(["One", " moment."], after=1)
    fake_anthropic.script.extend([held, Reply.text(["Next."])])
    settings = settings_for(tmp_path, fake, fake_anthropic)
    async with running_access(fake, fake_anthropic, settings, clock) as ember:
        await ember.deliver(fake.app_mention("C1", "U3", f"{fake.mention} first"))
        await fake_anthropic.wait_for_request(0)
        for n in range(49):
            await ember.deliver(fake.app_mention("C1", "U3", f"{fake.mention} are you there? {n}"))
        registry = ember.runtime.metrics.registry
        for _ in range(int(SAFETY / 0.02)):  # until all 49 are refused (the reply still held)
            if registry.get_sample_value("ember_access_decisions_total", {"decision": "denied"}) == 49:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the flood was not refused in time")
        notices = [c.args["text"] for c in fake.calls_to("chat.postEphemeral")]
        assert notices == [
            "I'm still writing a reply for you; please wait until it's finished, then ask again."
        ]
        assert len(fake_anthropic.requests) == 1
        held.release.set()
        await ember.wait(finished)
        # The burst is over once the reply is: the next message is answered as usual.
        await ember.deliver(fake.app_mention("C1", "U3", f"{fake.mention} thanks"))
        await ember.wait(finished, count=2)
    assert len(fake_anthropic.requests) == 2
    assert len(fake.calls_to("chat.postEphemeral")) == 1


async def test_a_grant_in_another_workspace_does_not_open_this_one(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        elsewhere = User("UX", "Other admin", "slack", "T2", is_moderator=True)
        await ember.runtime.access.grant(elsewhere, "T2", "U1")
        assert "by request" in await refusal(ember, "U1", "hello")
        assert await answer(ember, "U1", "access status") == (
            "You don't have access to Claude Opus 3 here. You can ask with `/opus access request [reason]`."
        )
        assert fake_anthropic.requests == []


async def test_the_audit_log_shows_who_did_what_to_whom_and_why(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        await answer(ember, "U1", "access request for my thesis")
        clock.advance(minutes=5)
        await answer(ember, "U2", "access grant <@U1> 30 thesis")
        clock.advance(minutes=5)
        await answer(ember, "U2", "access revoke <@U1> thesis done")
        lines = (await answer(ember, "U2", "access log <@U1>")).splitlines()
        assert lines[0] == "Newest first:"
        assert lines[1].endswith("revoke: <@U2> → <@U1> (reason: thesis done)")
        assert "approve: <@U2> → <@U1> (request #1; until " in lines[2] and lines[2].endswith(
            "; reason: thesis)"
        )
        assert lines[3].endswith("request: <@U1> (for my thesis)")
        assert len(lines) == 4


async def test_bad_input_gets_a_clear_answer(
    tmp_path: Path, fake: FakeSlack, fake_anthropic: FakeAnthropic, clock: Clock
) -> None:
    async with running_access(
        fake, fake_anthropic, settings_for(tmp_path, fake, fake_anthropic), clock
    ) as ember:
        assert await answer(ember, "U2", "access grant <@U5>") == "<@U5> is a bot; access is for people."
        assert (await answer(ember, "U2", "access grant <@U1> 0")).startswith("days should be a whole number")
        assert (await answer(ember, "U2", "access grant <@U1> soon")).startswith("days")
        assert (await answer(ember, "U2", "access revoke <@U1>")).startswith("<@U1> has no access grant here")
        await answer(ember, "U1", "access request")
        again = await answer(ember, "U1", "access request")
        assert (
            again == "You've already asked, and the moderators haven't decided yet. You'll hear back by DM."
        )
        assert [a.action for a in await table_rows(ember.runtime.store, AccessAudit)] == ["request"]
