"""The chat engine end to end: the real anthropic SDK against the loopback fake API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from core.chat import OpenGate
from core.config import OPUS_3, Settings, settings_from_dict
from core.errors import AccessDenied
from core.events import Message, Place, User
from core.runtime import Runtime, open_runtime
from core.store import Reply as ReplyRow
from core.store import Usage
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.test_streaming import RecordingSink

VERTEX_MODEL = "claude-3-opus@20240229"
PLACE = Place("slack", "T1", "C1", thread_id="1.0")
ALICE = User("U1", "Alice", "slack", "T1")
BOB = User("U2", "Bob", "slack", "T1")


def make_settings(tmp_path: Path, fake: FakeAnthropic, **models: Any) -> Settings:
    opus = {"display_name": "Claude Opus 3", "backends": [{"provider": "anthropic", "model": OPUS_3}]}
    return settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"},
            "providers": {
                "anthropic": {"base_url": fake.url},
                "vertex": {
                    "base_url": f"{fake.url}/v1",
                    "project_id": "p",
                    "region": "us-east5",
                    "access_token_env": "VERTEX_TOKEN",
                },
            },
            "routing": {"failure_threshold": 1, "cooldown_seconds": 60},
            "models": {"opus-3": opus, **models},
        }
    )


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("VERTEX_TOKEN", "ya29.test-token")


@asynccontextmanager
async def runtime_for(settings: Settings, access: Any = None) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, access=access or OpenGate()) as runtime:
        yield runtime


_counter = iter(range(1, 1_000_000))


def say(text: str, author: User = ALICE) -> Message:
    return Message(id=f"{next(_counter)}.0", place=PLACE, author=author, text=text)


async def test_reply_streams_and_is_metered(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.append(
        Reply.text(["Hello", ", ", "Alice."], input_tokens=1200, cache_read=40_000, cache_write=2000)
    )
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        outcome = await rt.engine.respond(say("hi there"), sink)
        async with rt.store.session() as session:
            usage = (await session.exec(select(Usage))).one()
            reply = (await session.exec(select(ReplyRow))).one()
    assert outcome.status == "done" and outcome.text == "Hello, Alice."
    assert list(sink.messages.values()) == ["Hello, Alice."]
    body = fake_anthropic.requests[0].body
    assert body["model"] == OPUS_3 and body["stream"] is True
    assert body["temperature"] == 1.0 and body["max_tokens"] == 1024
    # The default system prompt is under the 1,024 tokens the API caches at least: no breakpoint.
    assert "cache_control" not in body["system"][0]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Alice: hi there"}]}]
    # 1200 in, 3 out, 2000 cache write, 40000 cache read at Opus 3 prices, in micro-dollars.
    assert usage.cost_micros == 1200 * 15 + 3 * 75 + int(2000 * 18.75) + int(40_000 * 1.5)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens, usage.cache_read_tokens) == (
        1200,
        3,
        2000,
        40_000,
    )
    assert (usage.provider, usage.model, usage.outcome, usage.user_id) == ("anthropic", OPUS_3, "done", "U1")
    assert reply.text == "Hello, Alice." and reply.status == "done"


async def test_history_from_the_store_names_every_speaker(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend([Reply.text(["First answer."]), Reply.text(["Second answer."])])
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        await rt.engine.respond(say("what is a koan?"), sink)
        await rt.engine.respond(say("and a mondo?", BOB), sink)
    messages = fake_anthropic.requests[1].body["messages"]
    assert [(m["role"], [b["text"] for b in m["content"]]) for m in messages] == [
        ("user", ["Alice: what is a koan?"]),
        ("assistant", ["First answer."]),
        ("user", ["Bob: and a mondo?"]),
    ]
    assert all("cache_control" not in b for m in messages for b in m["content"])  # all too short


async def test_overload_fails_over_and_the_backend_cools_down(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    settings = make_settings(
        tmp_path,
        fake_anthropic,
        **{
            "opus-3": {
                "backends": [
                    {"provider": "anthropic", "model": OPUS_3},
                    {"provider": "vertex", "model": VERTEX_MODEL},
                ]
            }
        },
    )
    fake_anthropic.script_for(OPUS_3).append(Reply.status_only(529))
    fake_anthropic.script_for(VERTEX_MODEL).extend([Reply.text(["from vertex"]), Reply.text(["again"])])
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(settings) as rt:
        first = await rt.engine.respond(say("one"), sink)
        second = await rt.engine.respond(say("two"), sink)
    assert (first.text, first.provider) == ("from vertex", "vertex")
    # The anthropic backend is cooling down, so the second request went straight to Vertex.
    assert [r.model for r in fake_anthropic.requests] == [OPUS_3, VERTEX_MODEL, VERTEX_MODEL]
    assert fake_anthropic.requests[1].path.endswith(f"/models/{VERTEX_MODEL}:streamRawPredict")
    assert second.text == "again"


async def test_fallback_to_another_model_is_labelled(
    tmp_path: Path, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path,
        fake_anthropic,
        **{
            "opus-3": {
                "display_name": "Claude Opus 3",
                "backends": [{"provider": "anthropic", "model": OPUS_3}],
                "fallback": "sonnet",
            },
            "sonnet": {
                "display_name": "Claude Sonnet",
                "backends": [{"provider": "anthropic", "model": "claude-sonnet"}],
            },
        },
    )
    fake_anthropic.script_for(OPUS_3).append(Reply.status_only(404))
    fake_anthropic.script_for("claude-sonnet").append(Reply.text(["Hi from Sonnet."]))
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    with caplog.at_level(logging.ERROR):
        async with runtime_for(settings) as rt:
            outcome = await rt.engine.respond(say("hello"), sink)
    shown = next(iter(sink.messages.values()))
    assert (
        shown
        == "*(Claude Opus 3 is unavailable right now; this answer is from Claude Sonnet.)*\n\nHi from Sonnet."
    )
    assert outcome.alias == "sonnet" and outcome.model == "claude-sonnet"
    assert any("answered 404" in r.getMessage() and "not enabled" in r.getMessage() for r in caplog.records)


async def test_retired_model_not_enabled_tells_user_and_operator(
    tmp_path: Path, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake_anthropic.script.append(Reply.status_only(404))
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    with caplog.at_level(logging.WARNING):
        async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
            outcome = await rt.engine.respond(say("hello"), sink)
    assert outcome.status == "error"
    (line,) = sink.messages.values()
    assert line.startswith("The retired model is not available to this bot right now")
    assert f"(trace {outcome.trace_id})" in line
    assert any(outcome.trace_id in r.getMessage() for r in caplog.records)


async def test_overloaded_everywhere_is_one_clear_line(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.append(Reply.status_only(529))
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        outcome = await rt.engine.respond(say("hello"), sink)
    (line,) = sink.messages.values()
    assert (
        line
        == f"The model is overloaded or unreachable right now. Please try again in a little while. (trace {outcome.trace_id})"
    )


@pytest.mark.parametrize("fault", ["error_midstream", "drop"])
async def test_resume_after_a_broken_stream_has_no_gap_and_no_repeat(
    tmp_path: Path, fake_anthropic: FakeAnthropic, fault: str
) -> None:
    broken = getattr(Reply, fault)(["The quick ", "brown fox ", "jumps"], after=2)
    fake_anthropic.script.extend([broken, Reply.text(["jumps over ", "the lazy dog."])])
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        outcome = await rt.engine.respond(say("a pangram please"), sink)
        async with rt.store.session() as session:
            broke, usage = (await session.exec(select(Usage).order_by(col(Usage.attempt)))).all()
    assert outcome.status == "done"
    assert list(sink.messages.values()) == ["The quick brown fox jumps over the lazy dog."]
    resumed = fake_anthropic.requests[1].body["messages"]
    assert resumed[-1] == {"role": "assistant", "content": [{"type": "text", "text": "The quick brown fox"}]}
    assert usage.outcome == "done" and broke.outcome == "error"  # each request has its row


async def test_stop_keeps_the_text_so_far(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.append(Reply.text([f"w{i} " for i in range(200)], token_delay=0.01))
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        task = asyncio.create_task(rt.engine.respond(say("talk"), sink, reply_id="r1"))
        await sink.first_post.wait()
        assert rt.engine.stop("r1")
        outcome = await task
        assert not rt.engine.stop("r1")  # already finished
    assert outcome.status == "stopped"
    shown = next(iter(sink.messages.values()))
    assert shown.startswith("w0 ") and "w199" not in shown
    assert outcome.text == shown


async def test_continue_after_max_tokens_and_regenerate(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.extend(
        [
            Reply.text(["Once upon a time, "], stop_reason="max_tokens"),
            Reply.text(["there was a koan."]),
            Reply.text(["A different story."]),
        ]
    )
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        first = await rt.engine.respond(say("tell a story"), sink, reply_id="r1")
        assert first.can_continue
        more = await rt.engine.continue_reply("r1", ALICE, sink)
        assert more.text == "there was a koan." and not more.can_continue
        async with rt.store.session() as session:
            row = await session.get(ReplyRow, "r1")
        assert row is not None and row.text == "Once upon a time, there was a koan."
        again = await rt.engine.regenerate("r1", ALICE, sink)
    continued = fake_anthropic.requests[1].body["messages"]
    assert continued[-1] == {"role": "assistant", "content": [{"type": "text", "text": "Once upon a time,"}]}
    regenerated = fake_anthropic.requests[2].body["messages"]
    assert regenerated == [{"role": "user", "content": [{"type": "text", "text": "Alice: tell a story"}]}]
    assert again.text == "A different story."


async def test_only_the_asker_or_a_moderator_controls_a_reply(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        await rt.engine.respond(say("hi"), sink, reply_id="r1")
        assert await rt.engine.may_control("r1", ALICE)
        assert not await rt.engine.may_control("r1", BOB)
        assert await rt.engine.may_control("r1", User("U9", "Mod", "slack", "T1", is_moderator=True))


async def test_slow_first_token_still_streams(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script.append(Reply.text(["late ", "but here"], first_token_delay=0.3))
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        outcome = await rt.engine.respond(say("hi"), sink)
    assert outcome.text == "late but here"


class DenyAll:
    @asynccontextmanager
    async def admit(self, user: User, place: Place) -> AsyncIterator[None]:
        raise AccessDenied("You don't have access yet: ask with `/opus access request`.")
        yield


async def test_denied_access_never_calls_the_model(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic), access=DenyAll()) as rt:
        outcome = await rt.engine.respond(say("hi"), sink)
    assert outcome.status == "denied"
    assert sink.notices == ["You don't have access yet: ask with `/opus access request`."]
    assert fake_anthropic.requests == [] and sink.messages == {}


async def test_extra_context_sources_reach_the_system_prompt(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    async def essay(place: Place) -> str:
        return "The essay under discussion: On Being Retired." if place.thread_id == "1.0" else ""

    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with runtime_for(make_settings(tmp_path, fake_anthropic)) as rt:
        rt.engine.add_context_source(essay)
        await rt.engine.respond(say("thoughts?"), sink)
    assert (
        fake_anthropic.requests[0]
        .body["system"][0]["text"]
        .endswith("\n\nThe essay under discussion: On Being Retired.")
    )
