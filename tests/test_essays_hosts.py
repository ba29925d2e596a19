"""Essays on several hosts sharing one PostgreSQL database: a feed is polled by one host at a
time, and the "works again" notice after a failure streak is sent once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.budget import Budgets
from core.essays import EssayService
from core.essays.wording import POLLED_ELSEWHERE
from core.store import Store
from tests.essay_support import FakeTime, make_service, open_store, post
from tests.fakes.feed_server import FeedServer
from tests.test_essays import announcer, subscribe


@pytest.fixture
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(request, tmp_path, "postgres") as store:
        yield store


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def hosts(store: Store, feed_server: FeedServer, clock: FakeTime) -> AsyncIterator[list[EssayService]]:
    made = [make_service(store, clock, [feed_server.url("feed")]) for _ in range(3)]
    yield made
    for service in made:
        await service.close()


async def test_hosts_polling_a_due_feed_at_once_fetch_it_once(
    hosts: list[EssayService], feed_server: FeedServer
) -> None:
    feed_server.feed().posts.append(post(1))
    reports = await asyncio.gather(*(host.poll_once(due_only=True) for host in hosts))
    assert len(feed_server.requests_to("feed")) == 1
    assert sum(len(r) for r in reports) == 1  # the others found it being polled, or polled already
    reports = await asyncio.gather(*(host.poll_once(due_only=True) for host in hosts))
    assert len(feed_server.requests_to("feed")) == 1 and reports == [[], [], []]  # not due again


async def test_a_poll_asked_for_while_another_host_polls_says_so(
    hosts: list[EssayService], feed_server: FeedServer
) -> None:
    feed_server.feed().fault = "slow"  # the first host's fetch hangs
    first = asyncio.create_task(hosts[0].poll_once())
    await asyncio.sleep(0.5)
    assert len(feed_server.requests_to("feed")) == 1  # hanging, with the feed's lease held
    [report] = await hosts[1].poll_once()
    assert not report.ok and report.error == POLLED_ELSEWHERE
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_the_works_again_notice_is_sent_once_whichever_hosts_poll(
    hosts: list[EssayService], feed_server: FeedServer, clock: FakeTime, budgets: Budgets
) -> None:
    recorders = [announcer(host, budgets) for host in hosts]
    await subscribe(hosts[0], 1)
    feed_server.feed().posts.append(post(1))
    [seeded] = await hosts[0].poll_once()
    assert seeded.ok
    feed_server.feed().fault = "403"
    for round_ in range(8):  # a day and more of failures, polled by each host in turn
        clock.advance(hours=4)
        await hosts[round_ % 3].poll_once()
    told = [text for r in recorders for _, text in r.moderators]
    assert len([t for t in told if "failing since" in t]) == 1
    feed_server.feed().fault = ""
    clock.advance(hours=4)
    await asyncio.gather(*(host.poll_once() for host in hosts))  # at once: one polls
    for host in hosts:
        await host.poll_once()  # one after another
    told = [text for r in recorders for _, text in r.moderators]
    assert len([t for t in told if "works again" in t]) == 1
