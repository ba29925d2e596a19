"""Continue keeps the writer: an answer the fallback model wrote is continued by that model,
which says so, and the reply row remembers both the alias asked for and the one that wrote.
Discord end to end (the real discord.py against the fake), and the engine over its store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.config import OPUS_3
from core.events import Message, Place, User
from core.store import Store
from core.store.chat_repo import ChatRepo, UsageEntry
from tests.discord_support import bot_messages, custom_ids, ember_settings, finished, running_ember
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.discord_server import FakeDiscord
from tests.test_discord_buttons import ask, press

SONNET = "claude-sonnet"
LABEL = "*(continued by Claude Sonnet, which wrote this answer)*\n\n"


def with_fallback() -> dict[str, Any]:
    return {
        "opus-3": {
            "display_name": "Claude Opus 3",
            "backends": [{"provider": "anthropic", "model": OPUS_3}],
            "fallback": "sonnet",
        },
        "sonnet": {"display_name": "Claude Sonnet", "backends": [{"provider": "anthropic", "model": SONNET}]},
    }


async def test_continue_on_a_fallback_answer_continues_with_the_fallback_and_says_so(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script_for(OPUS_3).append(Reply.status_only(529))  # the retired model is busy
    fake_anthropic.script_for(SONNET).extend(
        [Reply.text(["The first half"], stop_reason="max_tokens"), Reply.text([" and the second half."])]
    )
    # By the time Continue is pressed, the retired model would answer again: it must not.
    fake_anthropic.script_for(OPUS_3).append(Reply.text([" from another model"]))
    settings = ember_settings(tmp_path, fake_anthropic, models=with_fallback())
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        ember.client.inbound.edit_interval = 0.05
        alice = fake_discord.user("alice")
        answer = await ask(ember, alice, "write a lot")
        assert "this answer is from Claude Sonnet" in answer["content"]
        await press(ember, alice, answer, "cont")
        await ember.wait(lambda r: finished(r) and str(answer["id"]) not in r.path)
        continued = bot_messages(fake_discord, fake_discord.channel("general"))[-1]
        stored = await ChatRepo(ember.runtime.store).reply(custom_ids(continued)[0].split(":")[2])

    assert continued["content"] == LABEL + " and the second half."
    models = [r.body["model"] for r in fake_anthropic.requests]
    assert models == [OPUS_3, SONNET, SONNET]
    # The continuation starts from the fallback's own words, sent as its prefill.
    prefill = fake_anthropic.requests[-1].body["messages"][-1]
    assert prefill == {"role": "assistant", "content": [{"type": "text", "text": "The first half"}]}
    assert stored is not None
    assert (stored.alias, stored.written_by) == ("opus-3", "sonnet")
    assert stored.text == "The first half and the second half."


async def test_regenerate_asks_the_model_asked_for_again_and_forgets_the_fallback(
    tmp_path: Path, fake_discord: FakeDiscord, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script_for(OPUS_3).extend([Reply.status_only(529), Reply.text(["Opus again."])])
    fake_anthropic.script_for(SONNET).append(Reply.text(["Sonnet here."]))
    settings = ember_settings(tmp_path, fake_anthropic, models=with_fallback())
    async with running_ember(fake_discord, fake_anthropic, settings) as ember:
        bob = fake_discord.user("bob")
        answer = await ask(ember, bob, "hello")
        reply_id = custom_ids(answer)[0].split(":")[2]
        repo = ChatRepo(ember.runtime.store)
        first = await repo.reply(reply_id)
        await press(ember, bob, answer, "regen")
        await ember.wait(finished, count=2)
        second = await repo.reply(reply_id)
        shown = fake_discord.messages[int(answer["id"])]["content"]

    assert first is not None and (first.alias, first.written_by) == ("opus-3", "sonnet")
    assert second is not None and (second.alias, second.written_by) == ("opus-3", "opus-3")
    assert shown == "Opus again."
    assert [r.body["model"] for r in fake_anthropic.requests] == [OPUS_3, SONNET, OPUS_3]


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
    else:
        url = str(request.getfixturevalue("postgres_db_url"))
    store = Store.open(url)
    await store.upgrade()
    yield store
    await store.close()


def answered_by(alias: str) -> UsageEntry:
    return UsageEntry("U1", alias, "anthropic", "m", 1, 1, 0, 0, 5, 10, "trace", "ok")


async def test_the_reply_row_keeps_the_alias_asked_for_and_the_one_that_wrote(store: Store) -> None:
    """Answer, continue, regenerate: which alias wrote the text follows each run."""
    repo = ChatRepo(store)
    place = Place("slack", "T1", "C1", thread_id="1.0")
    prompt = Message(id="1.0", place=place, author=User("U1", "Alice", "slack", "T1"), text="hi")

    async def run(run_alias: str, writer: str) -> tuple[str, str]:
        await repo.start_reply("r1", prompt, run_alias, status="streaming")
        # While it streams, its conversation knows it (Stop the reply, from any host).
        assert await repo.streaming_in(place, started_within=timedelta(minutes=30)) == ["r1"]
        await repo.finish_reply(
            "r1",
            place,
            text="t",
            handles=["9.0"],
            status="done",
            stop_reason="",
            usage=[answered_by(writer)],
            own_turn=None,
            charged_to=place.workspace_id,
        )
        stored = await repo.reply("r1")
        assert stored is not None
        return stored.alias, stored.written_by

    assert await run("opus-3", "sonnet") == ("opus-3", "sonnet")  # the fallback answered
    assert await run("sonnet", "sonnet") == ("opus-3", "sonnet")  # continued by the writer
    assert await run("opus-3", "opus-3") == ("opus-3", "opus-3")  # regenerated by the asked model
    assert await run("opus-3", "opus-3") == ("opus-3", "opus-3")
