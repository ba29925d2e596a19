"""Conversations on Discord end to end: the real discord.py client against the fake Discord and
the fake Anthropic API. Each trigger, the context each one reads, streaming edits, long replies,
and model text that would ping people."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest

from bots.discord.sink import TYPING_AFTER
from tests.discord_support import (
    EDIT,
    POST,
    TYPING,
    bot_messages,
    custom_ids,
    ember_settings,
    finished,
    posts_in,
    running_ember,
    turns,
    writes_to,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import INTENT_MESSAGE_CONTENT, FakeDiscord, FakeUser


async def test_a_mention_shows_the_first_tokens_at_once_then_the_whole_answer(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    held = Reply.held(["Hello", " there, Alice."], after=1)
    fake_anthropic.script.append(held)
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        alice, general = fake_discord.user("alice"), fake_discord.channel("general")
        question = await fake_discord.say(alice, general, f"{fake_discord.bot.mention} hi")

        # The model is still holding the rest: the first words are already on Discord.
        [post] = await ember.wait(posts_in(general.id))
        assert post.body["content"] == "Hello"
        assert post.body["message_reference"]["message_id"] == int(question["id"])
        assert any(":stop:" in c for c in custom_ids(post.body))
        # The first words came before typing was due: no typing call spent the budget.
        assert not [r for r in fake_discord.requests if r.route == TYPING]

        held.release.set()
        await ember.wait(finished)
        [answer] = bot_messages(fake_discord, general)
        assert answer["content"] == "Hello there, Alice."
        assert answer["mentions"] == []  # the reply does not ping the asker either
        [request] = fake_anthropic.requests
        assert turns(request)[-1] == ("user", "Alice: @Ember hi")


async def test_a_slow_model_shows_typing_until_its_first_words(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Well, ", "hello."], first_token_delay=TYPING_AFTER + 0.5))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        alice, general = fake_discord.user("alice"), fake_discord.channel("general")
        await fake_discord.say(alice, general, f"{fake_discord.bot.mention} hi")
        [post] = await ember.wait(posts_in(general.id))
        typing = [r for r in fake_discord.requests if r.route == TYPING]
        assert typing and typing[0].time <= post.time
        await ember.wait(finished)
        assert len([r for r in fake_discord.requests if r.route == TYPING]) == len(typing)  # then stopped


async def test_a_plain_message_in_an_ordinary_channel_is_not_for_ember(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        bob, general = fake_discord.user("bob"), fake_discord.channel("general")
        await fake_discord.say(bob, general, "lunch anyone?")
        await fake_discord.say(bob, general, f"{fake_discord.bot.mention} are you there?")
        await ember.wait(finished)
        assert len(fake_anthropic.requests) == 1
        assert turns(fake_anthropic.requests[0]) == [("user", "Bob: @Ember are you there?")]


async def test_a_reply_to_ember_is_answered_with_the_reply_chain_read_fresh(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend([Reply.text(["Four."]), Reply.text(["Five."])])
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        general = fake_discord.channel("general")
        unrelated = await fake_discord.say(alice, general, "something else entirely")
        question = await fake_discord.say(alice, general, f"{fake_discord.bot.mention} what is 2+2?")
        await ember.wait(finished)
        [answer] = bot_messages(fake_discord, general)

        # Alice corrects her question afterwards (no event needed: context is read from Discord).
        fake_discord.message_update(int(question["id"]), content=f"{fake_discord.bot.mention} what is 2+3?")
        # Bob replies to ember without mentioning it (no ping, so no mention either).
        await fake_discord.say(bob, general, "are you sure?", reply_to=int(answer["id"]), ping_reply=False)
        await ember.wait(finished, count=2)

        second = fake_anthropic.requests[1]
        assert turns(second) == [
            ("user", "Alice: @Ember what is 2+3?"),
            ("assistant", "Four."),
            ("user", "Bob: are you sure?"),
        ]
        assert unrelated["content"] not in str(second.body)


async def test_a_deleted_message_leaves_the_reply_chain(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend([Reply.text(["Noted."]), Reply.text(["Still here."])])
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        alice, general = fake_discord.user("alice"), fake_discord.channel("general")
        secret = await fake_discord.say(alice, general, f"{fake_discord.bot.mention} my secret is 42")
        await ember.wait(finished)
        [answer] = bot_messages(fake_discord, general)
        await fake_discord.dispatch("MESSAGE_DELETE", fake_discord.message_delete(int(secret["id"])))
        await fake_discord.say(alice, general, "what was it?", reply_to=int(answer["id"]))
        await ember.wait(finished, count=2)
        second = fake_anthropic.requests[1]
        assert "42" not in str(second.body["messages"])
        # The chain ends where a message is gone; the API's first turn must be a person's, so
        # ember's lone answer before it goes too.
        assert turns(second) == [("user", "Alice: what was it?")]


async def test_every_message_in_a_thread_ember_opened_is_answered_with_the_thread_as_context(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Good question."]))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        general = fake_discord.channel("general")
        mine = fake_discord.new_thread(general, "ember's thread", owner=fake_discord.bot)
        theirs = fake_discord.new_thread(general, "bob's thread", owner=bob)
        for thread in (mine, theirs):
            await fake_discord.dispatch("THREAD_CREATE", fake_discord.thread_create(thread))
        fake_discord.message(alice, mine, "we were talking about tea")
        await fake_discord.say(bob, theirs, "nobody asked ember here")
        await fake_discord.say(bob, mine, "what about coffee?")

        await ember.wait(finished)
        [answer] = bot_messages(fake_discord, mine)
        assert answer["content"] == "Good question."
        assert bot_messages(fake_discord, theirs) == []
        [request] = fake_anthropic.requests
        assert turns(request) == [("user", "Alice: we were talking about tea\nBob: what about coffee?")]


async def test_every_message_in_a_room_channel_is_answered_with_recent_history(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    room = fake_discord.channel("opus")
    settings = ember_settings(tmp_path, fake_anthropic, discord={"room_channels": [str(room.id)]})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        fake_discord.message(bob, room, "the sea is calm today")
        await fake_discord.say(alice, room, "what do you make of that?")
        await ember.wait(finished)
        assert len(bot_messages(fake_discord, room)) == 1
        [request] = fake_anthropic.requests
        assert turns(request) == [("user", "Bob: the sea is calm today\nAlice: what do you make of that?")]


async def test_direct_messages_are_answered_when_allowed(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Hello, Carol."]))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        carol = fake_discord.add_user(FakeUser("carol", global_name="Carol"))
        dm = fake_discord.dm_channel(carol)
        await fake_discord.say(carol, dm, "hello?")
        await ember.wait(finished)
        assert [m["content"] for m in bot_messages(fake_discord, dm)] == ["Hello, Carol."]
        assert turns(fake_anthropic.requests[0]) == [("user", "Carol: hello?")]


async def test_direct_messages_are_refused_in_one_line_when_turned_off(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, discord={"allow_dms": False})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        carol = fake_discord.add_user(FakeUser("carol"))
        dm = fake_discord.dm_channel(carol)
        await fake_discord.say(carol, dm, "hello?")
        [refusal] = await ember.wait(posts_in(dm.id))
        assert "direct messages" in refusal.body["content"]
        assert refusal.body["allowed_mentions"] == {"parse": []}
        assert fake_anthropic.requests == []


async def test_other_bots_are_ignored_unless_allowed(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        helper = fake_discord.add_user(FakeUser("helper", bot=True))
        general = fake_discord.channel("general")
        await fake_discord.say(helper, general, f"{fake_discord.bot.mention} beep")
        await fake_discord.say(fake_discord.user("bob"), general, f"{fake_discord.bot.mention} boop")
        await ember.wait(finished)
        assert [turns(r) for r in fake_anthropic.requests] == [[("user", "Bob: @Ember boop")]]

    settings = ember_settings(tmp_path, fake_anthropic, chat={"allow_bots": True})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        await fake_discord.say(helper, general, f"{fake_discord.bot.mention} beep")
        await ember.wait(finished, count=2)
        assert turns(fake_anthropic.requests[-1]) == [("user", "helper: @Ember beep")]


async def test_streaming_edits_each_message_at_most_once_per_interval(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    chunks = [f"word{i} " for i in range(30)]
    fake_anthropic.script.append(Reply.text(chunks, token_delay=0.02))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        interval = 0.15
        ember.client.inbound.edit_interval = interval
        general = fake_discord.channel("general")
        await fake_discord.say(fake_discord.user("alice"), general, f"{fake_discord.bot.mention} count")
        await ember.wait(finished)

        [answer] = bot_messages(fake_discord, general)
        assert answer["content"] == "".join(chunks)
        [post] = [r for r in fake_discord.requests if r.route == POST]
        edits = writes_to(fake_discord.requests, answer["id"])
        text_edits = [e for e in edits if "content" in e.body]
        # Streamed (more than one write) but throttled (fewer writes than tokens).
        assert 1 <= len(text_edits) < len(chunks) - 1
        shown = [post.body["content"], *(e.body["content"] for e in text_edits)]
        assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(shown))
        # Spacing per message: every write (text or buttons) waits for the interval since the last.
        times = [post.time, *(e.time for e in edits)]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= interval - 0.01, gaps


async def test_a_long_reply_continues_in_new_messages_without_splitting_a_code_fence(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    code = "".join(f"print('line {i:03}')  # a comment to make the line longer\n" for i in range(80))
    text = f"Here is the program:\n\n```python\n{code}```\n\nThat is all."
    assert len(text) > 4000
    fake_anthropic.script.append(Reply.text([text[i : i + 400] for i in range(0, len(text), 400)]))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        ember.client.inbound.edit_interval = 0.05
        general = fake_discord.channel("general")
        await fake_discord.say(fake_discord.user("alice"), general, f"{fake_discord.bot.mention} code please")
        await ember.wait(finished)

        parts = bot_messages(fake_discord, general)
        assert len(parts) == 3
        for part in parts:
            assert len(part["content"]) <= 2000
            assert part["content"].count("```") % 2 == 0, part["content"][-80:]
        assert parts[1]["content"].startswith("```python\n")
        assert parts[2]["content"].endswith("That is all.")
        # Each part replies to the one before, so the chain reads back through all of them.
        for earlier, later in itertools.pairwise(parts):
            assert later["message_reference"]["message_id"] == earlier["id"]
        # Only the last part keeps buttons.
        assert [bool(p["components"]) for p in parts] == [False, False, True]
        rebuilt = "".join(p["content"] for p in parts)
        assert rebuilt.replace("\n```", "").replace("```python\n", "").count("print(") == 80


async def test_model_text_never_pings_anyone(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    alice, moderator = fake_discord.user("alice"), fake_discord.role("moderator")
    pings = f"@everyone @here {alice.mention} {moderator.mention} "
    # Three messages or so: enough to create and edit several, within the channel's write window.
    fake_anthropic.script.append(Reply.text([pings, "and again ", pings * 80], token_delay=0.01))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        ember.client.inbound.edit_interval = 0.05
        general = fake_discord.channel("general")
        await fake_discord.say(fake_discord.user("bob"), general, f"{fake_discord.bot.mention} shout")
        await ember.wait(finished)

        writes = [r for r in fake_discord.requests if r.route in (POST, EDIT)]
        assert len({r.path for r in writes}) >= 3  # several messages, created and edited
        assert all(r.body["allowed_mentions"] == {"parse": []} for r in writes)
        for message in bot_messages(fake_discord, general):
            assert message["mention_everyone"] is False
            assert message["mentions"] == [] and message["mention_roles"] == []


async def test_a_model_outage_is_one_clear_line_with_a_trace_id(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend(Reply.status(529) for _ in range(5))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        general = fake_discord.channel("general")
        await fake_discord.say(fake_discord.user("alice"), general, f"{fake_discord.bot.mention} hi")
        [line] = await ember.wait(posts_in(general.id))
        assert "trace" in line.body["content"] and "Traceback" not in line.body["content"]
        assert line.body["content"].count("\n") == 0
        assert len(fake_anthropic.requests) >= 1


async def test_images_go_to_the_model_and_other_files_are_noted(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        general = fake_discord.channel("general")
        files = [
            fake_discord.attachment("cat.png", png, channel=general),
            fake_discord.attachment("notes.pdf", b"%PDF-1.4", channel=general),
        ]
        await fake_discord.say(
            fake_discord.user("alice"), general, f"{fake_discord.bot.mention} look", attachments=files
        )
        await ember.wait(finished)
        [request] = fake_anthropic.requests
        [content] = [m["content"] for m in request.body["messages"]]
        [image] = [b for b in content if b["type"] == "image"]
        assert image["source"]["media_type"] == "image/png"
        [text] = [b["text"] for b in content if b["type"] == "text"]
        assert "notes.pdf" in text and "skipped" in text and "cat.png" not in text


async def test_without_the_message_content_intent_ember_says_what_it_cannot_see(
    tmp_path: Path, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bots.discord")
    async with FakeDiscord(application_flags=0) as fake:
        room = fake.channel("opus")
        settings = ember_settings(tmp_path, fake_anthropic, discord={"room_channels": [str(room.id)]})
        with fake.pointed():
            async with running_ember(fake, fake_anthropic, settings) as ember:
                [identify] = await fake.wait_for_frame(lambda f: f.op == 2)
                assert not identify.d["intents"] & INTENT_MESSAGE_CONTENT
                [warning] = [r for r in caplog.records if "message content intent" in r.getMessage()]
                assert str(room.id) in warning.getMessage()
                assert "Developer Portal" in warning.getMessage()

                alice = fake.user("alice")
                await fake.say(alice, room, "unseen words")  # arrives blank: not a question
                await fake.say(alice, room, f"{fake.bot.mention} can you see this?")
                await ember.wait(finished)
                assert [turns(r)[-1] for r in fake_anthropic.requests] == [
                    ("user", "Alice: @Ember can you see this?")
                ]
