"""What happened to one request: for the adapter (which buttons to show) and for tests; and
the engine's call that writes one reply, for the parts that start a reply through it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.chat.streaming import Shown
from core.chat.usage import Tokens
from core.events import Message
from core.ports import ReplySink


def new_reply_id() -> str:
    """A fresh reply id: adapters take one up front to label buttons before the reply starts."""
    return uuid.uuid4().hex


@dataclass
class Outcome:
    reply_id: str
    trace_id: str
    status: str  # done | stopped | interrupted | error | denied
    text: str = ""
    handles: list[str] = field(default_factory=list)
    stop_reason: str = ""
    alias: str = ""
    model: str = ""
    provider: str = ""
    tokens: Tokens = field(default_factory=Tokens)
    cost_micros: int = 0
    error: str = ""

    @property
    def can_continue(self) -> bool:
        return self.status == "done" and self.stop_reason == "max_tokens"


# Called once a reply's end is shown, before its records are written: the adapter's final buttons
# (`ReplySurface.finish`), which so need not wait for the store's writer under load.
Ended = Callable[[Outcome], Awaitable[None]]


class WriteReply(Protocol):
    """`ChatEngine.write_reply`: answer `prompt` (the last of `history`) into `sink` with the
    model of `alias`, carrying on from `prefill`; `shown` and `resumable` as for a reply taken
    over from a host that died; `ended` called once its end is shown."""

    async def __call__(
        self,
        prompt: Message,
        history: Sequence[Message],
        sink: ReplySink,
        alias: str,
        *,
        prefill: str,
        reply_id: str | None,
        shown: Shown | None = None,
        resumable: bool = False,
        ended: Ended | None = None,
    ) -> Outcome: ...
