"""Essay fan-out paced by the platform's one request scheduler, so announcements spend the same
budget as chat, below it in priority: a reply's first and final text, command answers and access
notices go first, and what the fan-out leaves is all it uses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from core.budget.scheduler import GLOBAL, Priority, RequestScheduler

T = TypeVar("T")


class BudgetPacer:
    """What the essay outbox asks before each platform request of a delivery."""

    def __init__(self, scheduler: RequestScheduler, concurrency: int) -> None:
        self._scheduler = scheduler
        # Deliveries sent at once: enough to hide each request's latency; the budget sets the pace.
        self.concurrency = concurrency

    async def send(self, channel_id: str, call: Callable[[], Awaitable[T]]) -> T:
        """The request made in its turn, inside the scheduler: counted once, from its answer."""
        result = await self._scheduler.send(Priority.ESSAY_POST, call, keys=self._keys(channel_id))
        return cast(T, result)  # None only for typing and merged edits, never an essay post

    @staticmethod
    def _keys(channel_id: str) -> tuple[str, ...]:
        return (GLOBAL, f"channel:{channel_id}")

    def pause(self, seconds: float) -> None:
        """A global 429 anyway (another client of the token): the whole platform waits."""
        self._scheduler.pause(GLOBAL, seconds)
