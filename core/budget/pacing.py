"""Essay fan-out paced by the platform's one request scheduler, so announcements spend the same
budget as chat, below it in priority: a reply's first and final text, command answers and access
notices go first, and what the fan-out leaves is all it uses."""

from __future__ import annotations

from core.budget.scheduler import GLOBAL, Priority, RequestScheduler


async def _spent() -> bool:
    """The slot is the point: the adapter makes the request itself right after."""
    return True


class BudgetPacer:
    """What the essay outbox asks before each platform request of a delivery."""

    def __init__(self, scheduler: RequestScheduler, concurrency: int) -> None:
        self._scheduler = scheduler
        # Deliveries sent at once: enough to hide each request's latency; the budget sets the pace.
        self.concurrency = concurrency

    async def acquire(self, channel_id: str) -> None:
        await self._scheduler.send(Priority.ESSAY_POST, _spent, keys=(GLOBAL, f"channel:{channel_id}"))

    def pause(self, seconds: float) -> None:
        """A global 429 anyway (another client of the token): the whole platform waits."""
        self._scheduler.pause(GLOBAL, seconds)
