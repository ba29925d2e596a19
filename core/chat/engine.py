"""The one entry point for chat: access → context → route → stream → record.

Adapters hand the engine a message, optionally the context they read from their platform, and a
reply sink. Everything else — who may talk, which model answers, failover and resume, what it
cost, what the user is told when things go wrong — happens here, once, for every platform. The
engine orchestrates; the parts live beside it: `context` (what the model is shown), `failover`
(the walk over backends), `streaming` (the reply in flight), `inflight` (the replies running here),
`endings` (a reply's end shown and recorded) and the chat repository. A button's regenerate or
continue (`controls`) and a reply taken over from a dead host (`takeover`) use this flow too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.chat import payload, wording
from core.chat.context import ContextReader, ContextSource
from core.chat.controls import ReplyControls
from core.chat.endings import log_refused, record_when_written, show_end
from core.chat.failover import Attempt, Failover
from core.chat.gate import AccessGate, OpenGate
from core.chat.inflight import InFlight
from core.chat.outcome import Ended, Outcome, new_reply_id
from core.chat.progress import saving_progress
from core.chat.routing import Router
from core.chat.stop_flags import RemoteStops
from core.chat.streaming import ReplyFailed, Shown, StreamingReply
from core.chat.takeover import TakenOverReplies
from core.config import Settings
from core.errors import AccessDenied, ModelError, new_trace_id
from core.events import Message, Place, User
from core.logs import log_context
from core.ops.timed_sink import TimedSink
from core.ports import HistoryReader, ReplySink
from core.store import Store
from core.store.chat_repo import ChatRepo, StoredReply
from core.store.transcript_repo import TranscriptRepo

if TYPE_CHECKING:
    from core.ops.metrics import Metrics

# One logger for the chat path, as before the split: operators filter on it.
log = logging.getLogger("core.chat")


class ChatEngine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        *,
        access: AccessGate | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self.store = store
        self.router = router
        self.access: AccessGate = access or OpenGate()
        self._clock = clock
        self._records = ChatRepo(store)
        self._transcript = TranscriptRepo(store)
        self._context = ContextReader(settings, self._records, self._transcript)
        self._failover = Failover(settings, router)
        self._running = InFlight()
        self._remote_stops = RemoteStops(store)
        # Where hosts share the database, a reply's progress is saved as it streams, so another
        # host can finish it should this one die (`core.chat.progress`).
        self._saves_progress = store.dialect != "sqlite"
        # What the buttons do, and what a host that took over a dead host's reply does: both
        # write their replies through `write_reply`, the one flow below.
        self.controls = ReplyControls(
            settings, self._records, self._context, self._running, self._remote_stops, self.write_reply
        )
        self.taken_over = TakenOverReplies(
            self._records, self._context, self.access, self._remote_stops, self.write_reply
        )

    def add_context_source(self, source: ContextSource) -> None:
        """Register extra system-prompt context, consulted for every request in a place."""
        self._context.add_source(source)

    def set_history_reader(self, platform: str, reader: HistoryReader) -> None:
        """Read context for `platform` from the platform itself instead of ember's store."""
        self._context.set_reader(platform, reader)

    async def respond(
        self,
        message: Message,
        sink: ReplySink,
        *,
        history: Sequence[Message] | None = None,
        alias: str | None = None,
        reply_id: str | None = None,
        recorded: bool = False,
        ended: Ended | None = None,
    ) -> Outcome:
        """Answer `message`. `history` is platform-read context (oldest first, without
        `message`); when None, context comes from ember's own store of this place.
        `reply_id` (from `new_reply_id`) lets the adapter label buttons before the reply starts;
        `ended` is called once with the outcome when the reply's end is shown (its buttons)."""
        # The message is written while the context is read and the model is asked: the model
        # needs only what is in memory, and under load the writer's turn on SQLite can take
        # seconds. The write is awaited before the reply is finished (and its error surfaces).
        # An adapter that already recorded the message (to claim it) says so with `recorded`.
        recording = None if recorded else asyncio.create_task(self._transcript.record(message))
        if self._metrics is not None:
            # Timed from here: what the asker waits for, the store's and the model's time included.
            observe = self._metrics.first_text_seconds.labels(message.place.platform).observe
            sink = TimedSink(sink, observe)
        try:
            context, chosen = await self._context.for_message(message, history, alias)
            # A claimed message is in this host's hand: should it die, another resumes the reply.
            outcome = await self.write_reply(
                message,
                context,
                sink,
                chosen,
                prefill="",
                reply_id=reply_id,
                recording=recording,
                resumable=recorded,
                ended=ended,
            )
        finally:
            if recording is not None and not recording.done():
                await asyncio.wait({recording})  # never leave the write behind
        if recording is not None:
            recording.result()  # a failed write is an error even when the reply was shown
        return outcome

    # ------------------------------------------------------------------ the parts beside it
    # For the callers that hold the engine (the facade, shutdown, `controls.Controllable`).

    def stop(self, reply_id: str) -> bool:
        return self._running.stop(reply_id)

    def interrupt(self, reply_id: str) -> bool:
        return self._running.interrupt(reply_id)

    async def records_written(self) -> None:
        """Until the records of every reply being written here are written: the store may
        close then (a reply's end is recorded while its buttons go on)."""
        await self._running.all_written()

    def in_flight(self) -> list[str]:
        return self._running.ids()

    async def stop_elsewhere(self, reply_id: str) -> bool:
        return await self.controls.stop_elsewhere(reply_id)

    async def may_control(self, reply_id: str, user: User) -> bool:
        return await self.controls.may_control(reply_id, user)

    async def regenerate(
        self, reply_id: str, user: User, sink: ReplySink, ended: Ended | None = None
    ) -> Outcome:
        return await self.controls.regenerate(reply_id, user, sink, ended)

    async def continue_reply(
        self, reply_id: str, user: User, sink: ReplySink, ended: Ended | None = None
    ) -> Outcome:
        return await self.controls.continue_reply(reply_id, user, sink, ended)

    async def replies_streaming_in(self, place: Place) -> list[str]:
        return await self.controls.replies_streaming_in(place)

    async def reply_place(self, reply_id: str) -> Place | None:
        return await self.controls.reply_place(reply_id)

    async def reply_handles(self, reply_id: str) -> list[str]:
        return await self.controls.reply_handles(reply_id)

    async def stored_reply(self, reply_id: str) -> StoredReply | None:
        return await self.taken_over.stored_reply(reply_id)

    async def preview(self, place: Place, alias: str | None = None) -> payload.Payload:
        return await self._context.preview(place, alias)

    async def channel_model(self, place: Place) -> str:
        return await self._context.channel_alias(place)

    async def set_channel_model(self, place: Place, alias: str, by: User) -> None:
        await self._records.set_channel_alias(place, alias, by.id)

    # ------------------------------------------------------------------ one request

    async def write_reply(
        self,
        prompt: Message,
        history: Sequence[Message],
        sink: ReplySink,
        alias: str,
        *,
        prefill: str,
        reply_id: str | None,
        recording: asyncio.Task[bool] | None = None,
        shown: Shown | None = None,
        resumable: bool = False,
        ended: Ended | None = None,
    ) -> Outcome:
        """Answer `prompt` (the last of `history`) into `sink` with the model of `alias`, carrying
        on from `prefill` (a continuation's earlier text). `recording` is the prompt's own write,
        awaited before the reply is finished; `shown` is what a reply taken over from a host that
        died had shown; `resumable`: another host would finish this one should this host die;
        `ended`, when given, is called once with the outcome as soon as the reply's end is shown
        (or it was refused), while its records are written."""
        trace_id = new_trace_id()
        outcome = Outcome(reply_id=reply_id or new_reply_id(), trace_id=trace_id, status="done", alias=alias)
        request = _Request(outcome, prompt, history, sink, prefill, shown, resumable, ended)
        # Every line logged about this reply, here or deeper, names it and its trace.
        with log_context(trace_id=trace_id, reply_id=outcome.reply_id, platform=prompt.place.platform):
            await self._admitted_run(request, recording)
        if self._metrics is not None:
            self._metrics.replies.labels(prompt.place.platform, outcome.status).inc()
        return outcome

    async def _admitted_run(self, request: _Request, recording: asyncio.Task[bool] | None) -> None:
        outcome, prompt = request.outcome, request.prompt
        # A member's daily limits count their replies' usage: a message sent as the last reply's
        # buttons appear waits the moment its records take.
        await self._running.records_written_by(_member(prompt.author))
        try:
            gate = self.access
            admitting = (
                gate.admit(prompt.author, prompt.place)
                if request.shown is None
                else gate.admit(prompt.author, prompt.place, taken_over=True)
            )
            async with admitting:
                # The reply's row is written while the model is asked and the text streams (under
                # load the writer's turn can take seconds on SQLite; the first words should not
                # wait for it). A button pressed meanwhile waits for it in `may_control`, and
                # the reply is finished only once it is written.
                saving = asyncio.create_task(
                    self._records.start_reply(outcome.reply_id, prompt, outcome.alias, status="streaming")
                )
                with self._running.writing(outcome.reply_id, saving):
                    try:
                        attempt, latency = await self._generate(request, saving)
                    finally:
                        if not saving.done():
                            await asyncio.wait({saving})  # never leave the write behind
        except AccessDenied as denied:
            outcome.status, outcome.error = "denied", denied.user_message
            if denied.user_message:
                log.info("refused: %s", denied.user_message)
                await request.sink.notice(denied.user_message)
            if request.ended is not None:
                await request.ended(outcome)
            return
        # The model's part is done, and the member's reply slot free again.
        await self._end(request, attempt, latency, (recording, saving))

    async def _generate(self, request: _Request, saving: asyncio.Task[None]) -> tuple[Attempt, float]:
        """Stream the reply and show its end: what was asked of the model, and how long it took."""
        outcome, prompt = request.outcome, request.prompt
        extra_system = await self._context.extra_system(prompt.place)
        reply = StreamingReply(request.sink)
        if request.shown is not None:
            reply.resume(request.shown.text, request.shown.handles)
        attempt = Attempt(alias=outcome.alias, delivered=request.prefill, extra_system=extra_system)
        started = self._clock()
        await self._stream(request, attempt, reply, saving)
        await show_end(prompt, outcome, attempt, reply)
        return attempt, self._clock() - started

    async def _end(
        self,
        request: _Request,
        attempt: Attempt,
        latency: float,
        early_writes: tuple[asyncio.Task[bool] | None, asyncio.Task[None]],
    ) -> None:
        """Record the reply while the adapter puts on its final buttons (`request.ended`): under
        a burst the store's writer takes its turns, and the final text (which the buttons carry
        when the budget is tight) should not wait for them. A press of those buttons, and the
        member's next message, wait for the records (`InFlight`)."""
        outcome = request.outcome
        records = asyncio.create_task(
            record_when_written(
                early_writes, self._records, self.access, outcome, request.prompt, attempt, latency
            )
        )
        with self._running.writing(outcome.reply_id, records, by=_member(request.prompt.author)):
            try:
                if request.ended is not None:
                    await request.ended(outcome)
            finally:
                await asyncio.wait({records})  # never leave the write behind
        records.result()

    async def _stream(
        self, request: _Request, attempt: Attempt, reply: StreamingReply, saving: asyncio.Task[None]
    ) -> None:
        """The model's words into `reply`, across backends; the outcome's status says how it ended."""
        outcome, prompt = request.outcome, request.prompt
        task = asyncio.create_task(self._failover.stream(attempt, request.history, reply, outcome.trace_id))
        # Only a reply another host would resume saves its progress (a regenerate or a
        # continuation is not resumed: its row keeps its text until it finishes).
        progress = (
            saving_progress(self._records, outcome.reply_id, reply, saving)
            if request.resumable and self._saves_progress
            else contextlib.nullcontext()
        )
        # A Stop (here or on another host) or a shutdown ends the block quietly, its status noted.
        with self._running.generating(outcome, task):
            try:
                with self._remote_stops.watching(outcome.reply_id, self._running.stop):
                    async with progress:
                        await task
                outcome.status = "done"
            except ModelError as error:
                outcome.status, outcome.error = "error", error.user_message
                log.warning(
                    "model error for %s [trace %s]: %s", prompt.place.key, outcome.trace_id, error.detail
                )
            except ReplyFailed as failed:
                outcome.status, outcome.error = "error", wording.PLATFORM_REFUSED
                log_refused(prompt, outcome, failed)


@dataclass(frozen=True)
class _Request:
    """One reply being written: what `write_reply` was asked, and the outcome it fills in."""

    outcome: Outcome
    prompt: Message
    history: Sequence[Message]
    sink: ReplySink
    prefill: str
    shown: Shown | None
    resumable: bool
    ended: Ended | None


def _member(user: User) -> str:
    """Whose replies these are, for `InFlight.records_written_by`."""
    return f"{user.platform}:{user.id}"
