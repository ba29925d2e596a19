"""`/opus` on Slack end to end: the core's one grammar, acknowledged at once, answers for one
person ephemeral, moderator commands only for admins, owners and moderator user groups."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import OPUS_3
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackUser
from tests.slack_support import Ember, ember_settings, finished, method, running_ember, shown_text

MODES = pytest.mark.parametrize("mode", ["socket", "http"])


async def answer_to(
    ember: Ember, text: str, *, user_id: str = "U1", channel_id: str = "C1"
) -> dict[str, object]:
    """Run `/opus <text>` and return what came back through the response_url."""
    before = len(ember.slack.calls_to("response_url"))
    await ember.command(text, user_id=user_id, channel_id=channel_id)
    calls = await ember.wait(method("response_url"), count=before + 1)
    await ember.idle()
    return calls[-1].args


@MODES
async def test_a_good_command_is_answered_privately(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        answer = await answer_to(ember, "model")
    assert answer["response_type"] == "ephemeral"
    assert "This channel talks to *Claude Opus 3* (`opus-3`)" in str(answer["text"])


@MODES
@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("model opus-3 extra words", "Usage: /opus model [alias]"),
        ("ask", "Usage: /opus ask"),
        ("frobnicate", "unknown command"),
        ("", "/opus ask"),  # nothing typed: the list of commands
    ],
)
async def test_a_malformed_command_gets_a_usage_line(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str, typed: str, expected: str
) -> None:
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        answer = await answer_to(ember, typed)
    assert answer["response_type"] == "ephemeral"
    assert expected in str(answer["text"])
    assert not fake_anthropic.requests


@pytest.fixture
async def workspace() -> FakeSlack:
    """alice (member), bob (admin), olive (owner), mo (in the moderators' user group S0MODS)."""
    users = [
        SlackUser("U1", "alice"),
        SlackUser("U2", "bob", is_admin=True),
        SlackUser("U3", "olive", is_owner=True),
        SlackUser("U4", "mo"),
    ]
    return FakeSlack(users=users, channels=[SlackChannel("C1", "general")], usergroups={"S0MODS": ["U4"]})


@MODES
async def test_only_moderators_change_the_channels_model(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    models = {
        alias: {"display_name": name, "backends": [{"provider": "anthropic", "model": OPUS_3}]}
        for alias, name in (("opus-3", "Claude Opus 3"), ("sonnet", "Claude Sonnet"))
    }
    async with workspace as fake:
        settings = ember_settings(
            tmp_path, fake_anthropic, fake, slack={"mode": mode, "moderator_roles": ["S0MODS"]}, models=models
        )
        async with running_ember(fake, fake_anthropic, settings) as ember:
            refused = await answer_to(ember, "model sonnet", user_id="U1")
            still = await answer_to(ember, "model")
            by_admin = await answer_to(ember, "model sonnet", user_id="U2")
            by_owner = await answer_to(ember, "model opus-3", user_id="U3")
            by_group = await answer_to(ember, "model sonnet", user_id="U4")
            now = await answer_to(ember, "model")
    assert refused["response_type"] == "ephemeral" and "moderators only" in str(refused["text"])
    assert "(`opus-3`)" in str(still["text"])
    for changed in (by_admin, by_owner, by_group):
        assert changed["response_type"] == "in_channel" and "now talks to" in str(changed["text"])
    assert "(`sonnet`)" in str(now["text"])


@MODES
async def test_ask_opens_a_thread_and_streams_the_answer_into_it(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.append(Reply.text(["Four", "."]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack, slack={"mode": mode})
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        # As Slack sends it with escaping on: entities, and people as <@U…|name>.
        await ember.command('ask what is "2 + 2" &amp; <@U2|bob>\nthink <!channel>', user_id="U1")
        await ember.wait(finished)
        await ember.idle()
    [root_call] = fake_slack.calls_to("chat.postMessage")
    root = root_call.args["text"]
    assert root.startswith("<@U1> asked:\n>what is")
    assert "<!" not in root and ">think @channel" in root  # quoted, inert
    [root_message] = [m for m in fake_slack.messages("C1") if m.get("text") == root]
    assert shown_text(fake_slack, "C1", root_message["ts"]).endswith("Four.")
    sent = fake_anthropic.requests[0].body["messages"][-1]["content"]
    words = sent if isinstance(sent, str) else "".join(b.get("text", "") for b in sent)
    # The model reads what alice meant: names, not Slack's markup; quotes and lines kept.
    assert 'what is "2 + 2" & @Bob Admin\nthink @channel' in words


async def test_ask_where_the_bot_cannot_post_says_so(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    channels = [SlackChannel("C1", "general"), SlackChannel("C2", "private", kind="private", members=["U1"])]
    async with FakeSlack(channels=channels) as fake:
        settings = ember_settings(tmp_path, fake_anthropic, fake)
        async with running_ember(fake, fake_anthropic, settings) as ember:
            answer = await answer_to(ember, "ask hello", channel_id="C2")
    assert answer["response_type"] == "ephemeral" and "/invite" in str(answer["text"])
    assert not fake_anthropic.requests
