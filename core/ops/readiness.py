"""What `/readyz` asks: the store answers, and every configured platform says it is connected.

A platform registers a tiny check when it starts (`readiness.expect("slack")` at start-up, then
`readiness.register("slack", lambda: connected)`); until it registers, it counts as not ready.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Connected = Callable[[], bool]
StoreCheck = Callable[[], Awaitable[None]]


@dataclass
class Readiness:
    store_check: StoreCheck
    _expected: list[str] = field(default_factory=list)
    _checks: dict[str, Connected] = field(default_factory=dict)

    def expect(self, platform: str) -> None:
        """`platform` is configured: not ready until it registers and says connected."""
        if platform not in self._expected:
            self._expected.append(platform)

    def register(self, platform: str, connected: Connected) -> None:
        self.expect(platform)
        self._checks[platform] = connected

    def platforms(self) -> dict[str, bool]:
        """Each expected platform and whether it is connected now."""
        return {name: bool(self._checks.get(name, lambda: False)()) for name in self._expected}

    async def not_ready(self) -> dict[str, str]:
        """What is not ready, each with a short reason; empty when everything is."""
        problems: dict[str, str] = {}
        try:
            await self.store_check()
        except Exception as error:
            problems["store"] = type(error).__name__
        for name, connected in self.platforms().items():
            if not connected:
                problems[name] = "not connected"
        return problems
