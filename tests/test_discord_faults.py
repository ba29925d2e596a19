"""Discord saying no: rate limits (discord.py waits out Retry-After and the reply still lands) and
missing permissions (a log line that says what to fix; ember carries on)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.discord_support import (
    CALLBACK,
    EDIT,
    POST,
    bot_messages,
    ember_settings,
    finished,
    running_ember,
)
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import FakeDiscord


async def test_a_rate_limited_reply_is_retried_after_retry_after_and_lands(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Patience ", "pays."], token_delay=0.05))
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        ember.client.inbound.edit_interval = 0.05
        general = fake_discord.channel("general")
        fake_discord.fail_next("POST", f"/channels/{general.id}/messages", 429, retry_after=0.4)
        fake_discord.fail_next("PATCH", f"/channels/{general.id}/messages/*", 429, retry_after=0.3)
        await fake_discord.say(fake_discord.user("alice"), general, f"{fake_discord.bot.mention} hi")
        # The final text travels with the buttons: the edit refused is the one that lands later.
        await ember.wait(lambda r: finished(r) and r.status < 300)

        posts = [r for r in fake_discord.requests if r.route == POST]
        assert [p.status for p in posts] == [429, 200]
        assert posts[1].time - posts[0].time >= 0.4  # waited as told
        assert posts[1].body["nonce"] == posts[0].body["nonce"]  # the same message, retried
        edits = [r for r in fake_discord.requests if r.route == EDIT]
        assert edits[0].status == 429 and edits[1].status == 200
        [answer] = bot_messages(fake_discord, general)
        assert answer["content"] == "Patience pays."


async def test_a_missing_send_permission_is_a_clear_log_line_and_ember_carries_on(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    fake_anthropic.script.extend([Reply.text(["Lost words."]), Reply.text(["Found words."])])
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        general, opus = fake_discord.channel("general"), fake_discord.channel("opus")
        fault = fake_discord.fail_next("POST", f"/channels/{general.id}/messages", 403, times=None)
        await fake_discord.say(fake_discord.user("alice"), general, f"{fake_discord.bot.mention} hi")
        await ember.wait(lambda r: r.route == POST and r.status == 403)

        # Still running: the next question, elsewhere, is answered.
        await fake_discord.say(fake_discord.user("alice"), opus, f"{fake_discord.bot.mention} hello?")
        await ember.wait(finished)
        assert [m["content"] for m in bot_messages(fake_discord, opus)] == ["Found words."]
        assert bot_messages(fake_discord, general) == []
        assert fault.hits == 1  # no notice is tried where the reply itself was refused

    [hint] = [r for r in caplog.records if "refused ember's reply" in r.getMessage()]
    assert str(general.id) in hint.getMessage() and "Send Messages" in hint.getMessage()
    assert "Missing Permissions" in hint.getMessage()
    assert any("trace" in r.getMessage() and r.name == "core.chat" for r in caplog.records)


async def test_ask_answers_in_the_channel_when_ember_may_not_open_threads(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bots.discord")
    async with running_ember(fake_discord, fake_anthropic, ember_settings(tmp_path, fake_anthropic)) as ember:
        general = fake_discord.channel("general")
        fake_discord.fail_next("POST", f"/channels/{general.id}/messages/*/threads", 403)
        payload = fake_discord.slash_command(fake_discord.user("bob"), general, "opus ask", {"prompt": "hi"})
        await fake_discord.dispatch("INTERACTION_CREATE", payload)
        await ember.wait(finished)
        question, answer = bot_messages(fake_discord, general)
        assert answer["message_reference"]["message_id"] == question["id"]
        assert [r.body["type"] for r in fake_discord.requests if r.route == CALLBACK] == [4]
    assert any("could not open a thread" in r.getMessage() for r in caplog.records)


async def test_without_read_message_history_ember_answers_without_context(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bots.discord")
    room = fake_discord.channel("opus")
    settings = ember_settings(tmp_path, fake_anthropic, discord={"room_channels": [str(room.id)]})
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        bob = fake_discord.user("bob")
        fake_discord.message(bob, room, "earlier words")
        fake_discord.fail_next("GET", f"/channels/{room.id}/messages", 403)
        await fake_discord.say(bob, room, "anyone?")
        await ember.wait(finished)
        [request] = fake_anthropic.requests
        assert "earlier words" not in str(request.body["messages"])
    [warning] = [r for r in caplog.records if "cannot read history" in r.getMessage()]
    assert "Read Message History" in warning.getMessage()
