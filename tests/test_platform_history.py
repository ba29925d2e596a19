"""Core support for adapters that read context from their platform: a history reader for
regenerate, continue and the prompt preview; a regenerate that rewrites the old messages."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from core.chat.streaming import ReusingSink
from core.events import Message, Place, User
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.test_chat_engine import make_settings, runtime_for
from tests.test_streaming import RecordingSink

PLACE = Place("discord", "G1", "C1")
ALICE = User("U1", "Alice", "discord", "G1")
BOB = User("U2", "Bob", "discord", "G1")


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")


class FakePlatform:
    """A platform's history as the reader sees it: edited in place, like the real one."""

    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)
        self.calls: list[tuple[Place, str, int]] = []

    async def __call__(self, place: Place, upto: str, limit: int) -> Sequence[Message]:
        self.calls.append((place, upto, limit))
        ids = [m.id for m in self.messages]
        end = ids.index(upto) + 1 if upto else len(ids)
        return self.messages[:end][-limit:]


async def test_reusing_sink_rewrites_old_messages_first() -> None:
    inner = RecordingSink(max_chars=100, edit_interval=0.0)
    inner.messages.update({"old1": "x", "old2": "y", "old3": "z"})
    sink = ReusingSink(inner, ["old1", "old2", "old3"])
    assert await sink.post("first") == "old1"
    await sink.edit("old1", "first, more")
    assert await sink.post("second") == "old2"
    assert sink.leftover == ["old3"]
    assert [op for _, op, _ in inner.writes] == ["edit", "edit", "edit"]
    assert inner.messages["old1"] == "first, more" and inner.messages["old2"] == "second"
    sink.leftover.clear()
    assert await sink.post("third") == "m4"  # only now a new message


async def test_regenerate_reads_the_platform_and_reports_handles(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend([Reply.text(["first"]), Reply.text(["second"])])
    earlier = Message("1", PLACE, BOB, "the sky is green")
    question = Message("2", PLACE, ALICE, "is it?")
    platform = FakePlatform(earlier, question)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        rt.engine.set_history_reader("discord", platform)
        sink = RecordingSink(max_chars=2000, edit_interval=0.0)
        outcome = await rt.engine.respond(question, sink, history=[earlier], reply_id="r1")
        assert await rt.engine.reply_handles("r1") == outcome.handles == ["m1"]
        assert await rt.engine.reply_handles("no-such-reply") == []
        # Alice edits her question on the platform; the regenerate reads it as it is now.
        platform.messages[1] = Message("2", PLACE, ALICE, "is it really?")
        again = await rt.engine.regenerate("r1", ALICE, ReusingSink(sink, outcome.handles))
    assert again.status == "done" and again.handles == ["m1"] and sink.messages["m1"] == "second"
    assert platform.calls[-1] == (PLACE, "2", 51)
    sent = fake_anthropic.requests[-1].body["messages"]
    assert sent[0]["content"][0]["text"] == "Bob: the sky is green"
    assert sent[0]["content"][-1]["text"] == "Alice: is it really?"


async def test_preview_reads_the_platform(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    platform = FakePlatform(Message("1", PLACE, BOB, "hello"), Message("2", PLACE, ALICE, "hi Bob"))
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        rt.engine.set_history_reader("discord", platform)
        payload = await rt.engine.preview(PLACE)
    assert platform.calls == [(PLACE, "", 50)]
    assert "Bob: hello" in payload.as_text() and "Alice: hi Bob" in payload.as_text()
