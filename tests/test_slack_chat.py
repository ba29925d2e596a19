"""Conversations on Slack end to end: the real slack-bolt AsyncApp (Socket Mode and HTTP mode)
against the fake Slack and the fake Anthropic API."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.slack.convert import unescape
from core.chat.wording import DMS_OFF
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import (
    ember_settings,
    finished,
    message_writes,
    method,
    running_ember,
    shown_text,
)

MODES = pytest.mark.parametrize("mode", ["socket", "http"])


def prompt_text(request_body: dict[str, object]) -> str:
    """Everything the model was sent in its last user turn, as one string."""
    messages = request_body["messages"]
    assert isinstance(messages, list)
    content = messages[-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


@MODES
async def test_a_mention_is_answered_in_its_thread_by_streaming(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.append(Reply.text(["Hello ", "there"]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "hi there")
        await ember.deliver(mention)
        [done] = await ember.wait(finished)
        await ember.idle()
    [start] = fake_slack.calls_to("chat.startStream")
    assert start.args["thread_ts"] == mention["ts"]
    assert (start.args["recipient_user_id"], start.args["recipient_team_id"]) == ("U1", "T1")
    assert done.method == "chat.stopStream"
    assert shown_text(fake_slack, "C1", mention["ts"]) == "Hello there"
    assert not fake_slack.calls_to("chat.postMessage")
    # The model reads the words, not the mention that addressed them.
    request = fake_anthropic.requests[0]
    assert "hi there" in prompt_text(request.body) and "UBOT" not in prompt_text(request.body)


async def test_a_mention_of_someone_slack_cannot_describe_is_still_answered(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Hi"]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        gone = fake_slack.app_mention("C1", "U1", "what would <@UGONE> say?")
        await ember.deliver(gone)  # users.info: user_not_found (deleted, or another org's)
        await ember.wait(finished)
        await ember.idle()
    assert "what would @UGONE say?" in prompt_text(fake_anthropic.requests[0].body)
    assert shown_text(fake_slack, "C1", gone["ts"]) == "Hi"


async def test_names_slack_refuses_to_give_degrade_to_ids(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Still here"]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        # Rate limited past the SDK's retries, for the speaker and the person mentioned alike.
        fake_slack.fail_next("users.info", "ratelimited", retry_after=0, times=50)
        limited = fake_slack.app_mention("C1", "U1", "ask <@U1> about it")
        await ember.deliver(limited)
        await ember.wait(finished)
        await ember.idle()
    assert "ask @U1 about it" in prompt_text(fake_anthropic.requests[0].body)
    assert shown_text(fake_slack, "C1", limited["ts"]) == "Still here"


@MODES
async def test_a_thread_follow_up_needs_no_mention(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.extend([Reply.text(["first"]), Reply.text(["second"])])
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "tell me a story")
        await ember.deliver(mention)
        await ember.wait(finished)
        await ember.idle()
        await ember.deliver(fake_slack.message("C1", "U1", "and then?", thread_ts=mention["ts"]))
        await ember.wait(finished, count=2)
        await ember.idle()
        # A top-level message without a mention is not for the model.
        await ember.deliver(fake_slack.message("C1", "U1", "lunch anyone?"))
        await ember.idle()
    assert len(fake_anthropic.requests) == 2
    follow_up = fake_anthropic.requests[1].body["messages"]
    # The thread so far, from ember's own store: question, answer, follow-up.
    assert [m["role"] for m in follow_up] == ["user", "assistant", "user"]
    assert shown_text(fake_slack, "C1", mention["ts"]) == "firstsecond"


async def test_a_thread_not_involving_the_bot_is_left_alone(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        root = fake_slack.message("C1", "U2", "team thread")
        await ember.deliver(root)
        await ember.deliver(fake_slack.message("C1", "U1", "a reply", thread_ts=root["ts"]))
        await ember.idle()
    assert not fake_anthropic.requests
    assert not message_writes(fake_slack.calls)


@MODES
async def test_a_direct_message_is_answered_in_the_dm(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.append(Reply.text(["Hi ", "alice"]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    dm = fake_slack.dm("U1")
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        await ember.deliver(fake_slack.message(dm, "U1", "hello"))
        await ember.wait(finished)
        await ember.idle()
    [posted] = fake_slack.calls_to("chat.postMessage")
    assert posted.args["channel"] == dm and "thread_ts" not in posted.args
    [reply] = [m for m in fake_slack.messages(dm) if m.get("user") == fake_slack.bot_user_id]
    assert reply["text"] == "Hi alice"


async def test_direct_messages_can_be_switched_off(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"allow_dms": False})
    dm = fake_slack.dm("U1")
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        await ember.deliver(fake_slack.message(dm, "U1", "hello"))
        await ember.idle()
    assert not fake_anthropic.requests
    # Never silence: the person is told, once, where ember does talk.
    [told] = [m for m in fake_slack.messages(dm) if m.get("user") == fake_slack.bot_user_id]
    assert told["text"] == DMS_OFF


@MODES
async def test_a_redelivered_event_is_answered_once(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.extend([Reply.text(["once"]), Reply.text(["twice?"])])
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "hi")
        await ember.deliver(mention, event_id="Ev0001")
        # Slack retries (retry headers, the same event_id), and sends the same words again as a
        # `message` event under its own event_id.
        await ember.deliver(mention, event_id="Ev0001", retry=1)
        await ember.deliver(fake_slack.event_for("C1", mention["ts"]), event_id="Ev0002")
        await ember.wait(finished)
        await ember.idle()
    assert len(fake_anthropic.requests) == 1
    assert len(fake_slack.calls_to("chat.startStream")) == 1


async def test_a_message_seen_before_a_restart_is_not_answered_again(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    mention = fake_slack.app_mention("C1", "U1", "hi")
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        await ember.deliver(mention, event_id="Ev0001")
        await ember.wait(finished)
    # A new process (no memory of recent events) gets Slack's retry: the store remembers.
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        await ember.deliver(mention, event_id="Ev0001", retry=2)
        await ember.idle()
    assert len(fake_anthropic.requests) == 1


async def test_the_bots_own_messages_and_other_bots_are_ignored(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "hi")
        await ember.deliver(mention)
        [done] = await ember.wait(finished)
        await ember.idle()
        await ember.deliver(fake_slack.event_for("C1", done.args["ts"]))  # its own reply
        await ember.deliver(
            fake_slack.bot_message("C1", f"{fake_slack.mention} ping", thread_ts=mention["ts"])
        )
        await ember.idle()
    assert len(fake_anthropic.requests) == 1


SPECIALS = (
    "<!channel> <!here> <!everyone> <@U1> <@U2|boss> <#C1|general> <!subteam^S1|@mods> "
    "<http://x|fake> <https://evil.example|https://bank.example> Tom & Jerry &amp; &lt;b&gt;"
)


@MODES
async def test_model_text_reaches_slack_as_plain_text(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.append(Reply.text([SPECIALS[:40], SPECIALS[40:]]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "say something rude")
        await ember.deliver(mention)
        await ember.wait(finished)
        await ember.idle()
    writes = message_writes(fake_slack.calls)
    assert writes
    for call in writes:
        for key in ("text", "markdown_text"):
            assert "<" not in str(call.args.get(key, "")) and ">" not in str(call.args.get(key, ""))
        for block in call.args.get("blocks") or []:
            assert "<" not in str(block.get("text", "")) and ">" not in str(block.get("text", ""))
        assert "link_names" not in call.args and "parse" not in call.args
    # What people read is exactly what the model wrote.
    assert unescape(shown_text(fake_slack, "C1", mention["ts"])) == SPECIALS


async def test_the_fallback_path_escapes_too(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.disable_streaming("unknown_method")
    fake_anthropic.script.append(Reply.text([SPECIALS]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "again")
        await ember.deliver(mention)
        await ember.wait(finished)
        await ember.idle()
    for call in fake_slack.calls_to("chat.postMessage") + fake_slack.calls_to("chat.update"):
        assert "<" not in call.args["text"] and ">" not in call.args["text"]
        assert "<" not in call.args["blocks"][0]["text"]
        assert "link_names" not in call.args and "parse" not in call.args
    assert unescape(shown_text(fake_slack, "C1", mention["ts"])) == SPECIALS


async def test_forged_and_stale_requests_are_refused(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": "http"})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        event = fake_slack.http_event(fake_slack.app_mention("C1", "U1", "hi"))
        forged = await ember.post(event, forge=True)
        stale = await ember.post(event, stale=True)
        command = await ember.post(
            fake_slack.http_slash_command(text="model opus-3", user_id="U2"), forge=True
        )
        await ember.idle()
    assert (forged.status, stale.status, command.status) == (401, 401, 401)
    assert not fake_anthropic.requests
    assert not [c for c in fake_slack.calls if c.method.startswith("chat.")]
    assert not fake_slack.calls_to("response_url")


async def test_a_model_failure_is_one_line_with_a_trace_id(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.status(500))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "hi")
        await ember.deliver(mention)
        await ember.wait(method("chat.stopStream"))
        await ember.idle()
    text = shown_text(fake_slack, "C1", mention["ts"])
    assert "trace" in text.lower()
    assert len(text.strip().splitlines()) == 1
