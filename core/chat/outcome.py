"""What happened to one request: for the adapter (which buttons to show) and for tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from core.chat.usage import Tokens


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
