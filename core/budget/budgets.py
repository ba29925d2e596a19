"""Each platform's one request scheduler, created when its adapter attaches and closed with the
runtime: chat replies, command answers, access notices and essay fan-out on a platform all
spend from the same budget, so they must share one scheduler."""

from __future__ import annotations

from core.budget.scheduler import BudgetPolicy, RequestScheduler

# A platform whose adapter declared no budget (the terminal): nothing is limited.
UNLIMITED = BudgetPolicy(windows={})


class Budgets:
    def __init__(self) -> None:
        self._schedulers: dict[str, RequestScheduler] = {}
        self._hosts = 1  # the live hosts spending the tokens' budgets (core.budget.shares)

    def for_platform(self, platform: str, policy: BudgetPolicy | None = None) -> RequestScheduler:
        """The platform's scheduler, created on first use with `policy` (unlimited when None).
        An adapter attaching again (a reconnect) keeps the scheduler, and with it the send log
        and any 429 pause it holds."""
        scheduler = self._schedulers.get(platform)
        if scheduler is None:
            scheduler = RequestScheduler(policy or UNLIMITED)
            scheduler.share(self._hosts)
            self._schedulers[platform] = scheduler
        return scheduler

    def share(self, hosts: int) -> None:
        """`hosts` live hosts share every platform's token-wide budgets: this one spends its share."""
        if hosts != self._hosts:
            self._hosts = hosts
            for scheduler in self._schedulers.values():
                scheduler.share(hosts)

    async def aclose(self) -> None:
        for scheduler in self._schedulers.values():
            await scheduler.aclose()
        self._schedulers.clear()
