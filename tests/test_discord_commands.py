"""`/opus` on Discord end to end: ask (a thread named after the prompt), prompt, model and forget,
the options Discord is told about, and acknowledgement within Discord's three seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import OPUS_3
from tests.discord_support import (
    CALLBACK,
    EDIT_ORIGINAL,
    FOLLOWUP,
    Ember,
    bot_messages,
    custom_ids,
    ember_settings,
    finished,
    running_ember,
    turns,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import EPHEMERAL, FakeChannel, FakeDiscord, FakeUser, Json, Recorded

HAIKU = "claude-3-haiku-20240307"
MODELS = {
    "opus-3": {"display_name": "Claude Opus 3", "backends": [{"provider": "anthropic", "model": OPUS_3}]},
    "haiku": {"display_name": "Claude Haiku 3", "backends": [{"provider": "anthropic", "model": HAIKU}]},
}


async def slash(
    ember: Ember, user: FakeUser, channel: FakeChannel, command: str, options: dict[str, Any] | None = None
) -> Json:
    payload = ember.discord.slash_command(user, channel, command, options)
    await ember.discord.dispatch("INTERACTION_CREATE", payload)
    return payload


async def first_callback(ember: Ember, interaction: Json) -> Recorded:
    [callback] = await ember.wait(lambda r: r.route == CALLBACK and interaction["id"] in r.path)
    return callback


async def test_the_slash_commands_are_synced_with_their_options(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, models=MODELS, discord={"command": "claude"})
    async with running_ember(fake_discord, fake_anthropic, settings):
        [root] = [c for c in fake_discord.commands[None] if c.get("type", 1) == 1]  # beside the menu command
        assert root["name"] == "claude"
        subcommands = {o["name"]: o for o in root["options"]}
        assert {"ask", "prompt", "model", "forget", "access", "essays", "help"} <= set(subcommands)
        [prompt] = subcommands["ask"]["options"]
        assert (prompt["name"], prompt["type"], prompt["required"]) == ("prompt", 3, True)
        [alias] = subcommands["model"]["options"]
        assert [c["value"] for c in alias["choices"]] == ["haiku", "opus-3"]
        assert alias["required"] is False


async def test_ask_opens_a_thread_named_after_the_prompt_and_answers_there(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend([Reply.text(["Because of Rayleigh scattering."]), Reply.text(["Yes."])])
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        general = fake_discord.channel("general")
        interaction = await slash(ember, alice, general, "opus ask", {"prompt": "Why is the sky blue?"})

        ack = await first_callback(ember, interaction)
        assert ack.body["type"] == 4  # answered at once with the question, for everyone
        [embed] = ack.body["data"]["embeds"]
        assert embed["description"] == "Why is the sky blue?"
        await ember.wait(finished)
        [thread] = [c for c in fake_discord.channels.values() if c.is_thread]
        assert thread.name == "Why is the sky blue?" and thread.owner is fake_discord.bot
        assert [m["content"] for m in bot_messages(fake_discord, thread)] == [
            "Because of Rayleigh scattering."
        ]
        assert turns(fake_anthropic.requests[0]) == [("user", "Alice: Why is the sky blue?")]

        # The thread is ember's: Bob's next words there need no mention, and the question
        # (ember's own message, holding Alice's words) reads back as Alice's.
        await fake_discord.say(bob, thread, "is that also why sunsets are red?")
        await ember.wait(finished, count=2)
        assert turns(fake_anthropic.requests[1]) == [
            ("user", "Alice: Why is the sky blue?"),
            ("assistant", "Because of Rayleigh scattering."),
            ("user", "Bob: is that also why sunsets are red?"),
        ]


async def test_ask_answers_inline_when_threads_are_off(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, discord={"threads": False})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        general = fake_discord.channel("general")
        await slash(ember, fake_discord.user("bob"), general, "opus ask", {"prompt": "hello"})
        await ember.wait(finished)
        assert not [c for c in fake_discord.channels.values() if c.is_thread]
        question, answer = bot_messages(fake_discord, general)
        assert answer["message_reference"]["message_id"] == question["id"]


async def test_prompt_shows_privately_what_the_model_would_receive(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    room = fake_discord.channel("opus")
    settings = ember_settings(tmp_path, fake_anthropic, discord={"room_channels": [str(room.id)]})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        bob = fake_discord.user("bob")
        fake_discord.message(bob, room, "the kettle is on")
        interaction = await slash(ember, bob, room, "opus prompt")
        ack = await first_callback(ember, interaction)
        assert ack.body["type"] == 4 and ack.body["data"]["flags"] & EPHEMERAL
        text = ack.body["data"]["content"]
        assert "[system]" in text and "Bob: the kettle is on" in text
        assert fake_anthropic.requests == []  # a preview, not a question


async def test_a_slow_command_is_deferred_within_discords_three_seconds(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_discord.interaction_deadline = 3.0  # like Discord: a later first answer is refused
    room = fake_discord.channel("opus")
    settings = ember_settings(tmp_path, fake_anthropic, discord={"room_channels": [str(room.id)]})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        bob = fake_discord.user("bob")
        fake_discord.message(bob, room, "the kettle is on")
        # Reading the room's history is rate limited for 2.5 s: the command outlives ember's
        # own 2-second budget, so it must defer first and answer afterwards.
        fake_discord.fail_next("GET", "/channels/*/messages", 429, retry_after=2.5)
        interaction = await slash(ember, bob, room, "opus prompt")
        ack = await first_callback(ember, interaction)
        assert ack.body["type"] == 5 and ack.body["data"]["flags"] & EPHEMERAL
        [answer] = await ember.wait(lambda r: r.route == EDIT_ORIGINAL)
        assert "Bob: the kettle is on" in answer.body["content"]


async def test_model_shows_the_channel_model_and_only_moderators_change_it(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, models=MODELS)
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        general = fake_discord.channel("general")

        shown = await first_callback(ember, await slash(ember, bob, general, "opus model"))
        assert "`opus-3`" in shown.body["data"]["content"] and shown.body["data"]["flags"] & EPHEMERAL

        refused = await first_callback(
            ember, await slash(ember, bob, general, "opus model", {"alias": "haiku"})
        )
        assert "moderator" in refused.body["data"]["content"].lower()

        changed = await first_callback(
            ember, await slash(ember, alice, general, "opus model", {"alias": "haiku"})
        )
        assert "`haiku`" in changed.body["data"]["content"]
        assert not changed.body["data"].get("flags", 0) & EPHEMERAL  # everyone sees the change

        await fake_discord.say(bob, general, f"{fake_discord.bot.mention} who are you?")
        await ember.wait(finished)
        assert [r.model for r in fake_anthropic.requests] == [HAIKU]


async def test_forget_deletes_what_ember_stores_about_the_user(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        bob, general = fake_discord.user("bob"), fake_discord.channel("general")
        await fake_discord.say(bob, general, f"{fake_discord.bot.mention} remember this")
        await ember.wait(finished)
        [answer] = bot_messages(fake_discord, general)

        done = await first_callback(ember, await slash(ember, bob, general, "opus forget"))
        assert done.body["data"]["flags"] & EPHEMERAL
        assert "deleted 1 of your messages and 1 replies" in done.body["data"]["content"]

        # The reply is no longer stored, so its buttons cannot redo it.
        [regen] = [c for c in custom_ids(answer) if ":regen:" in c]
        await fake_discord.dispatch(
            "INTERACTION_CREATE", fake_discord.button_press(bob, int(answer["id"]), regen)
        )
        [notice] = await ember.wait(lambda r: r.route == FOLLOWUP)
        assert notice.body["flags"] & EPHEMERAL
        assert len(fake_anthropic.requests) == 1
