"""Timing the first words a reply shows (kept apart from the other instruments so that the chat
engine can import it without importing them)."""

from __future__ import annotations

import time
from collections.abc import Callable

from core.ports import ReplySink


class TimedSink:
    """A reply sink that reports, once, how long after its creation the reply's first words
    reached the platform. Created when a message arrives, it measures what the asker waits."""

    def __init__(
        self, inner: ReplySink, observe: Callable[[float], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner = inner
        self._observe: Callable[[float], None] | None = observe
        self._clock = clock
        self._created = clock()

    # Read through, not copied: an adapter may change them mid-reply (Slack does, when its
    # native streaming is refused and it falls back to posting and updating).
    @property
    def max_chars(self) -> int:
        return self._inner.max_chars

    @max_chars.setter
    def max_chars(self, value: int) -> None:
        self._inner.max_chars = value

    @property
    def edit_interval(self) -> float:
        return self._inner.edit_interval

    @edit_interval.setter
    def edit_interval(self, value: float) -> None:
        self._inner.edit_interval = value

    async def post(self, text: str) -> str:
        handle = await self._inner.post(text)
        if self._observe is not None:
            self._observe(self._clock() - self._created)
            self._observe = None
        return handle

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        await self._inner.edit(handle, text, final=final)

    async def notice(self, text: str) -> None:
        await self._inner.notice(text)
