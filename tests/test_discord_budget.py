"""Discord's request budget end to end: the real discord.py client against a fake Discord that
enforces the global and per-channel windows (answering 429 as Discord does), with many
conversations at once. Structure, never wall-clock thresholds: nothing is rate limited, every
reply ends complete with its buttons, and first posts are not crowded out by edits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bots.discord.traits import discord_budget
from core.budget import BudgetPacer, RequestScheduler
from tests.discord_support import (
    EDIT,
    POST,
    SAFETY,
    bot_messages,
    custom_ids,
    ember_settings,
    running_ember,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import (
    DiscordLimits,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    FakeUser,
)
from tests.test_budget import Recorder, VirtualTime

CONVERSATIONS = 15
# A small global limit, so fifteen replies at once overrun it as fifty would overrun Discord's.
PER_SECOND = 10
CHUNKS = [f"w{i} " for i in range(40)]


def limited_world() -> tuple[FakeDiscord, list[FakeChannel], list[FakeUser]]:
    people = [FakeUser(f"person{i}") for i in range(CONVERSATIONS)]
    rooms = [FakeChannel(f"room-{i}") for i in range(CONVERSATIONS)]
    guild = FakeGuild("Busy", channels=rooms, members=[FakeMember(p) for p in people])
    return FakeDiscord([guild], limits=DiscordLimits(global_per_second=PER_SECOND)), rooms, people


def finished_in(rooms: list[FakeChannel]) -> set[str]:
    return {str(room.id) for room in rooms}


async def test_a_burst_over_the_global_limit_is_never_rate_limited_and_every_reply_completes(
    tmp_path: Path,
) -> None:
    fake, rooms, people = limited_world()
    async with fake, FakeAnthropic() as anthropic:
        for _ in rooms:
            anthropic.script.append(Reply.text(CHUNKS, token_delay=0.05))
        settings = ember_settings(tmp_path, anthropic, discord={"requests_per_second": PER_SECOND})
        with fake.pointed():
            async with running_ember(fake, anthropic, settings) as ember:
                ember.client.inbound.edit_interval = 0.2
                for person, room in zip(people, rooms, strict=True):
                    await fake.dispatch(
                        "MESSAGE_CREATE", fake.message(person, room, f"{fake.bot.mention} go")
                    )
                finals = await ember.wait(
                    lambda r: r.route == EDIT and any(":regen:" in c for c in custom_ids(r.body)),
                    count=CONVERSATIONS,
                    timeout=60,
                )

        assert fake.rate_limited == []
        assert {r.path.split("/")[2] for r in finals} == finished_in(rooms)
        for room in rooms:
            [answer] = bot_messages(fake, room)
            assert answer["content"] == "".join(CHUNKS)
        # More first posts than the global window holds: the ones that waited still went out
        # before any reply's final text (they outrank every edit), and each reply's first post
        # came before its own edits.
        posts = [r for r in fake.requests if r.route == POST and r.status < 300]
        assert len(posts) == CONVERSATIONS
        assert max(p.time for p in posts) < min(f.time for f in finals)
        for post in posts:
            channel = post.path.split("/")[2]
            edits = [r for r in fake.requests if r.route == EDIT and r.path.split("/")[2] == channel]
            assert edits and min(e.time for e in edits) > post.time


async def test_the_final_text_and_buttons_are_not_held_behind_the_channel_window(tmp_path: Path) -> None:
    """One long-streaming reply fills its channel's window with intermediate edits; its final
    text and buttons still have room (the window keeps two writes for them), so no 429."""
    fake, rooms, people = limited_world()
    async with fake, FakeAnthropic() as anthropic:
        anthropic.script.append(Reply.text(CHUNKS, token_delay=0.05))
        settings = ember_settings(tmp_path, anthropic)
        with fake.pointed():
            async with running_ember(fake, anthropic, settings) as ember:
                ember.client.inbound.edit_interval = 0.05  # eager: the channel window decides
                await fake.dispatch(
                    "MESSAGE_CREATE", fake.message(people[0], rooms[0], f"{fake.bot.mention} go")
                )
                await ember.wait(
                    lambda r: r.route == EDIT and any(":regen:" in c for c in custom_ids(r.body))
                )

        assert fake.rate_limited == []
        writes = [r for r in fake.requests if r.route in (POST, EDIT) and r.status < 300]
        # Five writes per five seconds at most in the channel; a two-second reply made exactly
        # as many as the window allows and no more: its post, two edits, final text and buttons
        # (the final text may travel with the buttons, one write fewer).
        assert 4 <= len(writes) <= 5
        [answer] = bot_messages(fake, rooms[0])
        assert answer["content"] == "".join(CHUNKS)


async def test_each_reply_holds_a_slot_from_its_question_to_its_final_text(tmp_path: Path) -> None:
    """While the models think, every reply on its way keeps a slot of the global window for
    its first and final text; once its buttons are on, the slot is free again."""
    fake, rooms, people = limited_world()
    asked = rooms[:3]
    async with fake, FakeAnthropic() as anthropic:
        thinking = [Reply(chunks=CHUNKS[:5], hold_after=0) for _ in asked]
        anthropic.script.extend(thinking)
        settings = ember_settings(tmp_path, anthropic)
        with fake.pointed():
            async with running_ember(fake, anthropic, settings) as ember:
                scheduler = ember.client.inbound.scheduler
                for person, room in zip(people, asked, strict=False):
                    await fake.dispatch(
                        "MESSAGE_CREATE", fake.message(person, room, f"{fake.bot.mention} go")
                    )
                async with asyncio.timeout(SAFETY):
                    await anthropic.wait_for_requests(len(asked))
                assert scheduler.held() == len(asked)
                for reply in thinking:
                    reply.release.set()
                await ember.wait(
                    lambda r: r.route == EDIT and any(":regen:" in c for c in custom_ids(r.body)),
                    count=len(asked),
                )
        # Every reply ended (ember drains its replies as it stops): no slot is left held.
        assert scheduler.held() == 0
        assert fake.rate_limited == []


class SteppingTime(VirtualTime):
    """A virtual clock that always moves forward when slept on: the window of 1.05 s is not a
    binary fraction, and `now + (due - now)` can round to just short of `due`."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(max(seconds, 1e-9))


async def test_essay_fan_out_on_the_shipped_budget_keeps_under_discords_published_limits() -> None:
    """Discord allows a bot 50 requests a second, and five message creates per five seconds in
    a channel: the shipped budget keeps essay deliveries under both, on a virtual clock."""
    time = SteppingTime()
    budget = RequestScheduler(discord_budget(50), clock=time.clock, sleep=time.sleep)
    pacer = BudgetPacer(budget, concurrency=32)
    calls = Recorder(time)
    channels = [f"C{n}" for n in range(120)] + ["busy"] * 7
    await asyncio.gather(*(pacer.send(channel, calls.call(channel)) for channel in channels))
    moments = sorted(at for _, at in calls.sent)
    assert len(moments) == len(channels)
    assert all(later - earlier >= 1.0 for earlier, later in zip(moments, moments[50:], strict=False))
    busy = [at for name, at in calls.sent if name == "busy"]
    assert all(later - earlier >= 5.0 for earlier, later in zip(busy, busy[5:], strict=False))
    await budget.aclose()
