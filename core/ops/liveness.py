"""This host's liveness lease: how the other hosts sharing the database know it is running.

Each `ember run` on PostgreSQL holds the lease `host:<id>` (a fresh id per process), renewed
every `RENEW_SECONDS`. When the host dies (kill -9, a power cut, a lost network) the lease
lapses `LEASE_SECONDS` later; the others then take over the replies it had in hand
(`core.chat.takeover`), and share the platforms' request budgets among fewer hosts
(`core.budget.shares`). The lease is the same as the others in the leases table, so a host
counts the live ones with one indexed read.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from core.store import Store
from core.store.in_hand_repo import HOST_LEASE_PREFIX, host_lease
from core.store.leases_repo import LeasesRepo

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0  # a dead host's work is taken over this long after its last renewal
RENEW_SECONDS = LEASE_SECONDS / 3  # two renewals may fail before the lease lapses


class HostLiveness:
    def __init__(
        self,
        store: Store,
        *,
        lease_seconds: float = LEASE_SECONDS,
        counted: Callable[[int], None] | None = None,
    ) -> None:
        """`counted` hears how many hosts are live, at the start and at every renewal."""
        self.host_id = secrets.token_hex(8)
        self.lease_seconds = lease_seconds
        self._leases = LeasesRepo(store)
        self._counted = counted

    async def begin(self) -> None:
        """Take the lease: before this host claims anything, the others must see it alive."""
        await self._leases.take(host_lease(self.host_id), self.host_id, self.lease_seconds)
        await self._count()

    async def run(self) -> None:
        """Renew the lease until cancelled; then let it go at once (a clean stop)."""
        try:
            while True:
                await asyncio.sleep(self.lease_seconds / 3)
                try:
                    await self._renew()
                    await self._count()
                except Exception as error:  # the store failing: the lease has slack for two misses
                    log.warning("could not renew this host's liveness lease: %r", error)
        finally:
            await asyncio.shield(self._leases.release(host_lease(self.host_id), self.host_id))

    async def live_hosts(self) -> int:
        """How many hosts hold a running liveness lease (this one included, at least 1)."""
        return max(1, len(await self._leases.held(HOST_LEASE_PREFIX)))

    async def _count(self) -> None:
        if self._counted is not None:
            self._counted(await self.live_hosts())

    async def _renew(self) -> None:
        if not await self._leases.renew([host_lease(self.host_id)], self.host_id, self.lease_seconds):
            # Lapsed (a long pause, the database away): another host may have taken over this
            # host's replies, so say so; the lease is taken again for what comes next.
            log.error(
                "this host's liveness lease lapsed: other hosts may be finishing replies it was writing"
            )
            await self.begin()
