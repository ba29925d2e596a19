"""Stop pressed on one host ends a reply streaming on another: two runtimes (two hosts) over one
store, the real anthropic SDK against the fake API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.chat.controls import Control, press
from core.chat.wording import NOTHING_TO_STOP
from core.runtime import Runtime
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.test_chat_engine import ALICE, make_settings, runtime_for, say
from tests.test_streaming import RecordingSink

SAFETY = 10.0


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")


def long_reply() -> Reply:
    return Reply.text([f"w{i} " for i in range(400)], token_delay=0.02)


async def press_stop(host: Runtime, reply_id: str) -> str:
    result = await press(host.engine, Control.STOP, reply_id, ALICE, RecordingSink(2000, 0.0))
    return result.notice


async def test_a_stop_pressed_on_another_host_ends_the_reply_within_a_second(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(long_reply())
    settings = make_settings(tmp_path, fake_anthropic)
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(settings) as host_a, runtime_for(settings) as host_b:
        answering = asyncio.create_task(host_a.engine.respond(say("talk"), sink, reply_id="r1"))
        await asyncio.wait_for(sink.first_post.wait(), SAFETY)
        pressed = time.monotonic()
        assert await press_stop(host_b, "r1") == ""
        outcome = await asyncio.wait_for(answering, SAFETY)
        took = time.monotonic() - pressed
        assert outcome.status == "stopped" and took < 1.0, took
        assert "w399" not in outcome.text
        # Finished now: a second press anywhere says so.
        assert await press_stop(host_b, "r1") == NOTHING_TO_STOP


async def test_a_press_that_arrives_before_the_reply_row_is_visible_still_stops_it(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(long_reply())
    settings = make_settings(tmp_path, fake_anthropic)
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(settings) as host_a, runtime_for(settings) as host_b:
        # On host B the press waits for the row (Alice may press only her own reply's buttons).
        pressing = asyncio.create_task(press_stop(host_b, "r2"))
        await asyncio.sleep(0.3)
        assert not pressing.done()
        outcome = await asyncio.wait_for(host_a.engine.respond(say("talk"), sink, reply_id="r2"), SAFETY)
        assert await pressing == ""
        assert outcome.status == "stopped" and "w399" not in outcome.text


async def test_a_stop_requested_before_an_earlier_generation_ended_does_not_stop_a_later_one(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend([Reply.text(["short."]), Reply.text(["again."])])
    settings = make_settings(tmp_path, fake_anthropic)
    async with runtime_for(settings) as host_a, runtime_for(settings) as host_b:
        first = await host_a.engine.respond(say("talk"), RecordingSink(2000, 0.0), reply_id="r3")
        assert first.status == "done"
        assert await press_stop(host_b, "r3") == NOTHING_TO_STOP  # its row says it ended
        regenerated = await host_a.engine.regenerate("r3", ALICE, RecordingSink(2000, 0.0))
        assert regenerated.status == "done" and regenerated.text == "again."
