"""Keys seen lately: the first claim of a key wins, later claims within `ttl` lose.

Slack retries an event it thinks went unanswered (after about 0, 1 and 5 minutes), and a mention
in a channel arrives twice, as `app_mention` and as `message`. This per-process set catches both
cheaply; the transcript's unique (place, message) row catches them across hosts.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

RETRY_WINDOW = 15 * 60.0


class RecentKeys:
    def __init__(self, ttl: float = RETRY_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def claim(self, key: str) -> bool:
        """True the first time `key` is claimed within the window."""
        now = self._clock()
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at < self._ttl:
                break
            del self._seen[oldest]
        if key in self._seen:
            return False
        self._seen[key] = now
        return True
