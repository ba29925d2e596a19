"""Stop while a Slack reply streams natively (chat.startStream, the default path): a native
stream carries no button until it ends, so "Stop the reply" is a message shortcut on any
message of the thread, for the asker and moderators only. The real slack-bolt against the fake
Slack, in both modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.slack.manifest import manifest
from bots.slack.shortcuts import STOP_REPLY
from core import STOP_REPLY_LABEL, SlackSettings
from core.chat.wording import NOT_YOURS, NOTHING_BEING_WRITTEN
from core.events import Message, Place, User
from core.store.chat_repo import ChatRepo
from core.store.stops_repo import StopsRepo
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import FakeSlack, SlackChannel, SlackUser
from tests.slack_support import Ember, action_ids, ember_settings, finished, method, running_ember, shown_text

MODES = pytest.mark.parametrize("mode", ["socket", "http"])


@pytest.fixture
def workspace() -> FakeSlack:
    """alice asks; bob is an admin (a moderator); carol is a stranger."""
    users = [SlackUser("U1", "alice"), SlackUser("U2", "bob", is_admin=True), SlackUser("U3", "carol")]
    return FakeSlack(users=users, channels=[SlackChannel("C1", "general")])


async def stop_from(ember: Ember, user: str, message_ts: str) -> None:
    await ember.press(ember.slack.message_shortcut(user, "C1", message_ts, STOP_REPLY))


async def told(ember: Ember, user: str, count: int = 1) -> list[str]:
    await ember.wait(lambda c: c.method == "chat.postEphemeral" and c.args.get("user") == user, count=count)
    return [str(e["text"]) for e in ember.slack.ephemerals if e["user"] == user]


@MODES
@pytest.mark.parametrize("stopper", ["U1", "U2"], ids=["the-asker", "a-moderator"])
async def test_the_asker_or_a_moderator_stops_a_native_stream_a_stranger_cannot(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic, mode: str, stopper: str
) -> None:
    held = Reply.held(["The beginning", " and the end that nobody reads."], after=1)
    fake_anthropic.script.append(held)
    async with workspace as fake:
        settings = ember_settings(tmp_path, fake_anthropic, fake, slack={"mode": mode})
        async with running_ember(fake, fake_anthropic, settings) as ember:
            mention = fake.app_mention("C1", "U1", "go on")
            await ember.deliver(mention)
            [start] = await ember.wait(method("chat.startStream"))
            stream_ts = str(fake.thread("C1", mention["ts"])[-1]["ts"])

            await stop_from(ember, "U3", stream_ts)  # carol: not hers to stop
            [refused] = await told(ember, "U3")
            assert refused == NOT_YOURS
            assert not fake.calls_to("chat.stopStream")

            await stop_from(ember, stopper, mention["ts"])  # from any message there
            [done] = await ember.wait(finished)
            held.release.set()
            await ember.idle()
            await stop_from(ember, "U1", stream_ts)  # once it has ended
            [*_, late] = await told(ember, "U1")
    assert start.args["thread_ts"] == mention["ts"]
    assert done.method == "chat.stopStream"  # the native stream itself ended, early
    shown = shown_text(fake, "C1", mention["ts"])
    assert shown.startswith("The beginning") and "nobody reads" not in shown
    assert not fake.calls_to("chat.postMessage") and not fake.calls_to("chat.update")
    assert late == NOTHING_BEING_WRITTEN
    assert [e["thread_ts"] for e in fake.ephemerals] == [mention["ts"]] * len(fake.ephemerals)


def test_the_manifest_declares_the_stop_shortcut() -> None:
    data = manifest(SlackSettings())
    [stop] = [s for s in data["features"]["shortcuts"] if s["callback_id"] == STOP_REPLY]
    assert (stop["type"], stop["name"]) == ("message", STOP_REPLY_LABEL)


async def test_a_continuation_streaming_natively_stops_too(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    held = Reply.held([" of times,", " it was the worst of times."], after=1)
    fake_anthropic.script.extend([Reply.text(["It was the best"], stop_reason="max_tokens"), held])
    async with workspace as fake:
        settings = ember_settings(tmp_path, fake_anthropic, fake)
        async with running_ember(fake, fake_anthropic, settings) as ember:
            mention = fake.app_mention("C1", "U1", "Dickens")
            await ember.deliver(mention)
            [done] = await ember.wait(finished)
            await ember.idle()
            [more] = [a for a in action_ids(done.args["blocks"]) if a.startswith("ember:cont:")]
            await ember.press(fake.button_press("U1", "C1", done.args["ts"], more))
            await ember.wait(method("chat.startStream"), count=2)  # the continuation streams
            await stop_from(ember, "U2", mention["ts"])  # bob moderates
            await ember.wait(finished, count=2)
            held.release.set()
            await ember.idle()
    shown = shown_text(fake, "C1", mention["ts"])
    assert "It was the best of times," in shown and "worst" not in shown


async def test_a_reply_streaming_on_another_host_is_asked_to_stop_through_the_store(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    """The shortcut may reach a host that is not writing the reply (Slack HTTP behind a load
    balancer): the reply's row says it streams in that thread, so a Stop is requested in the
    store, where the writing host picks it up (tests/test_cross_host_stop.py covers that side)."""
    async with workspace as fake:
        settings = ember_settings(tmp_path, fake_anthropic, fake)
        async with running_ember(fake, fake_anthropic, settings) as ember:
            place = Place("slack", fake.team_id, "C1", thread_id="1700000000.000100")
            asker = User("U1", "alice", "slack", fake.team_id)
            prompt = Message(id="1700000000.000100", place=place, author=asker, text="elsewhere")
            await ChatRepo(ember.runtime.store).start_reply(
                "r-elsewhere", prompt, "opus-3", status="streaming"
            )
            stranger = User("U3", "carol", "slack", fake.team_id)
            moderator = User("U2", "bob", "slack", fake.team_id, is_moderator=True)
            assert await ember.bot.ember.stop_reply_in(place, stranger) == NOT_YOURS
            assert await StopsRepo(ember.runtime.store).requested(["r-elsewhere"]) == {}
            assert await ember.bot.ember.stop_reply_in(place, moderator) == ""
            assert list(await StopsRepo(ember.runtime.store).requested(["r-elsewhere"])) == ["r-elsewhere"]
