"""Taking over a stopped host's replies, in the parts: the claim notes its host, a survivor's
sweep takes a dead host's rows once (two survivors racing, one wins) and leaves a live host's
alone, and a reply resumed from its shown text goes on in its last message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import update

from core.chat import Outcome, takeover, transcript
from core.chat.streaming import StreamingReply, split_all
from core.chat.takeover import MAX_TAKEOVERS, Takeovers
from core.chat.wording import INTERRUPTED
from core.events import Message
from core.ops.liveness import HostLiveness
from core.runtime import Runtime
from core.store import ReplyInHand, Store
from core.store.chat_repo import ChatRepo
from core.store.in_hand_repo import InHand, InHandRepo
from tests.essay_support import open_store
from tests.fakes.anthropic_server import FakeAnthropic
from tests.test_chat_engine import make_settings, runtime_for, say
from tests.test_streaming import RecordingSink


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request, tmp_path, "postgres") as store:
        yield store


def survivor(store: Store, host: str, finished: list[tuple[str, str]]) -> Takeovers:
    """A host's sweep (counting any claim as old enough), recording what it finishes."""
    takeovers = Takeovers(store, host, lease_seconds=0)

    async def finish(orphan: InHand) -> None:
        finished.append((host, orphan.reply_id))

    takeovers.register("slack", finish)
    return takeovers


async def test_a_claimed_message_is_noted_with_its_host_and_a_second_claim_notes_nothing(
    store: Store,
) -> None:
    message = say("hello")
    assert await transcript.claim_message(store, message, reply_id="r1", host="a")
    assert not await transcript.claim_message(store, message, reply_id="r2", host="b")
    assert await InHandRepo(store).held_by("a") == ["r1"]
    assert await InHandRepo(store).held_by("b") == []


async def test_two_survivors_take_a_dead_hosts_reply_once(store: Store) -> None:
    await transcript.claim_message(store, say("hello"), reply_id="r1", host="dead")
    finished: list[tuple[str, str]] = []
    hosts = [survivor(store, name, finished) for name in ("b", "c")]
    taken = await asyncio.gather(*(host.sweep() for host in hosts))
    await asyncio.sleep(0.2)  # the finishing tasks run
    assert sorted(taken) == [0, 1]
    assert len(finished) == 1
    winner = finished[0][0]
    assert await InHandRepo(store).held_by("dead") == []
    assert await InHandRepo(store).held_by(winner) == []  # finished, so released
    assert [await host.sweep() for host in hosts] == [0, 0]


async def test_a_live_hosts_replies_are_left_to_it(store: Store) -> None:
    live = HostLiveness(store)
    await live.begin()
    await transcript.claim_message(store, say("hello"), reply_id="r1", host=live.host_id)
    finished: list[tuple[str, str]] = []
    assert await survivor(store, "b", finished).sweep() == 0
    assert finished == [] and await InHandRepo(store).held_by(live.host_id) == ["r1"]
    assert await live.live_hosts() == 1


async def test_a_resumed_reply_goes_on_in_its_last_message() -> None:
    sink = RecordingSink(max_chars=100, edit_interval=0.0)
    shown = "first words " * 12  # two messages' worth
    first, second = split_all(shown, 100)
    sink.messages = {"m1": first, "m2": second}
    reply = StreamingReply(sink)
    reply.resume(shown, ["m1", "m2"])
    reply.append("and the end.")
    assert await reply.finish() == ["m1", "m2"]
    assert sink.messages == {"m1": first, "m2": second + "and the end."}
    assert [op for _, op, _ in sink.writes] == ["edit"]


class RecordingSurface(RecordingSink):
    """A reply surface as the facade drives it: the sink, and how the reply ended."""

    def __init__(self, shown: dict[str, str]) -> None:
        super().__init__(max_chars=2000, edit_interval=0.0)
        self.messages = dict(shown)
        self.finished: list[Outcome] = []
        self.ended = asyncio.Event()

    async def finish(self, outcome: Outcome, leftover: Sequence[str]) -> None:
        self.finished.append(outcome)
        self.ended.set()

    async def abandon(self) -> None:
        self.ended.set()

    def stop_typing(self) -> None:
        pass


@pytest.fixture
async def host(tmp_path: Path, fake_anthropic: FakeAnthropic, postgres_db_url: str) -> AsyncIterator[Runtime]:
    settings = make_settings(tmp_path, fake_anthropic)
    settings = replace(settings, database=replace(settings.database, url=postgres_db_url))
    async with runtime_for(settings) as runtime:
        yield runtime


async def cut_off(host: Runtime, shown: str) -> Message:
    """A reply a dead host was writing: its message claimed, its row showing `shown` in m1."""
    message = say("tell me")
    await transcript.claim_message(host.store, message, reply_id="r1", host="dead")
    records = ChatRepo(host.store)
    await records.start_reply("r1", message, "opus-3", status="streaming")
    await records.save_progress("r1", shown, ["m1"])
    return message


async def finish_here(host: Runtime, surface: RecordingSurface) -> None:
    """This host's sweep takes the dead host's reply and finishes it on `surface`."""
    takeovers = Takeovers(host.store, "b", lease_seconds=0)

    async def finish(orphan: InHand) -> None:
        await takeover.finish_reply(host.engine, host.store, orphan, lambda *_, **__: surface)

    takeovers.register("slack", finish)
    assert await takeovers.sweep() == 1
    await asyncio.wait_for(surface.ended.wait(), 10)


async def test_a_stop_pressed_while_the_replys_host_was_dead_ends_it_stopped_without_the_model(
    host: Runtime, fake_anthropic: FakeAnthropic
) -> None:
    await cut_off(host, "Half a")
    assert await host.engine.stop_elsewhere("r1")  # pressed on a live host: no host writes it
    surface = RecordingSurface({"m1": "Half a"})
    await finish_here(host, surface)
    [outcome] = surface.finished
    assert outcome.status == "stopped" and outcome.handles == ["m1"]
    assert surface.messages == {"m1": "Half a"} and fake_anthropic.requests == []
    stored = await host.engine.stored_reply("r1")
    assert stored is not None and (stored.status, stored.text) == ("stopped", "Half a")


async def test_a_reply_every_host_died_on_ends_with_the_interrupted_note(
    host: Runtime, fake_anthropic: FakeAnthropic
) -> None:
    await cut_off(host, "Half a")
    async with host.store.session() as session:
        await session.exec(update(ReplyInHand).values(takeovers=MAX_TAKEOVERS))  # type: ignore[call-overload]
    surface = RecordingSurface({"m1": "Half a"})
    await finish_here(host, surface)
    [outcome] = surface.finished
    assert outcome.status == "interrupted" and fake_anthropic.requests == []
    assert surface.messages == {"m1": f"Half a\n\n{INTERRUPTED}"}
