"""Limits across hosts over one PostgreSQL database: two AccessServices (two hosts) share a
member's reply slots, a dead host's slots lapse, and the spend cap sees every host's spend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from bots.discord.traits import discord_traits
from core.access import AccessService
from core.access.shared_limits import SlotLeases
from core.config import settings_from_dict
from core.events import Place, User
from core.platforms import Platforms
from core.store import Store
from core.store.leases_repo import LeasesRepo
from tests.access_support import Clock, add_usage
from tests.test_access import ALICE, BOB, CHANNEL, admitted, refusal

G1 = "G1"


@pytest.fixture
async def store(postgres_db_url: str) -> AsyncIterator[Store]:
    store = Store.open(postgres_db_url)
    await store.upgrade()
    yield store
    await store.close()


def host(store: Store, clock: Clock, **access: Any) -> AccessService:
    settings = settings_from_dict({"access": {"mode": "open", **access}})
    platforms = Platforms([discord_traits(settings.discord)])
    return AccessService(settings, store, clock=clock, platforms=platforms)


async def test_max_concurrent_counts_a_members_replies_on_every_host(store: Store) -> None:
    clock = Clock()
    host_a, host_b = host(store, clock, max_concurrent=1), host(store, clock, max_concurrent=1)
    async with host_a.admit(ALICE, CHANNEL):
        assert "still writing a reply for you" in await refusal(host_b, ALICE)
        assert await admitted(host_b, BOB)
    assert await admitted(host_b, ALICE)  # released on host A: free everywhere


async def test_two_hosts_racing_for_a_members_last_slot_give_it_to_one(store: Store) -> None:
    clock = Clock()
    hosts = [host(store, clock, max_concurrent=2) for _ in range(4)]
    inside = asyncio.Event()
    entered: list[int] = []

    async def reply(n: int) -> None:
        async with hosts[n].admit(ALICE, CHANNEL):
            entered.append(n)
            await inside.wait()

    tasks = [asyncio.create_task(reply(n)) for n in range(4)]
    await asyncio.sleep(1.0)
    inside.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len(entered) == 2, results
    assert sum(isinstance(r, Exception) for r in results) == 2


async def test_a_dead_hosts_slot_frees_itself_when_its_lease_runs_out(store: Store) -> None:
    leases = LeasesRepo(store)
    # A host that took Alice's only slot and died: nobody renews or releases it.
    assert await leases.take(f"slot:discord:{ALICE.id}:0", "dead-host", seconds=0.5)
    survivor = host(store, Clock(), max_concurrent=1)
    assert "still writing a reply for you" in await refusal(survivor, ALICE)
    await asyncio.sleep(0.6)
    assert await admitted(survivor, ALICE)


SAFETY = 20.0  # seconds: a safety net for waits, never an expectation


async def _slot_expiry(store: Store) -> str:
    async with store.reading() as session:
        found = await session.exec(text("SELECT expires_at FROM leases WHERE name LIKE 'slot:%'"))  # type: ignore[call-overload]
        return str(found.scalar_one())


async def test_a_held_slot_is_renewed_while_its_reply_runs(store: Store) -> None:
    # A lease long enough never to lapse on a loaded machine; what is checked is that the
    # holder pushes its expiry forward while the reply runs, not how fast.
    slots = SlotLeases(LeasesRepo(store), lease_seconds=3.0)
    async with slots.hold("discord", ALICE.id, 1):
        first = await _slot_expiry(store)
        async with asyncio.timeout(SAFETY):
            while await _slot_expiry(store) == first:  # noqa: ASYNC110 (the database has no event to await)
                await asyncio.sleep(0.05)
        assert await LeasesRepo(store).held("slot:discord:") == [f"slot:discord:{ALICE.id}:0"]
    assert await LeasesRepo(store).held("slot:discord:") == []


async def test_the_spend_cap_sees_what_another_host_just_spent(store: Store) -> None:
    clock = Clock()
    host_a, host_b = host(store, clock, monthly_spend_usd=1.0), host(store, clock, monthly_spend_usd=1.0)
    assert await admitted(host_b, ALICE)  # host B has read the month's total (nothing yet)
    # Host A's reply is metered: the cap is reached.
    await add_usage(store, user_id=BOB.id, workspace_id=G1, at=clock.now, cost_micros=1_000_000)
    assert "monthly budget" in await refusal(host_b, ALICE)
    assert "monthly budget" in await refusal(host_a, User("U3", "Cy", "discord", G1))
    assert await admitted(host_b, User("U1", "Alice", "discord", "G2"), Place("discord", "G2", "C9"))
