"""The fake Slack speaks what the real slack_sdk and slack-bolt expect: auth.test, Socket Mode
(apps.connections.open, envelopes, acks), the chat.* methods ember uses including native
streaming, 429 with Retry-After, and signed HTTP requests that bolt verifies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackLimits

SECRET = "test-signing-secret"


async def test_auth_test_names_the_bot_and_refuses_a_wrong_token(fake_slack: FakeSlack) -> None:
    client: AsyncWebClient = fake_slack.client()
    who = await client.auth_test()
    assert (who["user_id"], who["bot_id"], who["team_id"]) == ("UBOT", "B0BOT", "T1")
    stranger = AsyncWebClient(token="xoxb-wrong", base_url=fake_slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        await stranger.auth_test()
    assert refused.value.response["error"] == "invalid_auth"


async def test_socket_mode_delivers_envelopes_and_records_acks(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    app = AsyncApp(client=client)
    heard: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        heard.append(event)

    handler = AsyncSocketModeHandler(app, app_token=fake_slack.app_token, web_client=client)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await fake_slack.wait_connected()
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.token == fake_slack.app_token  # the app-level token, not the bot token
        ack = await fake_slack.send_event(fake_slack.app_mention("C1", "U1", "hello"))
        assert ack.envelope_id == fake_slack.envelopes[-1]["envelope_id"]
        # No listener for reactions: bolt does not ack, and the fake says so instead of hanging.
        with pytest.raises(TimeoutError):
            await fake_slack.send_event({"type": "reaction_added", "event_ts": "1.0"}, timeout=0.3)
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
    assert [e["text"] for e in heard] == ["<@UBOT> hello"]


async def test_chat_methods_store_what_they_say(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    root = await client.chat_postMessage(channel="C1", text="question")
    posted = await client.chat_postMessage(channel="C1", text="a &lt;b&gt;", thread_ts=root["ts"])
    await client.chat_update(channel="C1", ts=posted["ts"], text="edited")
    assert fake_slack.stored("C1", posted["ts"])["text"] == "edited"
    assert fake_slack.stored("C1", root["ts"])["reply_count"] == 1

    stream = await client.chat_startStream(
        channel="C1",
        thread_ts=root["ts"],
        markdown_text="Hel",
        recipient_user_id="U1",
        recipient_team_id="T1",
    )
    await client.chat_appendStream(channel="C1", ts=stream["ts"], markdown_text="lo")
    assert fake_slack.is_streaming("C1", stream["ts"])
    await client.chat_stopStream(channel="C1", ts=stream["ts"], blocks=[{"type": "divider"}])
    assert fake_slack.stored("C1", stream["ts"])["text"] == "Hello"
    assert not fake_slack.is_streaming("C1", stream["ts"])
    with pytest.raises(SlackApiError) as over:
        await client.chat_appendStream(channel="C1", ts=stream["ts"], markdown_text="more")
    assert over.value.response["error"] == "message_not_in_streaming_state"


async def test_the_sdk_stream_helper_works_on_the_fake(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    root = await client.chat_postMessage(channel="C1", text="question")
    streamer = await client.chat_stream(
        channel="C1", thread_ts=root["ts"], recipient_user_id="U1", recipient_team_id="T1", buffer_size=4
    )
    for piece in ("one ", "two ", "three"):
        await streamer.append(markdown_text=piece)
    await streamer.stop()
    [reply] = [m for m in fake_slack.thread("C1", root["ts"]) if m["ts"] != root["ts"]]
    assert reply["text"] == "one two three"


async def test_streams_into_channels_need_a_recipient_and_can_be_refused(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    root = await client.chat_postMessage(channel="C1", text="question")
    with pytest.raises(SlackApiError) as missing:
        await client.chat_startStream(channel="C1", thread_ts=root["ts"], markdown_text="x")
    assert missing.value.response["error"] == "missing_recipient_user_id"
    fake_slack.disable_streaming("unknown_method")
    with pytest.raises(SlackApiError) as unknown:
        await client.chat_startStream(
            channel="C1",
            thread_ts=root["ts"],
            markdown_text="x",
            recipient_user_id="U1",
            recipient_team_id="T1",
        )
    assert unknown.value.response["error"] == "unknown_method"


async def test_too_long_text_is_refused_as_slack_refuses_it(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel="C1", text="x" * 40_001)
    assert refused.value.response["error"] == "msg_too_long"


async def test_ratelimited_is_a_429_with_retry_after_that_the_sdk_honours(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=0)
    plain = fake_slack.client()
    with pytest.raises(SlackApiError) as limited:
        await plain.chat_postMessage(channel="C1", text="hi")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "0"
    assert limited.value.response["error"] == "ratelimited"

    fake_slack.fail_next("chat.postMessage", "ratelimited", retry_after=0)
    patient = fake_slack.client(retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    posted = await patient.chat_postMessage(channel="C1", text="hi")
    assert posted["ok"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 3  # refused, refused, retried and posted


@asynccontextmanager
async def http_app(fake: FakeSlack) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A plain bolt app in HTTP mode with the signing secret, on a free loopback port."""
    # process_before_response: the listener has run when the HTTP answer arrives.
    app = AsyncApp(client=fake.client(), signing_secret=SECRET, process_before_response=True)
    heard: list[dict[str, Any]] = []

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any]) -> None:
        heard.append(event)

    runner = web.AppRunner(app.web_app(path="/slack/events"), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events", heard
    finally:
        await runner.cleanup()


async def test_signed_requests_pass_bolts_verification_and_forged_or_stale_ones_do_not(
    fake_slack: FakeSlack,
) -> None:
    async with http_app(fake_slack) as (url, heard):
        challenge = await fake_slack.post_signed(url, fake_slack.http_url_verification("abc"), SECRET)
        assert (challenge.status, challenge.json()) == (200, {"challenge": "abc"})
        event = fake_slack.http_event(fake_slack.app_mention("C1", "U1", "hi"))
        forged = await fake_slack.post_signed(url, event, SECRET, forge=True)
        stale = await fake_slack.post_signed(url, event, SECRET, stale=True)
        good = await fake_slack.post_signed(url, event, SECRET)
    assert (forged.status, stale.status, good.status) == (401, 401, 200)
    assert len(heard) == 1


async def test_limits_hold_each_method_to_its_tier_and_posts_to_one_a_second_per_channel() -> None:
    tiers = SlackLimits(per_minute={"chat.update": 2})
    channels = [SlackChannel("C1", "general"), SlackChannel("C2", "random")]
    async with FakeSlack(channels=channels, limits=tiers) as fake:
        client = fake.client()
        posted = await client.chat_postMessage(channel="C1", text="one")
        with pytest.raises(SlackApiError) as caught:
            await client.chat_postMessage(channel="C1", text="two")
        assert caught.value.response.status_code == 429
        assert caught.value.response["error"] == "ratelimited"
        assert caught.value.response.headers["Retry-After"] == "1"
        await client.chat_postMessage(channel="C2", text="another channel")
        for text in ("a", "b"):
            await client.chat_update(channel="C1", ts=posted["ts"], text=text)
        with pytest.raises(SlackApiError) as caught:
            await client.chat_update(channel="C1", ts=posted["ts"], text="c")
        assert int(caught.value.response.headers["Retry-After"]) in range(59, 61)
        assert [method for _, method in fake.rate_limited] == ["chat.postMessage", "chat.update"]


async def test_views_open_takes_a_fresh_trigger_once_and_checks_the_modal(fake_slack: FakeSlack) -> None:
    client = fake_slack.client()
    stored = await client.chat_postMessage(channel="C1", text="a card")
    press = fake_slack.button_press("U1", "C1", str(stored["ts"]), "some-button")
    modal = {
        "type": "modal",
        "callback_id": "form",
        "title": {"type": "plain_text", "text": "A short title"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "why",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "reason"},
            }
        ],
    }
    too_long = {**modal, "title": {"type": "plain_text", "text": "A title far longer than Slack allows"}}
    with pytest.raises(SlackApiError) as refused:
        await client.views_open(trigger_id=press["trigger_id"], view=too_long)
    assert refused.value.response["error"] == "invalid_arguments"
    fresh = fake_slack.button_press("U1", "C1", str(stored["ts"]), "some-button")
    opened = await client.views_open(trigger_id=fresh["trigger_id"], view=modal)
    with pytest.raises(SlackApiError) as again:
        await client.views_open(trigger_id=fresh["trigger_id"], view=modal)
    assert again.value.response["error"] == "invalid_trigger_id"
    submitted = fake_slack.view_submission("U1", str(opened["view"]["id"]), {"reason": "because"})
    assert submitted["view"]["callback_id"] == "form"
    assert submitted["view"]["state"]["values"] == {
        "why": {"reason": {"type": "plain_text_input", "value": "because"}}
    }
