"""Reply buttons — Stop, Regenerate, Continue — shared by every platform, and who may press them.

A button's id carries the action and the reply id, and nothing else, so it still works after a
restart: everything it needs is in the `replies` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from core.chat.outcome import Outcome
from core.chat.wording import GONE, NOT_YOURS, NOTHING_TO_STOP
from core.events import User
from core.ports import ReplySink

PREFIX = "ember"


class Control(Enum):
    STOP = "stop"
    REGENERATE = "regen"
    CONTINUE = "cont"

    @property
    def label(self) -> str:
        return {"stop": "Stop", "regen": "Regenerate", "cont": "Continue"}[self.value]


def control_id(control: Control, reply_id: str) -> str:
    return f"{PREFIX}:{control.value}:{reply_id}"


def parse_control_id(custom_id: str) -> tuple[Control, str] | None:
    parts = custom_id.split(":")
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    try:
        return Control(parts[1]), parts[2]
    except ValueError:
        return None


def controls_for(outcome: Outcome | None, *, streaming: bool) -> list[Control]:
    """Which buttons a reply shows: Stop while it streams; afterwards Regenerate, and Continue
    when the model stopped at max_tokens."""
    if streaming:
        return [Control.STOP]
    if outcome is None or outcome.status in ("denied", "interrupted"):
        return []
    buttons = [Control.REGENERATE]
    if outcome.can_continue:
        buttons.append(Control.CONTINUE)
    return buttons


def may_press(user: User, requester_id: str | None) -> bool:
    """Only the person who asked, or a moderator, may press a reply's buttons. `requester_id`
    is None when the reply is not (or no longer) stored."""
    return user.is_moderator or (requester_id is not None and requester_id == user.id)


class Controllable(Protocol):
    """What a button press drives (the chat engine)."""

    async def may_control(self, reply_id: str, user: User) -> bool: ...

    def stop(self, reply_id: str) -> bool: ...

    async def stop_elsewhere(self, reply_id: str) -> bool: ...

    async def regenerate(self, reply_id: str, user: User, sink: ReplySink) -> Outcome: ...

    async def continue_reply(self, reply_id: str, user: User, sink: ReplySink) -> Outcome: ...


@dataclass(frozen=True)
class ControlResult:
    """What the adapter tells the presser privately, and the new outcome if one ran."""

    notice: str = ""
    outcome: Outcome | None = None


async def press(
    engine: Controllable, control: Control, reply_id: str, user: User, sink: ReplySink
) -> ControlResult:
    """Run a button press: check who pressed it, then stop, regenerate or continue."""
    if not await engine.may_control(reply_id, user):
        return ControlResult(notice=NOT_YOURS)
    if control is Control.STOP:
        # Streaming here, or (several hosts) on another host, which is asked through the store.
        stopping = engine.stop(reply_id) or await engine.stop_elsewhere(reply_id)
        return ControlResult() if stopping else ControlResult(notice=NOTHING_TO_STOP)
    try:
        if control is Control.REGENERATE:
            return ControlResult(outcome=await engine.regenerate(reply_id, user, sink))
        return ControlResult(outcome=await engine.continue_reply(reply_id, user, sink))
    except LookupError:
        return ControlResult(notice=GONE)
