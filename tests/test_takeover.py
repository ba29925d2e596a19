"""Taking over a stopped host's replies, in the parts: the claim notes its host, a survivor's
sweep takes a dead host's rows once (two survivors racing, one wins) and leaves a live host's
alone, and a reply resumed from its shown text goes on in its last message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.chat import transcript
from core.chat.streaming import StreamingReply, split_all
from core.chat.takeover import Takeovers
from core.ops.liveness import HostLiveness
from core.store import Store
from core.store.in_hand_repo import InHand, InHandRepo
from tests.essay_support import open_store
from tests.test_chat_engine import say
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
