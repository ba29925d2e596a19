"""Stop / Regenerate / Continue as Block Kit buttons on Slack: the asker (or a moderator) may
press them, anyone else is told so privately and nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.chat.wording import NOT_YOURS
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.slack_server import Call, FakeSlack, SlackChannel, SlackUser
from tests.slack_support import Ember, action_ids, ember_settings, finished, method, running_ember, shown_text

MODES = pytest.mark.parametrize("mode", ["socket", "http"])


@pytest.fixture
def workspace() -> FakeSlack:
    """alice asks; carol is a stranger; bob is an admin."""
    users = [SlackUser("U1", "alice"), SlackUser("U2", "bob", is_admin=True), SlackUser("U3", "carol")]
    return FakeSlack(users=users, channels=[SlackChannel("C1", "general")])


def button(call_blocks: object, control: str) -> str:
    [found] = [a for a in action_ids(call_blocks) if a.startswith(f"ember:{control}:")]
    return found


async def press_privately(ember: Ember, payload: dict[str, object]) -> str:
    """Press a button and return the private answer that came back through its response_url."""
    seen = len(private_answers(ember))
    await ember.press(payload)
    calls = await ember.wait(lambda c: c in private_answers(ember), count=seen + 1)
    return str(calls[-1].args["text"])


def private_answers(ember: Ember) -> list[Call]:
    return [
        c
        for c in ember.slack.calls
        if c.method == "response_url" and c.args.get("response_type") == "ephemeral"
    ]


@MODES
async def test_stop_is_for_the_asker_not_a_stranger(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    held = Reply.held(["The beginning", " and the end that nobody reads."], after=1)
    fake_anthropic.script.append(held)
    async with workspace as fake:
        fake.disable_streaming()  # ordinary messages carry a Stop button while they are written
        settings = ember_settings(tmp_path, fake_anthropic, fake, slack={"mode": mode})
        async with running_ember(fake, fake_anthropic, settings) as ember:
            mention = fake.app_mention("C1", "U1", "go on")
            await ember.deliver(mention)
            [posted] = await ember.wait(method("chat.postMessage"))
            reply_ts = str(fake.thread("C1", mention["ts"])[-1]["ts"])
            stop = button(posted.args["blocks"], "stop")
            assert await press_privately(ember, fake.button_press("U3", "C1", reply_ts, stop)) == NOT_YOURS
            await ember.press(fake.button_press("U1", "C1", reply_ts, stop))
            [done] = await ember.wait(finished)
            held.release.set()
            await ember.idle()
    shown = shown_text(fake, "C1", mention["ts"])
    assert shown.startswith("The beginning") and "nobody reads" not in shown
    assert not any(a.startswith("ember:stop:") for a in action_ids(done.args["blocks"]))


@MODES
async def test_regenerate_for_the_asker_and_a_moderator_but_not_a_stranger(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic, mode: str
) -> None:
    fake_anthropic.script.extend(
        [Reply.text(["first take"]), Reply.text(["second take"]), Reply.text(["third"])]
    )
    async with workspace as fake:
        settings = ember_settings(tmp_path, fake_anthropic, fake, slack={"mode": mode})
        async with running_ember(fake, fake_anthropic, settings) as ember:
            mention = fake.app_mention("C1", "U1", "a poem")
            await ember.deliver(mention)
            [done] = await ember.wait(finished)
            await ember.idle()
            regen = button(done.args["blocks"], "regen")
            assert (
                await press_privately(ember, fake.button_press("U3", "C1", done.args["ts"], regen))
                == NOT_YOURS
            )
            assert len(fake_anthropic.requests) == 1
            await ember.press(fake.button_press("U1", "C1", done.args["ts"], regen))
            await ember.wait(finished, count=2)
            await ember.idle()
            assert "second take" in shown_text(fake, "C1", mention["ts"])
            await ember.press(fake.button_press("U2", "C1", done.args["ts"], regen))  # bob moderates
            await ember.wait(finished, count=3)
            await ember.idle()
    assert len(fake_anthropic.requests) == 3
    assert "third" in shown_text(fake, "C1", mention["ts"])
    assert "first take" not in shown_text(fake, "C1", mention["ts"])
    # Rewritten in place: still one message under the question.
    assert [m["ts"] for m in fake.thread("C1", mention["ts"])[1:]] == [done.args["ts"]]


async def test_continue_picks_up_where_max_tokens_cut_the_reply(
    tmp_path: Path, workspace: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend(
        [Reply.text(["It was the best"], stop_reason="max_tokens"), Reply.text([" of times."])]
    )
    async with workspace as fake:
        settings = ember_settings(tmp_path, fake_anthropic, fake)
        async with running_ember(fake, fake_anthropic, settings) as ember:
            mention = fake.app_mention("C1", "U1", "Dickens")
            await ember.deliver(mention)
            [done] = await ember.wait(finished)
            await ember.idle()
            more = button(done.args["blocks"], "cont")
            assert (
                await press_privately(ember, fake.button_press("U3", "C1", done.args["ts"], more))
                == NOT_YOURS
            )
            await ember.press(fake.button_press("U1", "C1", done.args["ts"], more))
            await ember.wait(finished, count=2)
            await ember.idle()
    assert len(fake_anthropic.requests) == 2
    # The model was handed its own unfinished words to go on from.
    assert fake_anthropic.requests[1].body["messages"][-1]["role"] == "assistant"
    assert action_ids(fake.stored("C1", done.args["ts"])["blocks"]) == []  # its buttons are spent
    assert "It was the best" in shown_text(fake, "C1", mention["ts"])
    assert "of times." in shown_text(fake, "C1", mention["ts"])
