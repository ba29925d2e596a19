"""Slots kept for replies in flight: what lets a burst's first and final text go at once.

Fifty people asking at the same moment need fifty first posts within a moment of the model's
first words, and, five seconds later, fifty final texts within a moment of its last. On a
platform allowing fifty requests a second, that works only if nothing else was sent in the
second before each: an intermediate edit, a typing call or an essay post sent then takes the
slot a reply's first or final text needs, and that text waits until the edit leaves the window.

So each reply holds one slot of the global window from the moment its question arrives until
its final text is sent: calls less urgent than a reply's first and final text leave every held
slot free. With a few replies in flight the cheap calls barely notice; with as many replies as
the window has slots, intermediate edits, typing and essay posts wait until replies finish, and
every first and final text finds its slot.

A hold that is never released (a reply path that broke off without finishing) lapses after
`lifetime` seconds, so a slot is never lost for good.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

# Longer than any reply streams (4,096 tokens at 40 a second is under two minutes).
HOLD_LIFETIME = 180.0


class Hold:
    """One reply's slot; `release` when its final text is sent (releasing twice is harmless)."""

    def __init__(self, holds: Holds, key: str, token: int) -> None:
        self._holds = holds
        self.key = key
        self._token = token

    def release(self) -> None:
        self._holds.release(self.key, self._token)


class Holds:
    """The holds of every key, each with the moment it lapses."""

    def __init__(self, changed: Callable[[], None], lifetime: float = HOLD_LIFETIME) -> None:
        self._changed = changed  # the scheduler looks again: a released slot may be free now
        self._lifetime = lifetime
        self._lapse: dict[str, dict[int, float]] = {}
        self._tokens = itertools.count(1)
        # No hold lapses before this: counting (asked for every queued call, every time the
        # scheduler looks) looks for lapsed holds only once it has passed.
        self._earliest = math.inf

    def take(self, key: str, now: float) -> Hold:
        token = next(self._tokens)
        lapse = now + self._lifetime
        self._lapse.setdefault(key, {})[token] = lapse
        self._earliest = min(self._earliest, lapse)
        return Hold(self, key, token)

    def release(self, key: str, token: int) -> None:
        held = self._lapse.get(key)
        if held is not None and held.pop(token, None) is not None:
            if not held:
                del self._lapse[key]
            self._changed()

    def count(self, key: str, now: float) -> int:
        if now >= self._earliest:
            self._forget_lapsed(now)
        return len(self._lapse.get(key, ()))

    def next_lapse(self, now: float) -> float:
        """When the earliest hold lapses on its own (infinity when none is held)."""
        if now >= self._earliest:
            self._forget_lapsed(now)
        return self._earliest

    def _forget_lapsed(self, now: float) -> None:
        for key, held in list(self._lapse.items()):
            for token in [t for t, lapse in held.items() if lapse <= now]:
                del held[token]
            if not held:
                del self._lapse[key]
        self._earliest = min(
            (lapse for held in self._lapse.values() for lapse in held.values()), default=math.inf
        )
