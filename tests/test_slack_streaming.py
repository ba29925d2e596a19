"""How replies reach Slack: native streaming, the post + chat.update fallback, Slack's size
limits, `msg_too_long` and rate limits. The real slack-bolt app against the fake Slack."""

from __future__ import annotations

import re
from pathlib import Path

from bots.slack.convert import unescape
from bots.slack.sink import UPDATE_INTERVAL
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack
from tests.slack_support import action_ids, ember_settings, finished, method, running_ember, shown_text

WORDS = [f"word{i} " for i in range(30)]


def squashed(text: str) -> str:
    """Text without whitespace: where a long reply was cut does not matter, that nothing was lost does."""
    return re.sub(r"\s+", "", text)


async def test_native_streaming_appends_and_stops_with_buttons(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(WORDS, token_delay=0.03))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "count")
        await ember.deliver(mention)
        [stop] = await ember.wait(finished)
        await ember.idle()
    [start] = fake_slack.calls_to("chat.startStream")
    appends = fake_slack.calls_to("chat.appendStream")
    assert appends and all(a.args["ts"] == stop.args["ts"] for a in appends)
    # Each append carries only what is new.
    sent = start.args["markdown_text"] + "".join(a.args["markdown_text"] for a in appends)
    assert sent == "".join(WORDS)
    assert stop.method == "chat.stopStream" and any(":regen:" in a for a in action_ids(stop.args["blocks"]))
    assert shown_text(fake_slack, "C1", mention["ts"]) == "".join(WORDS)
    assert not fake_slack.calls_to("chat.update")


async def test_without_native_streaming_it_posts_and_updates_about_once_a_second(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.disable_streaming("unknown_method")
    fake_anthropic.script.extend([Reply.text(WORDS, token_delay=0.08), Reply.text(["again"])])
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        first = fake_slack.app_mention("C1", "U1", "count slowly")
        await ember.deliver(first)
        await ember.wait(finished)
        await ember.idle()
        second = fake_slack.app_mention("C1", "U1", "and again")
        await ember.deliver(second)
        await ember.wait(finished, count=2)
        await ember.idle()
    # Refused once, the method is not tried again for the next reply.
    assert len(fake_slack.calls_to("chat.startStream")) == 1
    posts = fake_slack.calls_to("chat.postMessage")
    assert [p.args["thread_ts"] for p in posts] == [first["ts"], second["ts"]]
    assert "ember:stop:" in action_ids(posts[0].args["blocks"])[0]  # Stop while it is written
    updates = [u for u in fake_slack.calls_to("chat.update") if u.at < posts[1].at]
    assert len(updates) >= 2
    gaps = [b.at - a.at for a, b in zip([posts[0], *updates], updates, strict=False)]
    # The last update (the buttons) follows at once; every text update waited its turn.
    assert all(gap >= UPDATE_INTERVAL - 0.05 for gap in gaps[:-1]), gaps
    assert shown_text(fake_slack, "C1", first["ts"]) == "".join(WORDS)
    assert shown_text(fake_slack, "C1", second["ts"]) == "again"


async def test_an_expired_stream_is_finished_by_updating_the_message(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    held = Reply.held(["Once upon ", "a time ", "there was a bot."], after=1)
    fake_anthropic.script.append(held)
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "a story")
        await ember.deliver(mention)
        await ember.wait(method("chat.startStream"))
        [message] = [m for m in fake_slack.thread("C1", mention["ts"]) if m["ts"] != mention["ts"]]
        fake_slack.expire_stream("C1", message["ts"])  # Slack ends streams left open too long
        held.release.set()
        [done] = await ember.wait(finished)
        await ember.idle()
    assert done.method == "chat.update" and done.args["ts"] == message["ts"]
    assert fake_slack.stored("C1", message["ts"])["text"] == "Once upon a time there was a bot."
    assert len([m for m in fake_slack.thread("C1", mention["ts"]) if m.get("user") == "UBOT"]) == 1


async def test_a_long_reply_continues_in_further_thread_messages(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    paragraphs = [f"Paragraph {i}. " + "lorem ipsum " * 60 + "\n\n" for i in range(12)]  # ~9,000 chars
    fake_anthropic.script.append(Reply.text(paragraphs))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "write a lot")
        await ember.deliver(mention)
        await ember.wait(finished)
        await ember.idle()
    replies = [m for m in fake_slack.thread("C1", mention["ts"]) if m.get("user") == "UBOT"]
    assert len(replies) >= 3
    assert all(len(m["text"]) <= 3_000 for m in replies)
    assert not any(fake_slack.is_streaming("C1", m["ts"]) for m in replies)  # every stream ended
    assert squashed(shown_text(fake_slack, "C1", mention["ts"])) == squashed("".join(paragraphs))


async def test_escaping_growth_stays_within_slacks_limit(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    # 2,900 ampersands fit one 3,000-character message but escape to 14,500 characters, more
    # than a stream or markdown block may hold: the message is drawn as several parts.
    text = "&" * 2_900
    fake_anthropic.script.append(Reply.text([text]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "ampersands")
        await ember.deliver(mention)
        await ember.wait(finished)
        await ember.idle()
    writes = [c for c in fake_slack.calls if c.method.startswith("chat.")]
    assert len(fake_slack.calls_to("chat.startStream")) >= 2
    assert unescape(shown_text(fake_slack, "C1", mention["ts"])) == text
    assert all(len(str(c.args.get("markdown_text", ""))) <= 12_000 for c in writes)


async def test_msg_too_long_is_handled_by_drawing_smaller_parts(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.disable_streaming("unknown_method")
    fake_slack.fail_next("chat.postMessage", "msg_too_long")
    answer = "A modest answer that Slack, today, finds too long."
    fake_anthropic.script.append(Reply.text([answer]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "hi")
        await ember.deliver(mention)
        await ember.wait(finished)
        await ember.idle()
    assert len(fake_slack.calls_to("chat.postMessage")) == 2  # refused, then drawn again
    assert shown_text(fake_slack, "C1", mention["ts"]) == answer


async def test_a_rate_limit_is_waited_out_for_its_retry_after(
    tmp_path: Path, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_slack.fail_next("chat.startStream", "ratelimited", retry_after=1)
    fake_anthropic.script.append(Reply.text(["patience ", "pays"]))
    settings = ember_settings(tmp_path, fake_anthropic, fake_slack)
    async with running_ember(fake_slack, fake_anthropic, settings) as ember:
        mention = fake_slack.app_mention("C1", "U1", "hi")
        await ember.deliver(mention)
        await ember.wait(finished)
        await ember.idle()
    refused, accepted = fake_slack.calls_to("chat.startStream")
    assert accepted.at - refused.at >= 1.0  # Retry-After: 1 was honoured
    assert accepted.args["markdown_text"] == refused.args["markdown_text"]
    assert shown_text(fake_slack, "C1", mention["ts"]) == "patience pays"
