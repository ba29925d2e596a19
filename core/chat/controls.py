"""Reply buttons — Stop, Regenerate, Continue — shared by every platform, who may press them,
and what a press does to a stored reply (`ReplyControls`, which the engine drives them through).

A button's id carries the action and the reply id, and nothing else, so it still works after a
restart: everything it needs is in the `replies` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Protocol

from core.chat import wording
from core.chat.context import ContextReader
from core.chat.inflight import InFlight
from core.chat.labelled import LabelledSink
from core.chat.outcome import Ended, Outcome, WriteReply
from core.chat.stop_flags import RemoteStops, visible_soon
from core.chat.wording import GONE, NOT_YOURS, NOTHING_TO_STOP
from core.config import Settings
from core.events import Message, Place, User
from core.ports import ReplySink
from core.store.chat_repo import ChatRepo, StoredReply

PREFIX = "ember"
# No reply streams longer than this; an older "streaming" row was left by a host that died.
LONGEST_REPLY = timedelta(minutes=30)


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

    async def regenerate(
        self, reply_id: str, user: User, sink: ReplySink, ended: Ended | None = None
    ) -> Outcome: ...

    async def continue_reply(
        self, reply_id: str, user: User, sink: ReplySink, ended: Ended | None = None
    ) -> Outcome: ...


@dataclass(frozen=True)
class ControlResult:
    """What the adapter tells the presser privately, and the new outcome if one ran."""

    notice: str = ""
    outcome: Outcome | None = None


async def press(
    engine: Controllable,
    control: Control,
    reply_id: str,
    user: User,
    sink: ReplySink,
    ended: Ended | None = None,
) -> ControlResult:
    """Run a button press: check who pressed it, then stop, regenerate or continue (`ended` as
    for any reply: called once its end is shown)."""
    if not await engine.may_control(reply_id, user):
        return ControlResult(notice=NOT_YOURS)
    if control is Control.STOP:
        # Streaming here, or (several hosts) on another host, which is asked through the store.
        stopping = engine.stop(reply_id) or await engine.stop_elsewhere(reply_id)
        return ControlResult() if stopping else ControlResult(notice=NOTHING_TO_STOP)
    try:
        if control is Control.REGENERATE:
            return ControlResult(outcome=await engine.regenerate(reply_id, user, sink, ended))
        return ControlResult(outcome=await engine.continue_reply(reply_id, user, sink, ended))
    except LookupError:
        return ControlResult(notice=GONE)


class ReplyControls:
    """What the buttons do to a stored reply: a new answer to its prompt, its continuation, a
    Stop for the host writing it, and who may press them. New replies are written by the
    engine's `write` (so they are admitted, streamed and recorded as any reply)."""

    def __init__(
        self,
        settings: Settings,
        records: ChatRepo,
        context: ContextReader,
        running: InFlight,
        remote_stops: RemoteStops,
        write: WriteReply,
    ) -> None:
        self._settings = settings
        self._records = records
        self._context = context
        self._running = running
        self._remote_stops = remote_stops
        self._write = write

    async def regenerate(
        self, reply_id: str, user: User, sink: ReplySink, ended: Ended | None = None
    ) -> Outcome:
        """A new answer to the prompt of an earlier reply (the sink decides where it shows)."""
        reply, prompt = await self._reply_and_prompt(reply_id)
        context = await self._context.upto(prompt)
        return await self._write(
            context[-1], context, sink, reply.alias, prefill="", reply_id=reply_id, ended=ended
        )

    async def continue_reply(
        self, reply_id: str, user: User, sink: ReplySink, ended: Ended | None = None
    ) -> Outcome:
        """Carry on a reply that stopped at max_tokens, from exactly where it stopped, with the
        model that wrote it: one reply is never written by two models. When that was the
        fallback, the continuation says so, as the answer did."""
        reply, prompt = await self._reply_and_prompt(reply_id)
        context = await self._context.upto(prompt)
        if reply.written_by != reply.alias:
            sink = LabelledSink(sink, wording.continued_by(self._display_name(reply.written_by)))
        return await self._write(
            context[-1], context, sink, reply.written_by, prefill=reply.text, reply_id=reply_id, ended=ended
        )

    async def stop_elsewhere(self, reply_id: str) -> bool:
        """Ask the host streaming `reply_id` (another one: see `InFlight.stop`) to stop it.
        False when its stored row says it already ended."""
        reply = await self._records.reply(reply_id)
        return await self._remote_stops.request(reply_id, reply.status if reply else None)

    async def may_control(self, reply_id: str, user: User) -> bool:
        """Whether `user` may press a reply's buttons (the rule is `may_press`)."""
        if user.is_moderator:
            return True  # moderators may press any reply's: no need to look it up
        await self._running.records_written(reply_id)  # pressed before its row was written
        # Pressed on another host than the one writing the row: it is visible here shortly.
        reply = await visible_soon(lambda: self._records.reply(reply_id))
        return may_press(user, reply.requester_id if reply else None)

    async def replies_streaming_in(self, place: Place) -> list[str]:
        """Replies being written in `place` on any host, by their stored rows."""
        return await self._records.streaming_in(place, started_within=LONGEST_REPLY)

    async def reply_place(self, reply_id: str) -> Place | None:
        """The conversation a stored reply answers in (a regenerate or continue writes there)."""
        reply = await self._ended_reply(reply_id)
        return reply.place if reply else None

    async def reply_handles(self, reply_id: str) -> list[str]:
        """The platform messages a reply was shown in (for a regenerate that rewrites them)."""
        reply = await self._ended_reply(reply_id)
        return list(reply.handles) if reply else []

    async def _ended_reply(self, reply_id: str, *, in_writers_turn: bool = False) -> StoredReply | None:
        """The stored reply, read once its end is recorded. A reply's final buttons show while
        its end is written (`ChatEngine.write_reply`): a press here waits for that write; a press
        on another host than the writer's reads the row until it no longer says "streaming", for
        up to `stop_flags.ROW_PATIENCE` (a reply still running, pressed twice, is read as is)."""
        await self._running.records_written(reply_id)
        reply = await self._records.reply(reply_id, in_writers_turn=in_writers_turn)
        if reply is None or reply.status != "streaming" or reply_id in self._running.ids():
            return reply

        async def ended() -> StoredReply | None:
            again = await self._records.reply(reply_id, in_writers_turn=in_writers_turn)
            return None if again is not None and again.status == "streaming" else again

        return await visible_soon(ended) or reply

    def _display_name(self, alias: str) -> str:
        model = self._settings.models.get(alias)
        return (model.display_name if model else "") or alias

    async def _reply_and_prompt(self, reply_id: str) -> tuple[StoredReply, Message]:
        reply = await self._ended_reply(reply_id, in_writers_turn=True)
        if reply is None:
            raise LookupError(f"no reply {reply_id}")
        return reply, await self._context.prompt_of(reply)
