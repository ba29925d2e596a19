"""The prompt preview where conversations live: "Show the prompt" on any message of a thread
(Slack's message shortcut, Discord's message menu command) shows that conversation's prompt to
whoever chose it, and only to them. The real slack-bolt and discord.py against the fakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.slack.manifest import manifest
from bots.slack.shortcuts import SHOW_PROMPT
from core import SHOW_PROMPT_LABEL, SlackSettings
from tests import discord_support, slack_support
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import EPHEMERAL, FakeDiscord
from tests.fakes.slack_server import FakeSlack

MODES = pytest.mark.parametrize("mode", ["socket", "http"])


@MODES
async def test_the_slack_shortcut_shows_a_threads_prompt_privately_in_that_thread(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.append(Reply.text(["Tea, then."]))
    settings = slack_support.ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with slack_support.running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "the kettle is on")
        await ember.deliver(mention)
        await ember.wait(slack_support.finished)
        await ember.idle()
        later = fake_slack.message("C1", "U2", "what about biscuits", thread_ts=mention["ts"])
        # Bob chooses the shortcut on a message inside the thread; the slash command could not
        # have seen this thread at all.
        await ember.press(fake_slack.message_shortcut("U2", "C1", later["ts"], SHOW_PROMPT))
        await ember.idle()
        await ember.command("prompt", user_id="U2", channel_id="C1")  # still there, channel-wide
        await ember.idle()
    # One private answer shows the thread: the shortcut's (the slash command's shows the channel).
    [shown] = [e for e in fake_slack.ephemerals if "kettle" in str(e["text"])]
    assert (shown["channel"], shown["user"], shown["thread_ts"]) == ("C1", "U2", mention["ts"])
    assert "the kettle is on" in shown["text"] and "Tea, then." in shown["text"]
    assert len(fake_anthropic.requests) == 1  # a preview, not a question
    # Nothing went to the channel for everyone to see.
    assert not [c for c in fake_slack.calls_to("chat.postMessage") if "kettle" in str(c.args.get("text"))]


def test_the_manifest_declares_the_message_shortcut() -> None:
    for mode in ("socket", "http"):
        data = manifest(SlackSettings(mode=mode))  # type: ignore[arg-type]
        shortcut, _stop = data["features"]["shortcuts"]
        assert shortcut["type"] == "message" and shortcut["callback_id"] == SHOW_PROMPT
        assert shortcut["name"] == SHOW_PROMPT_LABEL
        assert len(shortcut["description"]) <= 80  # Slack's limit for a shortcut's description
        assert data["settings"]["interactivity"]["is_enabled"] is True


async def test_the_discord_menu_command_shows_a_threads_prompt_privately(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    settings = discord_support.ember_settings(tmp_path, fake_anthropic)
    async with discord_support.running_ember(fake_discord, fake_anthropic, settings) as ember:
        [menu] = [c for c in fake_discord.commands[None] if c.get("type") == 3]
        assert menu["name"] == SHOW_PROMPT_LABEL  # synced beside /opus, which stays
        assert any(c["name"] == "opus" for c in fake_discord.commands[None])
        alice, bob = fake_discord.user("alice"), fake_discord.user("bob")
        general = fake_discord.channel("general")
        thread = fake_discord.new_thread(general, "ember's thread", owner=fake_discord.bot)
        await fake_discord.dispatch("THREAD_CREATE", fake_discord.thread_create(thread))
        fake_discord.message(alice, general, "chatter outside the thread")
        fake_discord.message(alice, thread, "the kettle is on")
        chosen = fake_discord.message(bob, thread, "and biscuits?")
        interaction = fake_discord.message_command(bob, SHOW_PROMPT_LABEL, int(chosen["id"]))
        await fake_discord.dispatch("INTERACTION_CREATE", interaction)
        [ack] = await ember.wait(
            lambda r: r.route == discord_support.CALLBACK and interaction["id"] in r.path
        )
    assert ack.body["type"] == 4 and ack.body["data"]["flags"] & EPHEMERAL
    text = ack.body["data"]["content"]
    assert "Alice: the kettle is on" in text and "Bob: and biscuits?" in text
    assert "chatter outside" not in text
    assert fake_anthropic.requests == []  # a preview, not a question
