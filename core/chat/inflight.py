"""The replies being written on this host: each one's task, its records being written, and why
it was cancelled (a Stop keeps the text so far; a shutdown adds a note to ask again).

The engine registers a reply here while it streams and while its records are written; Stop,
shutdown and a button pressed before the reply's records are written look it up here. Nothing here outlives the process: another host knows a
reply only by its stored row (`core.chat.stop_flags` for a Stop pressed there).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from core.chat.outcome import Outcome


class InFlight:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopped: set[str] = set()
        self._interrupted: set[str] = set()
        # The records being written, by reply; the ends being written, by member.
        self._writes: dict[str, list[asyncio.Task[None]]] = {}
        self._ends_by: dict[str, list[asyncio.Task[None]]] = {}

    def ids(self) -> list[str]:
        """The ids of the replies being generated here now."""
        return [reply_id for reply_id, task in self._tasks.items() if not task.done()]

    def stop(self, reply_id: str) -> bool:
        """End generation of a reply in flight; the text so far stays. False if not running here."""
        task = self._tasks.get(reply_id)
        if task is None or task.done():
            return False
        self._stopped.add(reply_id)
        task.cancel()
        return True

    def interrupt(self, reply_id: str) -> bool:
        """Stop a reply because ember is shutting down: it ends with a note asking to ask again,
        and (status "interrupted") with no buttons that a restarted ember could not honour."""
        if reply_id not in self.ids():
            return False
        self._interrupted.add(reply_id)
        return self.stop(reply_id)

    @contextlib.contextmanager
    def generating(self, outcome: Outcome, task: asyncio.Task[None]) -> Iterator[None]:
        """While the block runs, `task` generates `outcome`'s reply and may be stopped or
        interrupted here. Such a cancellation ends the block quietly, with `outcome.status`
        "stopped" or "interrupted"; any other cancellation (of the caller) goes on up."""
        reply_id = outcome.reply_id
        self._tasks[reply_id] = task
        try:
            yield
        except asyncio.CancelledError:
            if reply_id not in self._stopped:
                raise
            outcome.status = "interrupted" if reply_id in self._interrupted else "stopped"
        finally:
            self._tasks.pop(reply_id, None)
            self._stopped.discard(reply_id)
            self._interrupted.discard(reply_id)

    @contextlib.contextmanager
    def writing(self, reply_id: str, write: asyncio.Task[None], *, by: str = "") -> Iterator[None]:
        """While the block runs, `write` is writing the reply's records: its row as it starts,
        its end (`by` the member whose reply it is) as it finishes (see `records_written`)."""
        logs = [(self._writes, reply_id), (self._ends_by, by)] if by else [(self._writes, reply_id)]
        for log, key in logs:
            log.setdefault(key, []).append(write)
        try:
            yield
        finally:
            for log, key in logs:
                log[key].remove(write)
                if not log[key]:
                    del log[key]

    async def records_written(self, reply_id: str) -> None:
        """Wait for the reply's records being written here, if any: a button pressed as the
        reply began (its row), or as its buttons appeared (its end, written meanwhile)."""
        await _all_of(self._writes.get(reply_id, []))

    async def records_written_by(self, member: str) -> None:
        """Wait for the end records of `member`'s replies being written here, if any."""
        await _all_of(self._ends_by.get(member, []))

    async def all_written(self) -> None:
        """Until every record being written here now is written (before the store closes)."""
        await _all_of([write for writes in self._writes.values() for write in writes])


async def _all_of(writes: list[asyncio.Task[None]]) -> None:
    if writes:
        await asyncio.wait(set(writes))
