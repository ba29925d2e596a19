"""Every request the model bills is metered, end to end: the real anthropic SDK against the fake
API, the real store and the real access service. Each test checks the usage rows against what
the fake reported in `message_start` and `message_delta`."""

from __future__ import annotations

import asyncio
import itertools
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import col, select

from bots.cli import main
from bots.discord.traits import discord_traits
from bots.slack.traits import slack_traits
from core.chat import transcript, usage
from core.chat.payload import ANCHOR_EVERY
from core.chat.usage import Tokens, cost_micros
from core.config import OPUS_3, Settings, settings_from_dict
from core.events import Message, Place, User
from core.runtime import Runtime, open_runtime
from core.store import Store, Usage
from tests.access_support import Clock
from tests.fakes.anthropic_server import FakeAnthropic, Reply
from tests.fakes.prompt_cache import PromptCache
from tests.test_streaming import RecordingSink

VERTEX_MODEL = "claude-3-opus@20240229"
PLACE = Place("slack", "T1", "C1", thread_id="1.0")
ALICE = User("U1", "Alice", "slack", "T1")
SPEAKERS_BOT = User("ember", "ember", "slack", "T1")


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("VERTEX_TOKEN", "ya29.test-token")


def settings_for(tmp_path: Path, fake: FakeAnthropic, *, vertex: bool = False, **access: Any) -> Settings:
    backends = [{"provider": "anthropic", "model": OPUS_3}]
    if vertex:
        backends.append({"provider": "vertex", "model": VERTEX_MODEL})
    return settings_from_dict(
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"},
            "providers": {
                "anthropic": {"base_url": fake.url},
                "vertex": {
                    "base_url": fake.vertex_url,
                    "project_id": "p",
                    "region": "us-east5",
                    "access_token_env": "VERTEX_TOKEN",
                },
            },
            "access": {"mode": "open", **access},
            "slack": {"allow_dms": True},
            "models": {"opus-3": {"display_name": "Claude Opus 3", "backends": backends}},
        }
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Runtime]:
    """The runtime with its own access service as the gate, Slack's traits attached."""
    async with open_runtime(settings) as runtime:
        runtime.platforms.attach(slack_traits(settings.slack))
        yield runtime


_ids = iter(range(1, 1_000_000))


def say(text: str, place: Place = PLACE, author: User = ALICE) -> Message:
    return Message(id=f"{next(_ids)}.0", place=place, author=author, text=text)


async def usage_rows(store: Store) -> list[Usage]:
    async with store.session() as session:
        return list((await session.exec(select(Usage).order_by(col(Usage.id)))).all())


def tokens_of(row: Usage) -> Tokens:
    return Tokens(row.input_tokens, row.output_tokens, row.cache_write_tokens, row.cache_read_tokens)


def reported(reply: Reply, *, output: int) -> Tokens:
    return Tokens(reply.input_tokens, output, reply.cache_write, reply.cache_read)


async def test_a_stopped_reply_is_billed_for_what_it_read_and_wrote(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    held = Reply.held(["Once upon ", "a time"], after=1)
    held.input_tokens, held.cache_read, held.cache_write = 5000, 30_000, 1200
    fake_anthropic.script.append(held)
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    settings = settings_for(tmp_path, fake_anthropic)
    async with running(settings) as rt:
        task = asyncio.create_task(rt.engine.respond(say("a story"), sink, reply_id="r-stop"))
        await sink.first_post.wait()
        assert rt.engine.stop("r-stop")
        outcome = await task
        (row,) = await usage_rows(rt.store)
    assert outcome.status == "stopped"
    # message_start said 1 output token; "Once upon " had arrived, billed at least 3.
    billed = reported(held, output=3)
    assert tokens_of(row) == billed and outcome.tokens == billed
    assert row.cost_micros == cost_micros(billed, settings.models["opus-3"].price) > 0
    assert (row.reply_id, row.attempt, row.outcome, row.user_id) == ("r-stop", 0, "stopped", "U1")


async def test_a_broken_stream_that_resumes_meters_both_requests(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    broken = Reply(chunks=["The quick ", "brown fox ", "jumps"], error_after=2, input_tokens=3000)
    broken.cache_write = 1500
    resumed = Reply.text(["jumps over ", "the lazy dog."], input_tokens=40, cache_read=1500, output_tokens=9)
    fake_anthropic.script.extend([broken, resumed])
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    settings = settings_for(tmp_path, fake_anthropic)
    async with running(settings) as rt:
        outcome = await rt.engine.respond(say("a pangram"), sink, reply_id="r-resume")
        first, second = await usage_rows(rt.store)
        metrics = rt.metrics.render().decode()
    assert outcome.status == "done" and outcome.text == "The quick brown fox jumps over the lazy dog."
    # The broken request: message_start's figures, its output estimated from 20 characters.
    assert tokens_of(first) == reported(broken, output=5)
    assert tokens_of(second) == reported(resumed, output=9)
    assert [(r.attempt, r.outcome, r.provider, r.reply_id) for r in (first, second)] == [
        (0, "error", "anthropic", "r-resume"),
        (1, "done", "anthropic", "r-resume"),
    ]
    price = settings.models["opus-3"].price
    assert outcome.cost_micros == first.cost_micros + second.cost_micros
    assert first.cost_micros == cost_micros(reported(broken, output=5), price)
    # The metrics count both requests as the rows do.
    counted = {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "ember_model_tokens_total"
    }
    assert counted == {"input": 3040.0, "output": 14.0, "cache_write": 1500.0, "cache_read": 1500.0}


async def test_a_failover_after_partial_output_meters_each_backend(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    dropped = Reply(chunks=["Hello ", "there, ", "friend"], drop_after=2, input_tokens=2200)
    rescued = Reply.text(["friend."], input_tokens=2210, output_tokens=2)
    fake_anthropic.script_for(OPUS_3).append(dropped)
    fake_anthropic.script_for(VERTEX_MODEL).append(rescued)
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    settings = settings_for(tmp_path, fake_anthropic, vertex=True)
    async with running(settings) as rt:
        outcome = await rt.engine.respond(say("greet me"), sink, reply_id="r-failover")
        first, second = await usage_rows(rt.store)
    assert outcome.status == "done" and outcome.text == "Hello there, friend."
    assert [(r.provider, r.outcome, r.attempt) for r in (first, second)] == [
        ("anthropic", "error", 0),
        ("vertex", "done", 1),
    ]
    assert tokens_of(first) == reported(dropped, output=4)  # "Hello there, " is 13 characters
    assert tokens_of(second) == reported(rescued, output=2)
    assert first.trace_id == second.trace_id == outcome.trace_id


async def test_forgetting_does_not_reset_the_daily_limit(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script.append(Reply.text(["Sure."], input_tokens=1200))
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    async with running(settings_for(tmp_path, fake_anthropic, daily_tokens=1000)) as rt:
        first = await rt.engine.respond(say("hello"), sink)
        gone = await transcript.forget_user(rt.store, "slack", "U1")
        again = await rt.engine.respond(say("hello again"), sink)
        (row,) = await usage_rows(rt.store)
    assert first.status == "done" and gone.messages == 1 and gone.usage_rows == 1
    assert again.status == "denied" and "1,000 tokens" in again.error
    assert len(fake_anthropic.requests) == 1  # the model was never asked again
    # The row no longer names Alice, yet it is what refused her.
    assert row.user_id.startswith("~") and "U1" not in row.user_id
    assert tokens_of(row) == Tokens(input=1200, output=1)


GUILD_DM = Place("discord", "", "D1", is_direct=True)  # a Discord DM names no server
MEMBER = User("42", "Robin", "discord", "")
MOD = User("7", "Mo", "discord", "G1", is_moderator=True)


@pytest.mark.parametrize(
    ("mode", "dm_workspace", "charged"),
    [
        ("request", "", "G1"),  # the server whose grant lets Robin talk
        ("open", "G9", "G9"),  # no grant: the configured DM budget
        ("open", "", "dm"),  # nothing configured: the platform's own "dm" budget
    ],
)
async def test_a_direct_message_is_charged_to_a_budget(
    tmp_path: Path, fake_anthropic: FakeAnthropic, mode: str, dm_workspace: str, charged: str
) -> None:
    answer = Reply.text(["Hi ", "Robin."], input_tokens=900, cache_read=100)
    fake_anthropic.script.append(answer)
    settings = settings_for(
        tmp_path, fake_anthropic, mode=mode, dm_workspace=dm_workspace, monthly_spend_usd=0.01
    )
    sink = RecordingSink(max_chars=2000, edit_interval=0.0)
    clock = Clock(datetime.now(UTC))
    async with open_runtime(settings, access_clock=clock) as rt:
        rt.platforms.attach(discord_traits(settings.discord))
        if mode == "request":
            await rt.access.grant(MOD, "G1", MEMBER.id)
        first = await rt.engine.respond(say("hello", GUILD_DM, MEMBER), sink)
        (row,) = await usage_rows(rt.store)
        month = usage.month_start(clock.now)
        spent = await usage.totals(rt.store, platform="discord", workspace_id=charged, since=month)
        clock.advance(seconds=31)  # past the gate's cache of the month's spend
        again = await rt.engine.respond(say("and again", GUILD_DM, MEMBER), sink)
    assert first.status == "done"
    assert (row.workspace_id, row.place_key) == (charged, GUILD_DM.key)
    assert tokens_of(row) == reported(answer, output=2)
    assert (
        spent.cost_micros == row.cost_micros == cost_micros(tokens_of(row), settings.models["opus-3"].price)
    )
    # 900 input tokens at $15/M pass the one-cent cap of the budget it was charged to.
    assert again.status == "denied" and "$0.01" in again.error


async def test_trimming_is_calibrated_by_what_the_api_counts(
    tmp_path: Path, fake_anthropic: FakeAnthropic
) -> None:
    """The fake counts about 14% more tokens than ember estimates (tests/fakes/prompt_cache.py):
    the first prompt overshoots `context_tokens`; every later one is within 5% of it."""
    fake_anthropic.biller = PromptCache(clock=lambda: 0.0)
    settings = settings_for(tmp_path, fake_anthropic)
    opus = replace(settings.models["opus-3"], context_tokens=3000)
    settings = replace(settings, models={"opus-3": opus}, chat=replace(settings.chat, history_messages=200))
    # No message is an anchor, so trimming cuts at the budget exactly (anchors are tested apart).
    ids = (f"{n}.5" for n in itertools.count() if zlib.crc32(f"{n}.5".encode()) % ANCHOR_EVERY)
    async with running(settings) as rt:
        for n in range(120):
            author = SPEAKERS_BOT if n % 2 else ALICE
            text = f"{n} " + "lorem ipsum dolor sit amet " * 6  # about 40 tokens
            message = Message(id=next(ids), place=PLACE, author=author, text=text, from_self=n % 2 == 1)
            await transcript.record_message(rt.store, message)
        for turn in range(4):
            fake_anthropic.script.append(Reply.text(["Noted."]))
            prompt = Message(id=next(ids), place=PLACE, author=ALICE, text=f"turn {turn}: go on")
            await rt.engine.respond(prompt, RecordingSink(2000, 0.0))
        rows = await usage_rows(rt.store)
    counted = [row.input_tokens + row.cache_write_tokens + row.cache_read_tokens for row in rows]
    assert counted[0] > 3000 * 1.05, counted  # uncalibrated, the estimate let too much in
    assert all(3000 * 0.95 <= c <= 3000 * 1.05 for c in counted[1:]), counted


def test_ember_usage_gives_the_operator_the_month(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ember.db'}"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{url}"\n')
    november = datetime(2026, 11, 5, tzinfo=UTC)
    asyncio.run(_seed_usage(url, november))
    where = ["--platform", "slack", "--workspace", "T1", "--config", str(config)]
    assert main(["usage", *where, "--month", "2026-11", "--csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[:3] == [
        "kind,who,replies,input_tokens,output_tokens,cache_write_tokens,cache_read_tokens,cost_usd",
        "total,total,2,3000,30,0,0,0.047250",
        "member,U1,2,3000,30,0,0,0.047250",
    ]
    assert rows[3:] == [  # the most expensive first
        "backend,opus-3 vertex claude-3-opus@20240229,1,2000,20,0,0,0.031500",
        "backend,opus-3 anthropic claude-3-opus-20240229,1,1000,10,0,0,0.015750",
    ]
    assert main(["usage", *where, "--month", "2026-10"]) == 0
    assert capsys.readouterr().out == "Nothing was used in this workspace in October 2026.\n"
    with pytest.raises(SystemExit) as refused:
        main(["usage", *where, "--month", "11/2026"])
    assert refused.value.code == 2
    assert "write the month as YYYY-MM" in capsys.readouterr().err


async def _seed_usage(url: str, at: datetime) -> None:
    store = Store.open(url)
    try:
        await store.upgrade()
        async with store.session() as session:
            for n, (provider, model) in enumerate((("anthropic", OPUS_3), ("vertex", VERTEX_MODEL)), start=1):
                tokens = Tokens(input=1000 * n, output=10 * n)
                session.add(
                    Usage(
                        created_at=at,
                        platform="slack",
                        workspace_id="T1",
                        user_id="U1",
                        place_key=PLACE.key,
                        alias="opus-3",
                        provider=provider,
                        model=model,
                        input_tokens=tokens.input,
                        output_tokens=tokens.output,
                        cost_micros=cost_micros(tokens, Settings().models["opus-3"].price),
                        trace_id=f"t{n}",
                        outcome="done",
                    )
                )
    finally:
        await store.close()
