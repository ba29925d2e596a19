"""Limits that hold across hosts sharing one database (PostgreSQL).

- `SlotLeases`: a member's `max_concurrent` reply slots, held as leases in the store. A slot is
  renewed while its reply runs and lapses `SLOT_LEASE` after its host died, so a crashed host
  never keeps a member waiting for longer than that.
- `SpendTally`: the workspace's spend this month. A full sum is read every `SPEND_CACHE` (the
  check stays cheap); between full sums, each check adds the usage rows written since (by
  primary key), on any host. So a host's total lags the others' only by replies still being
  written, never by 30 seconds of them. (A row committed out of its id's order, under
  concurrent writes on PostgreSQL, is caught by the next full sum.)
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.access import wording
from core.errors import AccessDenied

if TYPE_CHECKING:  # handed in by the access service: see its note on import order
    from core.store.leases_repo import LeasesRepo
    from core.store.spend_repo import SpendRepo

SLOT_LEASE = 60.0  # seconds a slot outlives its host
RENEW_EVERY = SLOT_LEASE / 3


class SlotLeases:
    def __init__(self, leases: LeasesRepo, *, lease_seconds: float = SLOT_LEASE) -> None:
        self._leases = leases
        self._lease_seconds = lease_seconds

    @contextlib.asynccontextmanager
    async def hold(self, platform: str, user_id: str, limit: int) -> AsyncIterator[None]:
        """Hold one of the member's `limit` slots while the body runs, or raise AccessDenied."""
        holder = secrets.token_hex(8)
        name = await self._take_any(platform, user_id, limit, holder)
        if name is None:
            raise AccessDenied(wording.still_writing(limit))
        renewing = asyncio.create_task(self._renew(name, holder), name="ember slot lease")
        try:
            yield
        finally:
            renewing.cancel()
            # The slot is freed even when the reply was cancelled (shutdown, Stop).
            await asyncio.shield(self._leases.release(name, holder))

    async def _take_any(self, platform: str, user_id: str, limit: int, holder: str) -> str | None:
        for slot in range(limit):
            name = f"slot:{platform}:{user_id}:{slot}"
            if await self._leases.take(name, holder, self._lease_seconds):
                return name
        return None

    async def _renew(self, name: str, holder: str) -> None:
        while True:
            await asyncio.sleep(min(RENEW_EVERY, self._lease_seconds / 3))
            with contextlib.suppress(Exception):  # a missed renewal is retried; the lease has slack
                await self._leases.renew([name], holder, self._lease_seconds)


@dataclass
class _Tally:
    month: datetime
    summed_at: datetime
    micros: int
    last_id: int


class SpendTally:
    def __init__(self, spend: SpendRepo, full_sum_every: timedelta) -> None:
        self._spend = spend
        self._full_sum_every = full_sum_every
        self._tallies: dict[tuple[str, str], _Tally] = {}

    async def spent(self, platform: str, workspace_id: str, month: datetime, now: datetime) -> int:
        key = (platform, workspace_id)
        tally = self._tallies.get(key)
        if tally is None or tally.month != month or now - tally.summed_at >= self._full_sum_every:
            micros, last_id = await self._spend.spent_after(platform, workspace_id, month, 0)
            self._tallies[key] = _Tally(month, now, micros, last_id)
            return micros
        more, tally.last_id = await self._spend.spent_after(platform, workspace_id, month, tally.last_id)
        tally.micros += more
        return tally.micros
