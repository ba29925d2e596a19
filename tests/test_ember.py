"""The facade on its own: the terminal's adapter (a few lines) feeds `Ember` like any platform,
against the real store and the real anthropic SDK on the loopback fake API."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bots import console
from core import Ember, Message, User
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.test_chat_engine import make_settings, runtime_for

OPERATOR = User("console:ada", "ada", "console", "local")


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")


async def test_a_line_is_answered_recorded_and_previewed(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Hello ", "there"]))
    out = io.StringIO()
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as runtime:
        ember = Ember(runtime)
        ember.attach(console.TRAITS)
        line = Message("m1", console.PLACE, OPERATOR, "hi, who are you?")
        outcome = await ember.message_arrived(console.ConsoleLine(line, out))
        preview = await ember.prompt_preview(console.PLACE)
    assert outcome is not None and outcome.status == "done"
    assert out.getvalue() == "Hello there"
    # The terminal keeps no history of its own, so the facade's store has both turns.
    assert "hi, who are you?" in preview.as_text() and "Hello there" in preview.as_text()


async def test_a_platform_must_be_attached_before_its_first_event(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as runtime:
        line = Message("m1", console.PLACE, OPERATOR, "hi")
        with pytest.raises(LookupError, match=r"Ember\.attach"):
            await Ember(runtime).message_arrived(console.ConsoleLine(line, io.StringIO()))
    assert fake_anthropic.requests == []
