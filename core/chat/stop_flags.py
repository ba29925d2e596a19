"""Stop across hosts: a Stop pressed on one host ends a reply streaming on another.

The pressing host writes a row in the store (`reply_stops`); every host polls the rows of the
replies it is streaming, a few times a second while it streams any, and stops those asked for.
Polling, rather than PostgreSQL's LISTEN/NOTIFY, because it needs no connection held outside
the pool, loses nothing while a connection is re-established, works the same on SQLite, and
costs one indexed read per interval only while replies stream. A press may reach its host
before the reply's row is visible there: the request is written anyway (the reply id is in the
button), and the streaming host honours it whenever it sees it.

A request older than the generation it would stop (pressed just as an earlier generation of the
same reply finished) is not honoured, give or take `CLOCK_SLACK` between the hosts' clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from core.store import Store, db_now
from core.store.stops_repo import StopsRepo

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.4  # a Stop pressed elsewhere ends the reply within about this (well under 1 s)
CLOCK_SLACK = timedelta(seconds=2)
# How long a press waits for a reply row written on another host to become visible here.
ROW_PATIENCE = 2.0


class RemoteStops:
    def __init__(self, store: Store, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._repo = StopsRepo(store)
        self._poll_seconds = poll_seconds
        # Replies streaming here: reply id → (when this generation began, how to stop it).
        self._watched: dict[str, tuple[datetime, Callable[[str], bool]]] = {}
        self._poller: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watching(self, reply_id: str, stop: Callable[[str], bool]) -> Iterator[None]:
        """While this block runs, a Stop requested from any host calls `stop(reply_id)`."""
        self._watched[reply_id] = (db_now(), stop)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="ember remote stops")
        try:
            yield
        finally:
            self._watched.pop(reply_id, None)

    async def request(self, reply_id: str, status: str | None) -> bool:
        """Ask whichever host streams `reply_id` to stop it. `status` is the reply row's, None
        when it is not visible here yet. False when there is nothing to stop."""
        if status is not None and status != "streaming":
            return False
        await self._repo.request(reply_id)
        return True

    async def take_request(self, reply_id: str) -> bool:
        """Whether Stop was asked for `reply_id` and not yet honoured (pressed while no host
        wrote it: its host had died); the request is used up."""
        if not await self._repo.requested([reply_id]):
            return False
        await self._repo.clear([reply_id])
        return True

    async def _poll(self) -> None:
        while self._watched:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self._stop_requested()
            except Exception as error:  # the store failing: keep streaming, try again
                log.warning("could not read Stop requests from other hosts: %r", error)

    async def _stop_requested(self) -> None:
        watched = dict(self._watched)
        if not watched:
            return
        requested = await self._repo.requested(list(watched))
        honoured = []
        for reply_id, at in requested.items():
            began, stop = watched[reply_id]
            if at >= began - CLOCK_SLACK:
                stop(reply_id)
                honoured.append(reply_id)
        if requested:
            await self._repo.clear(list(requested))  # honoured, or older than this generation
        if honoured:
            log.info("stopped %s: Stop was pressed on another host", ", ".join(honoured))


async def visible_soon(
    read: Callable[[], Awaitable[T | None]], *, patience: float = ROW_PATIENCE
) -> T | None:
    """`read()` until it finds something, for up to `patience` seconds: a row another host
    is writing at this moment becomes visible here once its transaction commits."""
    found = await read()
    deadline = asyncio.get_running_loop().time() + patience
    while found is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        found = await read()
    return found
