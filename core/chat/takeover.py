"""A dead host's replies, finished by a survivor.

Every host on a shared database notes each reply it takes on (`replies_in_hand`, written with
the claim of the message it answers) and keeps a liveness lease (`core.ops.liveness`). Every
`SWEEP_SECONDS` each host looks for rows whose host's lease has lapsed; it takes each with a
conditional UPDATE (of two survivors, one wins) and finishes the reply where it stood:

- nothing shown yet (the host died before the model's first words, or before asking it): the
  message is answered, once, as if it had just arrived;
- a reply cut off mid-stream: carried on from the text its row says was shown, in the same
  platform messages (the engine's resume after a dropped stream, with the shown text as
  prefill), its Stop buttons replaced at the end as always;
- a reply finished but not tidied up (the host died between its record and its buttons): its
  final buttons are given;
- Stop pressed for it while no host wrote it: ended as stopped, without asking the model;
- taken over `MAX_TAKEOVERS` times already (a reply that kills every host that writes it):
  ended with the engine's interrupted note (ask again), rather than passed on for ever.

Usage stays exact: the dead host wrote no usage rows for a reply it did not finish, and the
survivor writes one per request it makes, as for any reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from core.chat import transcript
from core.chat.context import ContextReader
from core.chat.endings import record_end, show_end
from core.chat.failover import Attempt
from core.chat.gate import AccessGate
from core.chat.outcome import Outcome, WriteReply
from core.chat.stop_flags import RemoteStops
from core.chat.streaming import Shown, StreamingReply
from core.errors import new_trace_id
from core.events import Message
from core.ports import ReplyReopener, ReplySink, ReplySurface
from core.store import Store, db_now
from core.store.chat_repo import ChatRepo, StoredReply, place_from_key
from core.store.in_hand_repo import InHand, InHandRepo

if TYPE_CHECKING:  # the engine builds this module's `TakenOverReplies`: no import at run time
    from core.chat.engine import ChatEngine

log = logging.getLogger(__name__)

SWEEP_SECONDS = 3.0
MAX_TAKEOVERS = 3

Finisher = Callable[[InHand], Awaitable[None]]


class Takeovers:
    """One sweep per process; each platform adapter registers how it finishes its replies."""

    def __init__(
        self,
        store: Store,
        host_id: str,
        lease_seconds: float,
        *,
        connected: Callable[[str], bool] = lambda platform: True,
    ) -> None:
        """`connected(platform)`: whether this host can reach the platform now (a host still
        logging in leaves the replies to a host that can)."""
        self.host_id = host_id
        self._repo = InHandRepo(store)
        self._lease = timedelta(seconds=lease_seconds)
        self._connected = connected
        self._finishers: dict[str, Finisher] = {}
        self._finishing: set[asyncio.Task[None]] = set()

    def register(self, platform: str, finish: Finisher) -> None:
        self._finishers[platform] = finish

    async def release(self, reply_id: str) -> None:
        """This host finished the reply (however it ended): nobody needs to take it over."""
        try:
            await self._repo.release(reply_id, self.host_id)
        except Exception as error:  # another host would finish it again: say so
            log.error("could not note reply %s as finished: %r", reply_id, error)

    async def run(self) -> None:
        """Sweep every `SWEEP_SECONDS` until cancelled; replies being finished are cancelled too."""
        try:
            while True:
                await asyncio.sleep(SWEEP_SECONDS)
                try:
                    await self.sweep()
                except Exception as error:  # the store failing: look again next time
                    log.warning("could not look for replies of stopped hosts: %r", error)
        finally:
            for task in self._finishing:
                task.cancel()

    async def sweep(self) -> int:
        """Take over what stopped hosts left, and start finishing it; how many were taken."""
        platforms = [platform for platform in self._finishers if self._connected(platform)]
        if not platforms:
            return 0
        orphans = await self._repo.orphans(taken_before=db_now() - self._lease, platforms=platforms)
        taken = 0
        for orphan in orphans:
            if not await self._repo.take(orphan, self.host_id):
                continue  # another host was first
            taken += 1
            log.warning("host %s stopped: finishing its reply %s here", orphan.host, orphan.reply_id)
            task = asyncio.create_task(self._finish(orphan), name="ember-takeover")
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
        return taken

    async def _finish(self, orphan: InHand) -> None:
        try:
            await self._finishers[orphan.place_key.partition(":")[0]](orphan)
        except Exception:
            log.exception("could not finish reply %s of a stopped host", orphan.reply_id)
        finally:
            await self.release(orphan.reply_id)


async def finish_reply(engine: ChatEngine, store: Store, orphan: InHand, reopen: ReplyReopener) -> None:
    """Finish one reply taken over from a stopped host (see the module's note for how)."""
    place = place_from_key(orphan.place_key)
    asked = await transcript.load_history(store, place, limit=1, before_id=orphan.message_id)
    if not asked or asked[-1].id != orphan.message_id:
        log.info("the message reply %s answers is gone: nothing to finish", orphan.reply_id)
        return
    prompt = asked[-1]
    stored = await engine.taken_over.stored_reply(orphan.reply_id)
    handles = stored.handles if stored else []
    after = handles[-1] if handles else prompt.id
    surface = reopen(place, orphan.reply_id, requester_id=prompt.author.id, after=after)
    if stored is not None and stored.status != "streaming":
        finished = Outcome(
            orphan.reply_id,
            trace_id="",
            status=stored.status,
            handles=handles,
            stop_reason=stored.stop_reason,
        )
        await surface.finish(finished, ())
        return
    shown = Shown(stored.text, handles) if stored is not None and handles else Shown()
    try:
        outcome = await _finished(engine, orphan, prompt, surface, shown)
    except Exception:
        await surface.abandon()
        raise
    finally:
        surface.stop_typing()
    await surface.finish(outcome, ())


async def _finished(
    engine: ChatEngine, orphan: InHand, prompt: Message, surface: ReplySurface, shown: Shown
) -> Outcome:
    """Resumed; or stopped, when its asker pressed Stop while no host wrote it; or interrupted,
    when every host that took it over died writing it."""
    taken_over = engine.taken_over
    if await taken_over.stop_was_pressed(orphan.reply_id):
        return await taken_over.end(orphan.reply_id, prompt, surface, shown, status="stopped")
    if orphan.takeovers >= MAX_TAKEOVERS:
        log.error(
            "reply %s was taken over %d times, each host stopping while writing it: ending it",
            orphan.reply_id,
            orphan.takeovers,
        )
        return await taken_over.end(orphan.reply_id, prompt, surface, shown, status="interrupted")
    return await taken_over.resume(orphan.reply_id, prompt, surface, shown)


class TakenOverReplies:
    """What the engine does for a reply taken over from a host that died: carry it on, or end it
    without asking the model. A resumed reply is written by the engine's `write` (admitted,
    streamed and recorded as any reply)."""

    def __init__(
        self,
        records: ChatRepo,
        context: ContextReader,
        access: AccessGate,
        remote_stops: RemoteStops,
        write: WriteReply,
    ) -> None:
        self._records = records
        self._context = context
        self._access = access
        self._remote_stops = remote_stops
        self._write = write

    async def stored_reply(self, reply_id: str) -> StoredReply | None:
        """A reply's row as the store has it (after any write in progress)."""
        return await self._records.reply(reply_id, in_writers_turn=True)

    async def stop_was_pressed(self, reply_id: str) -> bool:
        """Whether a Stop for `reply_id` waits unhonoured (its host died); it is used up."""
        return await self._remote_stops.take_request(reply_id)

    async def resume(self, reply_id: str, prompt: Message, sink: ReplySink, shown: Shown) -> Outcome:
        """Finish a reply that another host began and stopped writing (it died): carried on
        from the text it had shown, in its messages (`shown`; none when it had shown nothing),
        with the model its row names. The member's reply slot is the dead host's lease still,
        so this reply does not take another one."""
        stored = await self.stored_reply(reply_id)
        context = await self._context.upto(prompt)
        alias = stored.written_by if stored else await self._context.channel_alias(prompt.place)
        return await self._write(
            context[-1],
            context,
            sink,
            alias,
            prefill=shown.text,
            reply_id=reply_id,
            shown=shown,
            resumable=True,
        )

    async def end(
        self, reply_id: str, prompt: Message, sink: ReplySink, shown: Shown, *, status: str
    ) -> Outcome:
        """End a reply taken over from a host that stopped, without asking the model: "stopped"
        (a Stop was pressed for it meanwhile) or "interrupted" (it cannot be resumed). What it
        showed stays, with the ending every reply of that status gets."""
        stored = await self.stored_reply(reply_id)
        alias = stored.written_by if stored else await self._context.channel_alias(prompt.place)
        outcome = Outcome(reply_id=reply_id, trace_id=new_trace_id(), status=status, alias=alias)
        reply = StreamingReply(sink)
        reply.resume(shown.text, shown.handles)
        attempt = Attempt(alias=alias, delivered=shown.text)  # no request made: no usage
        await show_end(prompt, outcome, attempt, reply)
        await record_end(self._records, self._access, outcome, prompt, attempt, latency=0.0)
        return outcome
