"""One request scheduler per platform: every outgoing call waits here for its turn.

Replies that start together would otherwise edit together, in spikes that reach the platform's
global limit, and a cheap typing call could take the slot a first reply needed. So each call
declares what it is (its priority) and which limits it spends from (its keys), and one
dispatcher sends, whenever a slot frees, the most urgent call that fits:

- priorities, most urgent first: a reply's first text, its final text, command and button
  answers, access notices, essay posts, intermediate edits, typing;
- coalescing: calls sharing a `coalesce` key (edits of one message) merge while queued; the
  newest call wins and keeps the older one's place in line, so a message never has two
  queued edits and its newest text goes out first;
- intermediate edits leave `kept_for_final` slots of a window free, so a reply's final text
  never waits out a window; everything but a reply's text leaves `kept_for_replies` free, so
  the headroom under a platform's limit goes to what people are waiting for;
- each reply in flight holds a slot of the global window (`hold`, core.budget.holds) from its
  question to its final text, and everything less urgent than a reply's text leaves the held
  slots free: a burst's first and final texts find their slots at once;
- typing goes out only with headroom and an empty queue, and is dropped otherwise.

429s still happen (other clients of the token, clocks that disagree): the adapter reports them
with `pause`, and the key sends nothing until the platform's Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TypeVar

from core.budget.holds import Hold, Holds
from core.budget.shares import share_of
from core.budget.windows import Window, Windows, kind_of

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
GLOBAL = "global"
# True inside a call the scheduler made: an HTTP tracer tells those from calls made elsewhere.
_SCHEDULED: ContextVar[bool] = ContextVar("ember_scheduled_call", default=False)


def scheduled_here() -> bool:
    """Whether the running code is a call the scheduler made (its budget already counts it)."""
    return _SCHEDULED.get()


class Priority(IntEnum):
    """Lower values go first."""

    FIRST_TEXT = 1
    FINAL_TEXT = 2
    ANSWER = 3
    ACCESS_NOTICE = 4
    ESSAY_POST = 5
    EDIT = 6
    TYPING = 7


@dataclass(frozen=True)
class BudgetPolicy:
    """One platform's budget: its windows by key kind, and how much room the cheap calls leave."""

    windows: Mapping[str, Window]
    # Free slots, per window kind, that intermediate edits and typing must leave behind.
    kept_for_final: Mapping[str, int] = field(default_factory=lambda: {"channel": 1})
    # Free slots, per window kind, that everything but a reply's first and final text leaves
    # behind: the headroom under the platform's limit is spent only on what people wait for.
    kept_for_replies: Mapping[str, int] = field(default_factory=dict)
    # Typing needs this many free slots in the global window (and nothing queued) to go out.
    typing_headroom: int = 10
    # Window kinds that belong to the token or the workspace, not to one host: several hosts
    # split them equally (core.budget.shares).
    shared: frozenset[str] = frozenset()


class SchedulerClosed(Exception):
    """The scheduler was closed while a call still waited for its turn."""


@dataclass(eq=False)
class _Queued:
    priority: Priority
    seq: int
    keys: tuple[str, ...]
    call: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any]
    coalesce: str

    @property
    def order(self) -> tuple[int, int]:
        return (self.priority, self.seq)


class RequestScheduler:
    def __init__(self, policy: BudgetPolicy, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep):
        self._whole = policy
        self.policy = policy
        self._windows = Windows(policy.windows)
        self._clock = clock
        self._sleep = sleep
        self._queue: list[_Queued] = []  # sorted by (priority, seq)
        self._by_coalesce: dict[str, _Queued] = {}
        self._seq = 0
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        self._holds = Holds(self._wake.set)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def send(
        self,
        priority: Priority,
        call: Callable[[], Awaitable[T]],
        *,
        keys: tuple[str, ...] = (GLOBAL,),
        coalesce: str = "",
    ) -> T | None:
        """Make `call` when its turn comes and return its result. None when it was merged into a
        newer call with the same `coalesce` key, or was typing without headroom."""
        if self._closed:
            raise SchedulerClosed("the request scheduler is closed")
        if priority is Priority.TYPING and not self._typing_fits(keys):
            return None
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        item = _Queued(priority, self._next_seq(), keys, call, done, coalesce)
        self._enqueue(item)
        self._ensure_dispatcher()
        try:
            result: T | None = await done
        except asyncio.CancelledError:
            self._forget(item)  # the caller gave up: its call must not spend the budget later
            raise
        return result

    def share(self, hosts: int) -> None:
        """Spend only this host's share of the shared windows, one of `hosts` live hosts."""
        self.policy = share_of(self._whole, hosts)
        self._windows.limits = dict(self.policy.windows)
        self._wake.set()  # a bigger share may let a waiting call go now

    def pause(self, key: str, seconds: float) -> None:
        """The platform answered 429 for `key`: nothing spends from it for `seconds`."""
        self._windows.pause(key, self._clock() + max(0.0, seconds))
        self._wake.set()

    def has_room(self, priority: Priority, keys: tuple[str, ...]) -> bool:
        """Whether a call of `priority` spending from `keys` would go out now (nothing more
        urgent waiting ahead of it aside): for choosing between two ways of doing one thing."""
        now = self._clock()
        return all(self._windows.room(key, now) >= self._needed(priority, key, now) for key in keys)

    def held(self, key: str = GLOBAL) -> int:
        """How many slots of `key` replies in flight hold now."""
        return self._holds.count(key, self._clock())

    def hold(self, key: str = GLOBAL) -> Hold:
        """Keep a slot of `key` for a reply's first and final text until the hold is released:
        calls less urgent than those leave it free."""
        return self._holds.take(key, self._clock())

    def outside_call_started(self, key: str = GLOBAL) -> None:
        """A request the scheduler did not make (the SDK's own: login, reads) is on its way:
        it spends from `key` all the same, as the platform counts it."""
        self._windows.spend(key)

    def outside_call_ended(self, key: str = GLOBAL) -> None:
        self._windows.settle(key, self._clock())
        self._wake.set()

    async def aclose(self) -> None:
        self._closed = True
        for item in self._queue:
            if not item.done.done():
                item.done.set_exception(SchedulerClosed("ember is shutting down"))
        self._queue.clear()
        self._by_coalesce.clear()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    # ------------------------------------------------------------------ queue

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _enqueue(self, item: _Queued) -> None:
        older = self._by_coalesce.get(item.coalesce) if item.coalesce else None
        if older is not None:
            # The newest text wins, in the older call's place, at the more urgent priority.
            self._queue.remove(older)
            if not older.done.done():
                older.done.set_result(None)
            item.seq = older.seq
            item.priority = min(item.priority, older.priority)
        if item.coalesce:
            self._by_coalesce[item.coalesce] = item
        bisect.insort(self._queue, item, key=lambda queued: queued.order)
        self._wake.set()

    def _forget(self, item: _Queued) -> None:
        if item in self._queue:
            self._queue.remove(item)
        if item.coalesce and self._by_coalesce.get(item.coalesce) is item:
            del self._by_coalesce[item.coalesce]

    def _typing_fits(self, keys: tuple[str, ...]) -> bool:
        now = self._clock()
        headroom = self.policy.typing_headroom + self._holds.count(GLOBAL, now)
        if self._queue or self._windows.room(GLOBAL, now) < headroom:
            return False
        return all(self._windows.room(key, now) >= self._needed(Priority.TYPING, key, now) for key in keys)

    def _needed(self, priority: Priority, key: str, now: float) -> int:
        kind = kind_of(key)
        needed = 1
        if priority > Priority.FINAL_TEXT:
            needed += self.policy.kept_for_replies.get(kind, 0) + self._holds.count(key, now)
        if priority >= Priority.EDIT:
            needed += self.policy.kept_for_final.get(kind, 0)
        return needed

    def _fits(self, item: _Queued, now: float) -> bool:
        return all(self._windows.room(key, now) >= self._needed(item.priority, key, now) for key in item.keys)

    def _ready_at(self, item: _Queued, now: float) -> float:
        return max(
            (self._windows.free_at(key, now, self._needed(item.priority, key, now)) for key in item.keys),
            default=now,
        )

    # ------------------------------------------------------------------ dispatch

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="ember-request-scheduler")

    async def _dispatch(self) -> None:
        while not self._closed:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = self._clock()
            ready = next((item for item in self._queue if self._fits(item, now)), None)
            if ready is not None:
                self._start(ready, now)
                continue
            # A hold lapsing on its own frees a slot no answer or release announces.
            wake_at = min(min(self._ready_at(item, now) for item in self._queue), self._holds.next_lapse(now))
            self._wake.clear()
            if math.isinf(wake_at):
                await self._wake.wait()  # an answer (or a new call) wakes it
            else:
                await self._sleep_or_wake(max(wake_at - now, 0.0))

    def _start(self, item: _Queued, now: float) -> None:
        self._queue.remove(item)
        if item.coalesce and self._by_coalesce.get(item.coalesce) is item:
            del self._by_coalesce[item.coalesce]
        for key in item.keys:
            self._windows.spend(key)
        task = asyncio.create_task(self._run(item))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, item: _Queued) -> None:
        _SCHEDULED.set(True)  # this task's own context: only this call sees it
        try:
            result = await item.call()
        except BaseException as exc:  # handed to the caller, who decides
            if not item.done.done():
                item.done.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        finally:
            self._settle(item)
        if not item.done.done():
            item.done.set_result(result)

    def _settle(self, item: _Queued) -> None:
        now = self._clock()
        for key in item.keys:
            self._windows.settle(key, now)
        self._wake.set()

    async def _sleep_or_wake(self, seconds: float) -> None:
        """Sleep until the next call fits, or until a new call (or a pause) arrives."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
