"""Crash recovery in seconds: a delivery's lease is short and renewed only while this process
works on it, so a dead process's rows come due again soon after a restart (still exactly once),
and a process shutting down gives back the rows it claimed but never started."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.budget import Budgets
from core.essays import EssayService
from core.essays.delivery import Delivery
from core.events import User
from core.store import Store
from tests.essay_support import (
    DATABASES,
    FakeTime,
    RecordingAnnouncer,
    announce_unpaced,
    make_service,
    open_store,
    post,
    rows,
)
from tests.fakes.feed_server import FeedServer

MOD = User("M1", "Mod", "discord", "G1", is_moderator=True)
SAFETY = 10.0  # seconds: a safety net for waits, never an expectation


@pytest.fixture(params=DATABASES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request, tmp_path, request.param) as store:
        yield store


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


class HeldAnnouncer(RecordingAnnouncer):
    """The first post hangs (a slow platform call) until `release` is set."""

    def __init__(self) -> None:
        super().__init__("discord")
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def announce(self, delivery: Delivery) -> str:
        if not self.entered.is_set():
            self.entered.set()
            await self.release.wait()
        return await super().announce(delivery)


async def essay_owed_to(service: EssayService, feed_server: FeedServer, channels: int) -> None:
    for n in range(channels):
        await service.subscribe("discord", MOD.workspace_id, f"C{n}", "", MOD)
    feed_server.feed().posts.extend([post(1), post(2)])
    await service.poll_once()  # the first poll records what is there
    feed_server.feed().posts.append(post(3, days_ago=0))
    [report] = await service.poll_once()
    assert report.queued == channels


async def test_after_a_crash_every_owed_announcement_comes_due_within_thirty_seconds(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    first = make_service(store, clock, [feed_server.url()])
    platform = RecordingAnnouncer()
    announce_unpaced(first, budgets, platform, "discord")
    await essay_owed_to(first, feed_server, 20)
    platform.die_after = 7
    with pytest.raises(BaseExceptionGroup):
        await first.deliver_pending()  # kill -9 after the 7th post: nothing more runs
    await first.close()
    platform.die_after = None

    restarted = make_service(store, clock, [feed_server.url()])
    announce_unpaced(restarted, budgets, platform, "discord")
    await restarted.deliver_pending()  # what was never claimed goes at once
    due = await restarted.outbox.next_due()
    assert due is not None and due - clock() <= timedelta(seconds=30)
    clock.advance(seconds=(due - clock()).total_seconds())
    await restarted.deliver_pending()
    await restarted.close()
    assert {c: len(p) for c, p in platform.posts.items()} == {f"C{n}": 1 for n in range(20)}
    assert await rows(store, "SELECT state, count(*) FROM essay_deliveries GROUP BY state") == [("sent", 20)]


async def test_a_slow_delivery_keeps_its_lease_and_no_other_host_takes_it(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    # A lease of 0.3 s is renewed every 0.1 s (real time) while the post hangs.
    slow_host = make_service(store, clock, [feed_server.url()], lease=timedelta(seconds=0.3))
    platform = HeldAnnouncer()
    announce_unpaced(slow_host, budgets, platform, "discord")
    await essay_owed_to(slow_host, feed_server, 3)
    delivering = asyncio.create_task(slow_host.deliver_pending())
    await asyncio.wait_for(platform.entered.wait(), SAFETY)
    clock.advance(minutes=5)  # long past the lease it was claimed with
    other_host = make_service(store, clock, [feed_server.url()])
    announce_unpaced(other_host, budgets, platform, "discord")
    for _ in range(int(SAFETY / 0.05)):  # until the slow host has renewed its lease
        due = await other_host.outbox.next_due()
        if due is not None and due > clock():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the slow host never renewed its lease")
    report = await other_host.deliver_pending()
    assert report.sent == 0 and len(platform.calls) == 2  # the two others, by the slow host
    platform.release.set()
    assert (await asyncio.wait_for(delivering, SAFETY)).sent == 3
    await slow_host.close()
    await other_host.close()
    assert {c: len(p) for c, p in platform.posts.items()} == {f"C{n}": 1 for n in range(3)}
    assert platform.replays == 0 and not any(d.uncertain for d in platform.calls)


async def test_stopping_gives_back_the_deliveries_claimed_but_not_started(
    budgets: Budgets, store: Store, clock: FakeTime, feed_server: FeedServer
) -> None:
    stopping = make_service(store, clock, [feed_server.url()])
    platform = HeldAnnouncer()
    announce_unpaced(stopping, budgets, platform, concurrency=1)  # one at a time
    await essay_owed_to(stopping, feed_server, 3)
    delivering = asyncio.create_task(stopping.deliver_pending())
    await asyncio.wait_for(platform.entered.wait(), SAFETY)  # two claimed, the first started
    delivering.cancel()  # ember run stops its parts on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await delivering
    await stopping.close()
    states = await rows(store, "SELECT channel_id, state, attempts FROM essay_deliveries ORDER BY id")
    assert states == [("C0", "sending", 1), ("C1", "pending", 0), ("C2", "pending", 0)]

    platform.release.set()
    restarted = make_service(store, clock, [feed_server.url()])
    announce_unpaced(restarted, budgets, platform, "discord")
    report = await restarted.deliver_pending()  # no lease to wait for: C1 is owed at once
    await restarted.close()
    assert report.sent == 2
    assert sorted(platform.posts) == ["C1", "C2"]
    assert [d.attempt for d in platform.calls if d.channel_id == "C1"] == [1]
