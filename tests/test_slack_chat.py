"""Conversations on Slack end to end: the real slack-bolt AsyncApp (Socket Mode and HTTP mode)
against the fake Slack and the fake Anthropic API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import ember_settings, finished, running_ember, shown_text

MODES = pytest.mark.parametrize("mode", ["socket", "http"])


@MODES
async def test_a_mention_is_answered_in_its_thread_by_streaming(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.append(Reply.text(["Hello ", "there"]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "hi")
        await ember.deliver(mention)
        [done] = await ember.wait(finished)
        await ember.idle()
    [start] = fake_slack.calls_to("chat.startStream")
    assert start.args["thread_ts"] == mention["ts"]
    assert done.method == "chat.stopStream"
    assert shown_text(fake_slack, "C1", mention["ts"]) == "Hello there"
    assert not fake_slack.calls_to("chat.postMessage")
