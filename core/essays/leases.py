"""Keeping this process's claims on delivery rows alive while it works on them.

A claim holds a row for a short lease (`outbox.LEASE`). While the row is being delivered, the
keeper renews that lease every third of it, so a slow post is never taken by another host; when
the process dies (kill -9, a power cut) nothing renews it, and the row is claimed again, as
uncertain, a lease later instead of minutes later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from core.store.outbox_repo import OutboxRepo

log = logging.getLogger(__name__)

# delivery id -> the attempt number this process holds it with
Held = dict[int, int]


class LeaseKeeper:
    def __init__(self, rows: OutboxRepo, clock: Callable[[], datetime], lease: timedelta) -> None:
        self._rows = rows
        self._clock = clock
        self._lease = lease

    @contextlib.asynccontextmanager
    async def holding(self, held: Held) -> AsyncIterator[Held]:
        """Renew the leases of the rows in `held` until the block ends; the caller removes a
        row from `held` once its outcome is recorded."""
        renewing = asyncio.create_task(self._renew(held), name="ember-outbox-leases")
        try:
            yield held
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    async def _renew(self, held: Held) -> None:
        # Real seconds, not the injected clock's: renewal is about this process staying alive.
        every = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            if not held:
                continue
            try:
                await self._rows.renew(dict(held), self._clock(), self._lease)
            except Exception:
                # A missed renewal costs at worst a duplicate attempt (found by its key), never a post.
                log.exception("could not renew the leases of %d essay deliveries", len(held))

    async def give_back(self, held: Held) -> None:
        """Return rows claimed but never started (shutting down): due again at once, their
        attempt not counted."""
        if held:
            await self._rows.release(dict(held), self._clock())
