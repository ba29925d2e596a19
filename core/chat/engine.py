"""The one entry point for chat: access → context → route → stream → record.

Adapters hand the engine a message, optionally the context they read from their platform, and a
reply sink. Everything else — who may talk, which model answers, failover and resume, what it
cost, what the user is told when things go wrong — happens here, once, for every platform. The
engine orchestrates; the parts live beside it: `context` (what the model is shown), `failover`
(the walk over backends), `streaming` (the reply in flight) and the chat repository (records).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from core.chat import payload, wording
from core.chat.context import ContextReader, ContextSource
from core.chat.controls import may_press
from core.chat.endings import log_refused, show_end
from core.chat.failover import Attempt, Failover
from core.chat.gate import AccessGate, OpenGate
from core.chat.labelled import LabelledSink
from core.chat.outcome import Outcome, new_reply_id
from core.chat.progress import saving_progress
from core.chat.routing import Router
from core.chat.stop_flags import RemoteStops, visible_soon
from core.chat.streaming import ReplyFailed, Shown, StreamingReply
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
# No reply streams longer than this; an older "streaming" row was left by a host that died.
LONGEST_REPLY = timedelta(minutes=30)


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
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._stopped: set[str] = set()
        self._interrupted: set[str] = set()
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._remote_stops = RemoteStops(store)
        # Where hosts share the database, a reply's progress is saved as it streams, so another
        # host can finish it should this one die (`core.chat.progress`).
        self._saves_progress = store.dialect != "sqlite"

    def add_context_source(self, source: ContextSource) -> None:
        """Register extra system-prompt context, consulted for every request in a place."""
        self._context.add_source(source)

    def set_history_reader(self, platform: str, reader: HistoryReader) -> None:
        """Read context for `platform` from the platform itself instead of ember's store."""
        self._context.set_reader(platform, reader)

    # ------------------------------------------------------------------ public entry points

    async def respond(
        self,
        message: Message,
        sink: ReplySink,
        *,
        history: Sequence[Message] | None = None,
        alias: str | None = None,
        reply_id: str | None = None,
        recorded: bool = False,
    ) -> Outcome:
        """Answer `message`. `history` is platform-read context (oldest first, without
        `message`); when None, context comes from ember's own store of this place.
        `reply_id` (from `new_reply_id`) lets the adapter label buttons before the reply starts."""
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
            outcome = await self._run(
                message,
                context,
                sink,
                chosen,
                prefill="",
                reply_id=reply_id,
                recording=recording,
                resumable=recorded,
            )
        finally:
            if recording is not None and not recording.done():
                await asyncio.wait({recording})  # never leave the write behind
        if recording is not None:
            recording.result()  # a failed write is an error even when the reply was shown
        return outcome

    async def regenerate(self, reply_id: str, user: User, sink: ReplySink) -> Outcome:
        """A new answer to the prompt of an earlier reply (the sink decides where it shows)."""
        reply, prompt = await self._reply_and_prompt(reply_id)
        context = await self._context.upto(prompt)
        return await self._run(context[-1], context, sink, reply.alias, prefill="", reply_id=reply_id)

    async def continue_reply(self, reply_id: str, user: User, sink: ReplySink) -> Outcome:
        """Carry on a reply that stopped at max_tokens, from exactly where it stopped, with the
        model that wrote it: one reply is never written by two models. When that was the
        fallback, the continuation says so, as the answer did."""
        reply, prompt = await self._reply_and_prompt(reply_id)
        context = await self._context.upto(prompt)
        if reply.written_by != reply.alias:
            sink = LabelledSink(sink, wording.continued_by(self._display_name(reply.written_by)))
        return await self._run(
            context[-1], context, sink, reply.written_by, prefill=reply.text, reply_id=reply_id
        )

    async def take_over(self, reply_id: str, prompt: Message, sink: ReplySink, shown: Shown) -> Outcome:
        """Finish a reply that another host began and stopped writing (it died): carried on
        from the text it had shown, in its messages (`shown`; none when it had shown nothing),
        with the model its row names. The member's reply slot is the dead host's lease still,
        so this reply does not take another one."""
        stored = await self._records.reply(reply_id, in_writers_turn=True)
        context = await self._context.upto(prompt)
        alias = stored.written_by if stored else await self._context.channel_alias(prompt.place)
        return await self._run(
            context[-1],
            context,
            sink,
            alias,
            prefill=shown.text,
            reply_id=reply_id,
            shown=shown,
            resumable=True,
        )

    async def end_taken_over(
        self, reply_id: str, prompt: Message, sink: ReplySink, shown: Shown, *, status: str
    ) -> Outcome:
        """End a reply taken over from a host that stopped, without asking the model: "stopped"
        (a Stop was pressed for it meanwhile) or "interrupted" (it cannot be resumed). What it
        showed stays, with the ending every reply of that status gets."""
        stored = await self._records.reply(reply_id, in_writers_turn=True)
        alias = stored.written_by if stored else await self._context.channel_alias(prompt.place)
        outcome = Outcome(reply_id=reply_id, trace_id=new_trace_id(), status=status, alias=alias)
        reply = StreamingReply(sink)
        reply.resume(shown.text, shown.handles)
        attempt = Attempt(alias=alias, delivered=shown.text)  # no request made: no usage
        await show_end(prompt, outcome, attempt, reply)
        await self._finish_records(outcome, prompt, attempt, latency=0.0)
        return outcome

    async def stop_was_pressed(self, reply_id: str) -> bool:
        """Whether a Stop for `reply_id` waits unhonoured (its host died); it is used up."""
        return await self._remote_stops.take_request(reply_id)

    def _display_name(self, alias: str) -> str:
        model = self.settings.models.get(alias)
        return (model.display_name if model else "") or alias

    def stop(self, reply_id: str) -> bool:
        """End generation of a reply in flight; the text so far stays. False if not running here."""
        task = self._inflight.get(reply_id)
        if task is None or task.done():
            return False
        self._stopped.add(reply_id)
        task.cancel()
        return True

    async def stop_elsewhere(self, reply_id: str) -> bool:
        """Ask the host streaming `reply_id` (another one: see `stop`) to stop it. False when
        its stored row says it already ended."""
        reply = await self._records.reply(reply_id)
        return await self._remote_stops.request(reply_id, reply.status if reply else None)

    def in_flight(self) -> list[str]:
        """The ids of the replies being generated here now."""
        return [reply_id for reply_id, task in self._inflight.items() if not task.done()]

    def interrupt(self, reply_id: str) -> bool:
        """Stop a reply because ember is shutting down: it ends with a note asking to ask again,
        and (status "interrupted") with no buttons that a restarted ember could not honour."""
        if reply_id not in self.in_flight():
            return False
        self._interrupted.add(reply_id)
        return self.stop(reply_id)

    async def may_control(self, reply_id: str, user: User) -> bool:
        """Whether `user` may press a reply's buttons (the rule is `controls.may_press`)."""
        if user.is_moderator:
            return True  # moderators may press any reply's: no need to look it up
        pending = self._saving.get(reply_id)
        if pending is not None:
            await asyncio.wait({pending})  # pressed before its row was written
        # Pressed on another host than the one writing the row: it is visible here shortly.
        reply = await visible_soon(lambda: self._records.reply(reply_id))
        return may_press(user, reply.requester_id if reply else None)

    async def replies_streaming_in(self, place: Place) -> list[str]:
        """Replies being written in `place` on any host, by their stored rows."""
        return await self._records.streaming_in(place, started_within=LONGEST_REPLY)

    async def stored_reply(self, reply_id: str) -> StoredReply | None:
        """A reply's row as the store has it (after any write in progress)."""
        return await self._records.reply(reply_id, in_writers_turn=True)

    async def reply_place(self, reply_id: str) -> Place | None:
        """The conversation a stored reply answers in (a regenerate or continue writes there)."""
        reply = await self._records.reply(reply_id)
        return reply.place if reply else None

    async def reply_handles(self, reply_id: str) -> list[str]:
        """The platform messages a reply was shown in (for a regenerate that rewrites them)."""
        reply = await self._records.reply(reply_id)
        return list(reply.handles) if reply else []

    async def preview(self, place: Place, alias: str | None = None) -> payload.Payload:
        """Exactly what the model would receive for the next message here (for `/opus prompt`)."""
        model = self.settings.models[alias or await self.channel_model(place)]
        history = await self._context.latest(place)
        if not history:
            return payload.Payload([], [], 0, 0, 0)
        system = model.system_prompt + await self._context.extra_system(place)
        return payload.build(history, system_prompt=system, budget=model.context_tokens)

    async def channel_model(self, place: Place) -> str:
        return await self._context.channel_alias(place)

    async def set_channel_model(self, place: Place, alias: str, by: User) -> None:
        await self._records.set_channel_alias(place, alias, by.id)

    # ------------------------------------------------------------------ one request

    async def _run(
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
    ) -> Outcome:
        trace_id = new_trace_id()
        outcome = Outcome(reply_id=reply_id or new_reply_id(), trace_id=trace_id, status="done", alias=alias)
        # Every line logged about this reply, here or deeper, names it and its trace.
        with log_context(trace_id=trace_id, reply_id=outcome.reply_id, platform=prompt.place.platform):
            await self._admitted_run(outcome, prompt, history, sink, prefill, recording, shown, resumable)
        if self._metrics is not None:
            self._metrics.replies.labels(prompt.place.platform, outcome.status).inc()
        return outcome

    async def _admitted_run(
        self,
        outcome: Outcome,
        prompt: Message,
        history: Sequence[Message],
        sink: ReplySink,
        prefill: str,
        recording: asyncio.Task[bool] | None,
        shown: Shown | None,
        resumable: bool,
    ) -> None:
        try:
            gate = self.access
            admitting = (
                gate.admit(prompt.author, prompt.place)
                if shown is None
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
                self._saving[outcome.reply_id] = saving
                try:
                    extra = await self._context.extra_system(prompt.place)
                    writes: list[asyncio.Task[object]] = (
                        [saving] if recording is None else [recording, saving]
                    )
                    await self._generate(
                        outcome, prompt, history, sink, prefill, extra, writes, shown, resumable
                    )
                finally:
                    if not saving.done():
                        await asyncio.wait({saving})  # never leave the write behind
                    self._saving.pop(outcome.reply_id, None)
        except AccessDenied as denied:
            outcome.status, outcome.error = "denied", denied.user_message
            if denied.user_message:
                log.info("refused: %s", denied.user_message)
                await sink.notice(denied.user_message)

    async def _generate(
        self,
        outcome: Outcome,
        prompt: Message,
        history: Sequence[Message],
        sink: ReplySink,
        prefill: str,
        extra_system: str,
        writes: Sequence[asyncio.Task[object]],
        shown: Shown | None,
        resumable: bool,
    ) -> None:
        reply = StreamingReply(sink)
        if shown is not None:
            reply.resume(shown.text, shown.handles)
        attempt = Attempt(alias=outcome.alias, delivered=prefill, extra_system=extra_system)
        started = self._clock()
        task = asyncio.create_task(self._failover.stream(attempt, history, reply, outcome.trace_id))
        self._inflight[outcome.reply_id] = task
        # Only a reply another host would resume saves its progress (a regenerate or a
        # continuation is not resumed: its row keeps its text until it finishes).
        progress = (
            saving_progress(self._records, outcome.reply_id, reply, self._saving[outcome.reply_id])
            if resumable and self._saves_progress
            else contextlib.nullcontext()
        )
        try:
            with self._remote_stops.watching(outcome.reply_id, self.stop):
                async with progress:
                    await task
            outcome.status = "done"
        except asyncio.CancelledError:
            if outcome.reply_id not in self._stopped:
                raise
            outcome.status = "interrupted" if outcome.reply_id in self._interrupted else "stopped"
        except ModelError as error:
            outcome.status, outcome.error = "error", error.user_message
            log.warning("model error for %s [trace %s]: %s", prompt.place.key, outcome.trace_id, error.detail)
        except ReplyFailed as failed:
            outcome.status, outcome.error = "error", wording.PLATFORM_REFUSED
            log_refused(prompt, outcome, failed)
        finally:
            self._inflight.pop(outcome.reply_id, None)
            self._stopped.discard(outcome.reply_id)
            self._interrupted.discard(outcome.reply_id)
        await show_end(prompt, outcome, attempt, reply)
        # The reply's row must exist before it is finished. A failed early write still lets the
        # reply finish and its usage be metered; its error is raised afterwards.
        failed_writes = [
            e for e in await asyncio.gather(*writes, return_exceptions=True) if isinstance(e, BaseException)
        ]
        await self._finish_records(outcome, prompt, attempt, latency=self._clock() - started)
        if failed_writes:
            raise failed_writes[0]

    async def _finish_records(
        self, outcome: Outcome, prompt: Message, attempt: Attempt, latency: float
    ) -> None:
        """The reply's final state, its usage and (when something was shown) ember's own turn."""
        place = prompt.place
        own_turn = None
        if outcome.handles and outcome.text:
            bot = User(id="ember", name="ember", platform=place.platform, workspace_id=place.workspace_id)
            own_turn = Message(
                id=outcome.handles[0], place=place, author=bot, text=outcome.text, from_self=True
            )
        # A direct message's spend is charged where the member's access comes from.
        charged_to = await self.access.charged_workspace(prompt.author, place)
        await self._records.finish_reply(
            outcome.reply_id,
            place,
            charged_to=charged_to,
            text=attempt.delivered,  # a continuation's prefill is the earlier text
            handles=outcome.handles,
            status=outcome.status,
            stop_reason=outcome.stop_reason,
            usage=attempt.usage(prompt.author.id, outcome.trace_id, outcome.status, latency),
            own_turn=own_turn,
        )

    async def _reply_and_prompt(self, reply_id: str) -> tuple[StoredReply, Message]:
        reply = await self._records.reply(reply_id, in_writers_turn=True)
        if reply is None:
            raise LookupError(f"no reply {reply_id}")
        return reply, await self._context.prompt_of(reply)
