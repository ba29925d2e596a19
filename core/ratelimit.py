"""Pacing platform requests: a token bucket per platform, and a minimum gap per channel.

Announcements fan out to many channels at once; the platforms allow only so much (Discord about
50 requests a second for the whole bot, Slack about one post a second per channel). Each
request (the adapter asks right before making it, so only requests made cost a token) first
waits for its channel's gap, then for a token, so bursts are smoothed here rather than
answered with 429s. A 429 that comes anyway pauses the bucket for its Retry-After.

Reservations are first come, first served: each caller takes a token (the count may go below
zero) and sleeps exactly until its token would have been earned. No lock is needed in asyncio.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class RateLimit:
    """What one platform allows ember's announcements: part of each adapter's traits."""

    per_second: float
    burst: float = 1.0
    # Minimum seconds between two requests to the same channel (0: none).
    per_channel_seconds: float = 0.0
    # Announcements sent at once (the bucket, not this, sets the pace; this hides latency).
    concurrency: int = 16


# Where no adapter said otherwise: a slow, safe pace. Each adapter's traits
# (core.ports.PlatformTraits.rate_limit) carry its platform's real numbers.
CAUTIOUS = RateLimit(per_second=10.0, burst=1.0)


def default_rate_limit(platform: str) -> RateLimit:
    """The pace for a platform whose adapter registered no limit of its own. The core knows no
    platform's numbers (they arrive with the adapter's traits), so every platform gets the same."""
    return CAUTIOUS


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`; `acquire` waits for one."""

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._stamp = clock()  # tokens are counted up to this moment (may lie ahead: a pause)

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def reserve(self) -> float:
        """Take a token now; return how long to wait before using it."""
        now = self._clock()
        self._refill(now)
        self._tokens -= 1
        ready = self._stamp + max(0.0, -self._tokens) / self.rate
        return max(0.0, ready - now)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)

    def pause(self, seconds: float) -> None:
        """The platform said "wait" for everyone: hand out nothing for `seconds`, then no burst."""
        now = self._clock()
        self._refill(now)
        self._tokens = min(self._tokens, 0.0)
        self._stamp = max(self._stamp, now + seconds)


class Pacer:
    """One platform's pace: a per-channel gap, then a token from the platform's bucket."""

    def __init__(
        self, limit: RateLimit, *, clock: Monotonic = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.limit = limit
        self.bucket = TokenBucket(limit.per_second, limit.burst, clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep
        # Next moment each channel may be written to; lives as long as this pacer (one process).
        self._channel_free: dict[str, float] = {}

    async def acquire(self, channel_id: str) -> None:
        gap = self.limit.per_channel_seconds
        if gap > 0:
            now = self._clock()
            start = max(now, self._channel_free.get(channel_id, now))
            self._channel_free[channel_id] = start + gap
            if start > now:
                await self._sleep(start - now)
        await self.bucket.acquire()

    async def send(self, channel_id: str, call: Callable[[], Awaitable[T]]) -> T:
        await self.acquire(channel_id)
        return await call()

    @property
    def concurrency(self) -> int:
        return self.limit.concurrency

    def pause(self, seconds: float) -> None:
        self.bucket.pause(seconds)
