"""Sliding windows: how many requests a key (the whole token, a channel, a method) may make.

A platform publishes its limits as "N requests per T seconds" for some scope: Discord's global
50 a second per bot token, its per-channel message windows, Slack's per-method tiers. Each scope
is a key here, and each key keeps the times its last N requests were answered: a request fits
when fewer than N were answered in the last T seconds or are still on their way. The platform
counts a request when it arrives, which is after ember sent it (how much after depends on the
network and on how busy ember's own event loop is) but never after its answer came back: so
counting from the answer, and counting every request in flight, never undercounts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """At most `limit` requests in any `seconds`-long span."""

    limit: int
    seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.seconds > 0:
            raise ValueError(f"a window needs limit >= 1 and seconds > 0, got {self.limit}/{self.seconds}")


def kind_of(key: str) -> str:
    """`channel:123` is of kind `channel`; a key without a colon is its own kind (`global`)."""
    return key.partition(":")[0]


class Windows:
    """The send log of every key whose kind has a window; keys of other kinds are unlimited."""

    def __init__(self, limits: Mapping[str, Window]) -> None:
        self.limits = dict(limits)
        self._sent: dict[str, deque[float]] = {}  # answer times, oldest first
        self._flying: dict[str, int] = {}  # requests sent and not yet answered
        self._paused_until: dict[str, float] = {}

    def room(self, key: str, now: float) -> int:
        """How many more requests `key` may make right now (a large number when unlimited)."""
        window = self.limits.get(kind_of(key))
        if window is None:
            return 1 << 30
        if self._paused_until.get(key, 0.0) > now:
            return 0
        sent = self._forget_old(key, window, now)
        return window.limit - len(sent) - self._flying.get(key, 0)

    def free_at(self, key: str, now: float, needed: int = 1) -> float:
        """The moment `key` has `needed` free slots again (now, when it has them; infinity when
        that waits for requests in flight to be answered)."""
        window = self.limits.get(kind_of(key))
        if window is None:
            return now
        paused = self._paused_until.get(key, 0.0)
        sent = self._forget_old(key, window, now)
        excess = len(sent) + self._flying.get(key, 0) - (window.limit - needed)
        if excess > len(sent):
            return math.inf
        earliest = sent[excess - 1] + window.seconds if excess > 0 else now
        return max(earliest, paused, now)

    def spend(self, key: str) -> None:
        """A request for `key` is on its way."""
        if kind_of(key) in self.limits:
            self._flying[key] = self._flying.get(key, 0) + 1

    def settle(self, key: str, now: float) -> None:
        """The request's answer came (or it failed): it counts from `now` on."""
        if kind_of(key) not in self.limits:
            return
        flying = self._flying.get(key, 0) - 1
        if flying > 0:
            self._flying[key] = flying
        else:
            self._flying.pop(key, None)
        self._sent.setdefault(key, deque()).append(now)

    def pause(self, key: str, until: float) -> None:
        """The platform said "wait" (a 429): `key` sends nothing before `until`."""
        self._paused_until[key] = max(self._paused_until.get(key, 0.0), until)

    def _forget_old(self, key: str, window: Window, now: float) -> deque[float]:
        sent = self._sent.get(key)
        if sent is None:
            return deque()
        while sent and sent[0] <= now - window.seconds:
            sent.popleft()
        if not sent:
            # Channels come and go: keep no empty log for each one ever written to.
            del self._sent[key]
        return sent
