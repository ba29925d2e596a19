"""Slack paths end to end that the other tests leave out: room channels, images, and essay
subscriptions made with the real slash command. The real slack-bolt (both modes) against the
fake Slack, the fake Anthropic API and the loopback feed host."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.essay_support import now_post, seed_and_publish
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.feed_server import FeedServer
from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackUser, tiny_png
from tests.slack_support import ember_settings, finished, running_ember

MODES = pytest.mark.parametrize("mode", ["socket", "http"])


@pytest.fixture
def workspace() -> FakeSlack:
    """#general (C1), the room channel #opus (C2) and #essays (C3); alice is a member, bob an admin."""
    users = [SlackUser("U1", "alice"), SlackUser("U2", "bob", is_admin=True)]
    channels = [SlackChannel("C1", "general"), SlackChannel("C2", "opus"), SlackChannel("C3", "essays")]
    return FakeSlack(users=users, channels=channels)


def turns(request_body: dict[str, object]) -> list[tuple[str, str]]:
    """The model's messages as (role, text), images left out."""
    out = []
    for message in request_body["messages"]:  # type: ignore[attr-defined]
        content = message["content"]
        text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
        out.append((message["role"], text))
    return out


@MODES
async def test_every_message_in_a_room_channel_is_answered_in_the_channel_as_one_conversation(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.extend([Reply.text(["Hello, Alice."]), Reply.text(["Still here."])])
    async with workspace as fake:
        settings = ember_settings(
            tmp_path, fake_anthropic, fake, slack={"mode": mode, "room_channels": ["C2"]}
        )
        async with running_ember(fake, fake_anthropic, settings) as ember:
            await ember.deliver(fake.message("C1", "U1", "lunch anyone?"))  # an ordinary channel
            await ember.deliver(fake.message("C2", "U1", "good morning"))
            await ember.wait(finished)
            await ember.idle()
            await ember.deliver(fake.message("C2", "U2", "are you still there?"))
            await ember.wait(finished, count=2)
            await ember.idle()
    assert len(fake_anthropic.requests) == 2
    # No mention needed, and the channel is one conversation: the second question sees the first.
    assert turns(fake_anthropic.requests[1].body)[-3:] == [
        ("user", "alice: good morning"),
        ("assistant", "Hello, Alice."),
        ("user", "bob: are you still there?"),
    ]
    # Answered in the channel itself, not in threads (so posted and edited: streams need a thread).
    posts = fake.calls_to("chat.postMessage")
    assert [p.args["channel"] for p in posts] == ["C2", "C2"]
    assert all(not p.args.get("thread_ts") for p in posts)
    bot_texts = [m.get("text") for m in fake.messages("C2") if m.get("user") == fake.bot_user_id]
    assert bot_texts == ["Hello, Alice.", "Still here."]


@MODES
async def test_an_image_shared_with_a_message_reaches_the_model(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.append(Reply.text(["A very small picture."]))
    async with workspace as fake:
        settings = ember_settings(
            tmp_path, fake_anthropic, fake, slack={"mode": mode, "room_channels": ["C2"]}
        )
        async with running_ember(fake, fake_anthropic, settings) as ember:
            shared = fake.file_share("C2", "U1", "what is this?", [fake.image_file("dot.png")])
            await ember.deliver(shared)
            await ember.wait(finished)
            await ember.idle()
    [request] = fake_anthropic.requests
    content = request.body["messages"][-1]["content"]
    [image] = [b for b in content if b["type"] == "image"]
    assert image["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(tiny_png()).decode(),
    }
    assert any("what is this?" in b.get("text", "") for b in content if b["type"] == "text")
    # ember fetched the bytes itself, with its bot token (url_private needs it).
    [fetch] = fake.calls_to("url_private")
    assert fetch.token == fake.bot_token


@MODES
async def test_essays_subscribe_through_the_slash_command_then_an_essay_is_announced_there(
    tmp_path: Path,
    workspace: FakeSlack,
    fake_anthropic: FakeAnthropic,
    feed_server: FeedServer,
    mode: str,
) -> None:
    async with workspace as fake:
        settings = ember_settings(
            tmp_path, fake_anthropic, fake, slack={"mode": mode}, essays={"feeds": [feed_server.url()]}
        )
        async with running_ember(fake, fake_anthropic, settings) as ember:
            # Slack escapes the channel and the user group (`should_escape`), as typed by people.
            typed = "essays subscribe <#C3|essays> <!subteam^S0READERS|@readers>"
            await ember.command(typed, user_id="U1")  # alice is no moderator
            await ember.idle()
            assert await ember.runtime.essays.subscriptions("slack", fake.team_id) == []
            await ember.command(typed, user_id="U2")
            await ember.idle()
            [subscription] = await ember.runtime.essays.subscriptions("slack", fake.team_id)
            await seed_and_publish(ember.runtime, feed_server, now_post("subscribed", "Subscribed"))
            report = await ember.runtime.essays.deliver_pending()
    refused, accepted = [c.args["text"] for c in fake.calls_to("response_url")]
    assert "moderator" in refused.lower()
    assert accepted.startswith("New essays will now be announced in <#C3>")
    assert (subscription.channel_id, subscription.role_id) == ("C3", "S0READERS")
    assert report.sent == 1
    [post] = [c for c in fake.calls_to("chat.postMessage") if c.args.get("metadata")]
    assert post.args["channel"] == "C3" and post.args["text"].startswith("<!subteam^S0READERS> ")
