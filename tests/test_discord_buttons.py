"""Reply buttons on Discord end to end: Stop, Regenerate and Continue, who may press them, and
presses that arrive after a restart (a fresh client over the same database)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from tests.discord_support import (
    CALLBACK,
    FOLLOWUP,
    POST,
    SAFETY,
    Ember,
    bot_messages,
    custom_ids,
    ember_settings,
    finished,
    posts_in,
    running_ember,
    turns,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import EPHEMERAL, FakeDiscord, FakeUser, Json, Recorded

NOT_YOURS = "Only the person who asked"


def button(message: Json, action: str) -> str:
    [found] = [c for c in custom_ids(message) if f":{action}:" in c]
    return found


async def press(ember: Ember, user: FakeUser, message: Json, action: str) -> Json:
    payload = ember.discord.button_press(user, int(message["id"]), button(message, action))
    await ember.discord.dispatch("INTERACTION_CREATE", payload)
    return payload


def callbacks_for(ember: Ember, interaction: Json) -> list[Recorded]:
    return [r for r in ember.discord.requests if r.route == CALLBACK and interaction["id"] in r.path]


async def ask(ember: Ember, user: FakeUser, text: str, count: int = 1) -> Json:
    """`user` mentions ember in #general; the finished answer's (last) message."""
    general = ember.discord.channel("general")
    await ember.discord.say(user, general, f"{ember.discord.bot.mention} {text}")
    await ember.wait(finished, count=count)
    return bot_messages(ember.discord, general)[-1]


async def test_stop_ends_the_answer_and_keeps_its_text(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.held(["Once upon a time", " there was", " a dragon."], after=1))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        bob, general = fake_discord.user("bob"), fake_discord.channel("general")
        await fake_discord.say(bob, general, f"{fake_discord.bot.mention} tell me a story")
        [post] = await ember.wait(posts_in(general.id))
        streaming = fake_discord.messages[max(fake_discord.messages)]
        assert streaming["content"] == "Once upon a time" and post.body["components"]

        interaction = await press(ember, bob, streaming, "stop")
        await ember.wait(finished)
        [answer] = bot_messages(fake_discord, general)
        assert answer["content"] == "Once upon a time"
        assert [c.split(":")[1] for c in custom_ids(answer)] == ["regen"]
        [ack] = callbacks_for(ember, interaction)
        assert ack.body["type"] == 6  # a silent deferred update, at once


async def test_a_stranger_is_told_privately_that_the_buttons_are_not_theirs(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        answer = await ask(ember, alice, "hello")

        await press(ember, bob, answer, "regen")
        [notice] = await ember.wait(lambda r: r.route == FOLLOWUP)
        assert NOT_YOURS in notice.body["content"]
        assert notice.body["flags"] & EPHEMERAL
        assert len(fake_anthropic.requests) == 1  # nothing was regenerated
        assert fake_discord.messages[int(answer["id"])]["content"] == answer["content"]


async def test_regenerate_replaces_the_answer_in_place_for_the_asker_or_a_moderator(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend(Reply.text([t]) for t in ("First try.", "Second try.", "Third try."))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        ember.client.inbound.edit_interval = 0.05
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        answer = await ask(ember, bob, "a haiku, please")

        await press(ember, bob, answer, "regen")  # the asker
        await ember.wait(finished, count=2)
        assert fake_discord.messages[int(answer["id"])]["content"] == "Second try."

        await press(ember, alice, answer, "regen")  # a moderator (Manage Server)
        await ember.wait(finished, count=3)
        assert fake_discord.messages[int(answer["id"])]["content"] == "Third try."

        general = fake_discord.channel("general")
        assert [m["id"] for m in bot_messages(fake_discord, general)] == [answer["id"]]
        assert len([r for r in fake_discord.requests if r.route == POST]) == 1
        # The same prompt each time.
        assert {tuple(turns(r)) for r in fake_anthropic.requests} == {
            (("user", "Bob: @Ember a haiku, please"),)
        }


async def test_the_buttons_do_not_wait_for_the_store_and_a_press_waits_for_the_records(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    """A reply's final buttons go on while its end is written: with the database locked by
    another writer, they still appear. A Regenerate pressed then waits for the reply's records,
    so it rewrites the reply's own message in place, as it does when the store is quick."""
    first = Reply.held(["First", " try."], after=1)
    fake_anthropic.script.extend([first, Reply.text(["Second try."])])
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        ember.client.inbound.edit_interval = 0.05
        bob, general = fake_discord.user("bob"), fake_discord.channel("general")
        await fake_discord.say(bob, general, f"{fake_discord.bot.mention} try twice")
        await ember.wait(posts_in(general.id))
        await asyncio.sleep(0.2)  # the reply's row and the question, written as it streams
        other_writer = sqlite3.connect(tmp_path / "ember.db", isolation_level=None)
        other_writer.execute("BEGIN IMMEDIATE")  # the store's writer waits (busy timeout: 5 s)
        try:
            first.release.set()
            # The fake's own wait: `ember.wait` also waits for the records, which cannot be
            # written while the lock is held.
            await fake_discord.wait_for(finished, timeout=SAFETY)
            [answer] = bot_messages(fake_discord, general)
            assert answer["content"] == "First try."
            interaction = await press(ember, bob, answer, "regen")
            await fake_discord.wait_for(
                lambda r: r.route == CALLBACK and interaction["id"] in r.path, timeout=SAFETY
            )
            await asyncio.sleep(0.2)  # the press is being handled, the records not yet written
        finally:
            other_writer.execute("COMMIT")
            other_writer.close()
        await ember.wait(finished, count=2)
        assert fake_discord.messages[int(answer["id"])]["content"] == "Second try."
        assert [m["id"] for m in bot_messages(fake_discord, general)] == [answer["id"]]
        assert len([r for r in fake_discord.requests if r.route == POST]) == 1
    stored = sqlite3.connect(tmp_path / "ember.db")
    try:
        usage = stored.execute("SELECT count(*) FROM usage").fetchone()
        replies = stored.execute("SELECT status, text FROM replies").fetchall()
    finally:
        stored.close()
    assert usage == (2,) and replies == [("done", "Second try.")]


async def test_continue_carries_on_an_answer_cut_at_max_tokens(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend(
        [Reply.text(["The first half"], stop_reason="max_tokens"), Reply.text([" and the second half."])]
    )
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        ember.client.inbound.edit_interval = 0.05
        alice = fake_discord.user("alice")
        answer = await ask(ember, alice, "write a lot")
        assert [c.split(":")[1] for c in custom_ids(answer)] == ["regen", "cont"]

        await press(ember, alice, answer, "cont")
        await ember.wait(lambda r: finished(r) and str(answer["id"]) not in r.path)
        general = fake_discord.channel("general")
        messages = bot_messages(fake_discord, general)
        text = "".join(m["content"] for m in messages)
        assert "The first half" in text and "second half." in text
        assert custom_ids(fake_discord.messages[int(answer["id"])]) == []  # spent
        assert len(fake_anthropic.requests) == 2


async def test_buttons_still_work_after_a_restart(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend([Reply.text(["Before the restart."]), Reply.text(["After the restart."])])
    settings = ember_settings(tmp_path, fake_anthropic)
    bob = fake_discord.user("bob")
    carol = FakeUser("carol")
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        answer = await ask(ember, bob, "remember me")

    # A new process: a new client and runtime, nothing in memory, the same database.
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        fake_discord.add_user(carol)
        await press(ember, carol, answer, "regen")  # not in the server, not the asker
        [notice] = await ember.wait(lambda r: r.route == FOLLOWUP)
        assert NOT_YOURS in notice.body["content"]

        await press(ember, bob, answer, "regen")
        await ember.wait(finished, count=2)
        assert fake_discord.messages[int(answer["id"])]["content"] == "After the restart."
        assert turns(fake_anthropic.requests[1]) == [("user", "Bob: @Ember remember me")]
