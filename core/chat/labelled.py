"""A reply sink that heads the reply's first message with a line (who is writing it).

The engine streams whole message texts into a sink; this one puts `label` before the text of the
first message on every write of it, and leaves it room under the platform's limit, so the label
stays at the top while the words stream in and is never cut off.
"""

from __future__ import annotations

from core.ports import ReplySink


class LabelledSink:
    def __init__(self, inner: ReplySink, label: str) -> None:
        self.max_chars = inner.max_chars - len(label)
        self.edit_interval = inner.edit_interval
        self._inner = inner
        self._label = label
        self._first: str | None = None  # the handle of the message that carries the label

    async def post(self, text: str) -> str:
        if self._first is not None:
            return await self._inner.post(text)
        self._first = await self._inner.post(self._label + text)
        return self._first

    async def edit(self, handle: str, text: str, *, final: bool = False) -> None:
        await self._inner.edit(handle, self._label + text if handle == self._first else text, final=final)

    async def notice(self, text: str) -> None:
        await self._inner.notice(text)
