"""A reply in flight: the core drives the adapter's sink; the adapter only renders.

Text reaches the platform as soon as it arrives; each message is then edited at most once per
`sink.edit_interval` (per message: concurrent replies never share a throttle), and text beyond
`sink.max_chars` continues in a new message, split on a paragraph, line or word boundary with
code fences closed at the cut and reopened after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.ports import ReplySink

FENCE = re.compile(r"^ {0,3}```([^\s`]*)", re.MULTILINE)


class ReplyFailed(Exception):
    """The platform refused to show the reply (missing permission, channel gone, ...)."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(f"{type(cause).__name__}: {cause}")


@dataclass(frozen=True)
class Shown:
    """What a reply showed before another host took it over: its text and its messages."""

    text: str = ""
    handles: Sequence[str] = ()


class ReusingSink:
    """Shows a new reply in an earlier reply's messages (regenerate): each post rewrites the
    next old message, and only when they run out are new ones posted. `leftover` is what the
    new reply did not need, for the adapter to remove."""

    def __init__(self, inner: ReplySink, reuse: Sequence[str]) -> None:
        self.max_chars = inner.max_chars
        self.edit_interval = inner.edit_interval
        self._inner = inner
        self.leftover = list(reuse)

    async def post(self, text: str) -> str:
        if not self.leftover:
            return await self._inner.post(text)
        handle = self.leftover.pop(0)
        await self._inner.edit(handle, text)
        return handle

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        await self._inner.edit(handle, text, final=final)

    async def notice(self, text: str) -> None:
        await self._inner.notice(text)


def open_fence(text: str) -> str | None:
    """The language tag of a code fence left open at the end of `text` ("" if untagged)."""
    language: str | None = None
    for match in FENCE.finditer(text):
        language = match.group(1) if language is None else None
    return language


def split_once(text: str, limit: int) -> tuple[str, str]:
    """Cut `text` into a head that fits `limit` (fence closed if needed) and the rest.

    The rest is reopened in the same fence, so every piece renders on its own.
    """
    if len(text) <= limit:
        return text, ""
    room = limit - 4  # space for a closing "\n```"
    cut = _boundary(text, room)
    head, rest = text[:cut].rstrip(), text[cut:].lstrip("\n")
    language = open_fence(head)
    if language is not None:
        head += "\n```"
        rest = f"```{language}\n{rest}"
    return head, rest


def _boundary(text: str, room: int) -> int:
    window = text[: room + 1]
    floor = room // 2  # a boundary this far in keeps pieces reasonably full
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator, 0, room)
        if at >= floor:
            return at + len(separator)
    return room


def split_all(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while text:
        head, text = split_once(text, limit)
        pieces.append(head)
    return pieces


class StreamingReply:
    """Feeds text to a sink with per-message throttled edits and clean splits.

    A single writer task talks to the platform, so the model's stream is never slowed by a slow
    edit: text keeps accumulating and the next edit carries all of it.
    """

    def __init__(self, sink: ReplySink, *, clock: Callable[[], float] | None = None) -> None:
        self._sink = sink
        self._clock = clock or asyncio.get_running_loop().time
        self.handles: list[str] = []
        self.text = ""  # everything received
        self._tail = ""  # the part shown in the newest message
        self._shown = ""  # what the newest message currently says
        self._last_write: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None

    @property
    def started(self) -> bool:
        return bool(self.text)

    def resume(self, text: str, handles: Sequence[str]) -> None:
        """Carry on a reply shown elsewhere (by a host that stopped): `text` in the messages
        `handles`, split as this class splits, so what comes next extends the last of them."""
        if not handles:
            return
        rest = text
        for _ in handles[:-1]:
            rest = split_once(rest, self._sink.max_chars)[1]
        self.text, self.handles = text, list(handles)
        # The last message may show less than `rest` (its newest edit was still to come): the
        # next write sends all of it.
        self._tail = self._shown = rest
        self._last_write = dict.fromkeys(self.handles, -math.inf)

    def append(self, text: str) -> None:
        if not text:
            return
        if self._failure is not None:
            raise ReplyFailed(self._failure)
        self.text += text
        self._tail += text
        self._wake.set()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="ember-reply-writer")

    async def finish(self, suffix: str = "") -> list[str]:
        """Show everything (plus `suffix`, e.g. a note) and wait until the platform has it."""
        if suffix:
            self.append(suffix)
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        if self._failure is not None:
            raise ReplyFailed(self._failure)
        return self.handles

    async def abort(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._sync()
                if self._closing and self._tail == self._shown:
                    return
        except Exception as exc:  # the platform refused: surface it to the engine, lose no text
            self._failure = exc

    async def _sync(self) -> None:
        limit = self._sink.max_chars
        while self._tail != self._shown:  # nothing new: no write, so no wait for the throttle
            await self._throttle()  # more text may arrive meanwhile; the write below carries it
            if len(self._tail) > limit:
                head, rest = split_once(self._tail, limit)
                await self._write(head, final=True)  # sealed: this message is complete
                self._tail, self._shown = rest, ""  # the rest starts a new message
                continue
            if self._tail and self._tail != self._shown:
                # Once finishing, no more text comes: this write is the reply's final text.
                await self._write(self._tail, final=self._closing)
            return

    async def _throttle(self) -> None:
        if not self._shown:
            return  # the next write is a new message: post at once
        wait = self._last_write[self.handles[-1]] + self._sink.edit_interval - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _write(self, text: str, *, final: bool) -> None:
        if self._shown:
            await self._sink.edit(self.handles[-1], text, final=final)
        else:
            self.handles.append(await self._sink.post(text))
        self._last_write[self.handles[-1]] = self._clock()
        self._shown = text
