"""The one entry point for chat: access → route → stream → record usage.

Adapters hand the engine a message, optionally the context they read from their platform, and a
reply sink. Everything else — who may talk, which model answers, failover and resume, what it
cost, what the user is told when things go wrong — happens here, once, for every platform.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Select, insert, select, update
from sqlmodel import col

from core import conversation, transcript
from core.config import Settings
from core.errors import (
    AccessDenied,
    ModelError,
    ModelNotEnabled,
    ModelRequestError,
    ModelUnavailable,
    new_trace_id,
)
from core.events import Message, Place, User
from core.providers import BackendError, Failure, Finished, TextDelta
from core.routing import Route, Router
from core.store import ChannelSetting, Reply, Store, Usage, db_now
from core.streaming import ReplyFailed, ReplySink, StreamingReply
from core.usage import Tokens, cost_micros

log = logging.getLogger(__name__)


class AccessGate(Protocol):
    """Decides who may talk to the model. Entering raises AccessDenied with a kind message;
    leaving releases whatever the gate held (e.g. a concurrent-reply slot)."""

    def admit(self, user: User, place: Place) -> AbstractAsyncContextManager[None]: ...


class OpenGate:
    """Everyone may talk: the default until access by request is configured."""

    @asynccontextmanager
    async def admit(self, user: User, place: Place) -> AsyncIterator[None]:
        yield


# Extra system-prompt text for a place (e.g. the essay a discussion thread is about).
ContextSource = Callable[[Place], Awaitable[str]]


class HistoryReader(Protocol):
    """Reads a conversation fresh from its platform, so edits and deletions show. Used where a
    request arrives without platform context: regenerate, continue and the prompt preview."""

    async def __call__(self, place: Place, upto: str, limit: int) -> Sequence[Message]:
        """Oldest first, ending with message `upto` as it reads now (at most `limit` messages);
        `upto=""` means the conversation as it stands. Empty when `upto` is gone."""
        ...


def new_reply_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Outcome:
    """What happened to one request, for the adapter (buttons) and for tests."""

    reply_id: str
    trace_id: str
    status: str  # done | stopped | error | denied
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


@dataclass
class _Attempt:
    """The state of one reply across backend attempts (failover and resume)."""

    alias: str
    delivered: str = ""
    extra_system: str = ""
    tokens: Tokens = field(default_factory=Tokens)
    cost: int = 0
    route: Route | None = None
    model: str = ""
    stop_reason: str = ""
    failures: list[BackendError] = field(default_factory=list)


class ChatEngine:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        router: Router,
        *,
        access: AccessGate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.store = store
        self.router = router
        self.access: AccessGate = access or OpenGate()
        self._clock = clock
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._stopped: set[str] = set()
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._context_sources: list[ContextSource] = []
        self._readers: dict[str, HistoryReader] = {}

    def add_context_source(self, source: ContextSource) -> None:
        """Register extra system-prompt context, consulted for every request in a place."""
        self._context_sources.append(source)

    def set_history_reader(self, platform: str, reader: HistoryReader) -> None:
        """Read context for `platform` from the platform itself instead of ember's store."""
        self._readers[platform] = reader

    async def _extra_context(self, place: Place) -> str:
        parts = [await source(place) for source in self._context_sources]
        return "".join(f"\n\n{part}" for part in parts if part)

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
        recording = None if recorded else asyncio.create_task(transcript.record_message(self.store, message))
        try:
            context, chosen = await self._context(message, history, alias)
            outcome = await self._run(
                message, context, sink, chosen, prefill="", reply_id=reply_id, recording=recording
            )
        finally:
            if recording is not None and not recording.done():
                await asyncio.wait({recording})  # never leave the write behind
        if recording is not None:
            recording.result()  # a failed write is an error even when the reply was shown
        return outcome

    async def _context(
        self, message: Message, history: Sequence[Message] | None, alias: str | None
    ) -> tuple[list[Message], str]:
        """The conversation ending in `message`, and the alias to answer with: the channel's
        model and (without platform history) ember's stored turns, in one read."""
        place = message.place
        reads = [self._channel_query(place)]
        if history is None:
            reads.append(transcript.history_query(place, limit=self.settings.chat.history_messages))
        channel, *turns = await self.store.reads.all_of(*reads)
        if history is None:
            history = [m for m in transcript.messages_from(turns[0], place) if m.id != message.id]
        return [*history, message], alias or self._alias_set(channel)

    async def regenerate(self, reply_id: str, user: User, sink: ReplySink) -> Outcome:
        """A new answer to the prompt of an earlier reply (the sink decides where it shows)."""
        reply, prompt = await self._reply_and_prompt(reply_id)
        context = await self._context_upto(prompt)
        return await self._run(context[-1], context, sink, reply.alias, prefill="", reply_id=reply_id)

    async def continue_reply(self, reply_id: str, user: User, sink: ReplySink) -> Outcome:
        """Carry on a reply that stopped at max_tokens, from exactly where it stopped."""
        reply, prompt = await self._reply_and_prompt(reply_id)
        context = await self._context_upto(prompt)
        return await self._run(context[-1], context, sink, reply.alias, prefill=reply.text, reply_id=reply_id)

    def stop(self, reply_id: str) -> bool:
        """End generation of a reply in flight; the text so far stays. False if not running here."""
        task = self._inflight.get(reply_id)
        if task is None or task.done():
            return False
        self._stopped.add(reply_id)
        task.cancel()
        return True

    async def may_control(self, reply_id: str, user: User) -> bool:
        """Only the person who asked, or a moderator, may press a reply's buttons."""
        if user.is_moderator:
            return True
        pending = self._saving.get(reply_id)
        if pending is not None:
            await asyncio.wait({pending})  # pressed before its row was written
        async with self.store.reading() as session:
            reply = await session.get(Reply, reply_id)
        return reply is not None and reply.requester_id == user.id

    async def reply_handles(self, reply_id: str) -> list[str]:
        """The platform messages a reply was shown in (for a regenerate that rewrites them)."""
        async with self.store.reading() as session:
            reply = await session.get(Reply, reply_id)
        handles: list[str] = json.loads(reply.message_ids) if reply else []
        return handles

    async def preview(self, place: Place, alias: str | None = None) -> conversation.Payload:
        """Exactly what the model would receive for the next message here (for `/opus prompt`)."""
        chosen = alias or await self.channel_model(place)
        model = self.settings.models[chosen]
        limit = self.settings.chat.history_messages
        reader = self._readers.get(place.platform)
        if reader is not None:
            history = list(await reader(place, "", limit))
        else:
            history = await transcript.load_history(self.store, place, limit=limit)
        if not history:
            return conversation.Payload([], [], 0, 0, 0)
        system = model.system_prompt + await self._extra_context(place)
        return conversation.build(history, system_prompt=system, budget=model.context_tokens)

    async def channel_model(self, place: Place) -> str:
        (rows,) = await self.store.reads.all_of(self._channel_query(place))
        return self._alias_set(rows)

    @staticmethod
    def _channel_query(place: Place) -> Select[Any]:
        alias = col(ChannelSetting.model_alias)
        return select(alias).where(col(ChannelSetting.channel_key) == place.channel_key)

    def _alias_set(self, rows: Sequence[Any]) -> str:
        """The channel's alias from `_channel_query`'s rows, if still configured; else the default."""
        if rows and rows[0].model_alias in self.settings.models:
            return str(rows[0].model_alias)
        return self.settings.chat.default_model

    async def set_channel_model(self, place: Place, alias: str, by: User) -> None:
        async with self.store.session() as session:
            setting = await session.get(ChannelSetting, place.channel_key)
            if setting is None:
                session.add(
                    ChannelSetting(channel_key=place.channel_key, model_alias=alias, updated_by=by.id)
                )
            else:
                setting.model_alias, setting.updated_by, setting.updated_at = alias, by.id, db_now()
                session.add(setting)

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
    ) -> Outcome:
        trace_id = new_trace_id()
        outcome = Outcome(reply_id=reply_id or new_reply_id(), trace_id=trace_id, status="done", alias=alias)
        try:
            async with self.access.admit(prompt.author, prompt.place):
                # The reply's row is written while the model is asked and the text streams (under
                # load the writer's turn can take seconds on SQLite; the first words should not
                # wait for it). A button pressed meanwhile waits for it in `may_control`, and
                # the reply is finished only once it is written.
                saving = asyncio.create_task(self._save_reply(outcome, prompt, status="streaming"))
                self._saving[outcome.reply_id] = saving
                try:
                    extra = await self._extra_context(prompt.place)
                    writes = [saving] if recording is None else [recording, saving]
                    await self._generate(outcome, prompt, history, sink, prefill, extra, writes)
                finally:
                    if not saving.done():
                        await asyncio.wait({saving})  # never leave the write behind
                    self._saving.pop(outcome.reply_id, None)
        except AccessDenied as denied:
            outcome.status, outcome.error = "denied", denied.user_message
            await sink.notice(denied.user_message)
        return outcome

    async def _generate(
        self,
        outcome: Outcome,
        prompt: Message,
        history: Sequence[Message],
        sink: ReplySink,
        prefill: str,
        extra_system: str,
        writes: list[asyncio.Task[Any]],
    ) -> None:
        reply = StreamingReply(sink)
        state = _Attempt(alias=outcome.alias, delivered=prefill, extra_system=extra_system)
        started = self._clock()
        task = asyncio.create_task(self._stream_routes(state, history, reply, outcome.trace_id))
        self._inflight[outcome.reply_id] = task
        try:
            await task
            outcome.status = "done"
        except asyncio.CancelledError:
            if outcome.reply_id not in self._stopped:
                raise
            outcome.status = "stopped"
        except ModelError as error:
            outcome.status, outcome.error = "error", error.user_message
            log.warning("model error for %s [trace %s]: %s", prompt.place.key, outcome.trace_id, error.detail)
        except ReplyFailed as failed:
            outcome.status, outcome.error = "error", "the platform refused the reply"
            _log_refused(prompt, outcome, failed)
        finally:
            self._inflight.pop(outcome.reply_id, None)
            self._stopped.discard(outcome.reply_id)
        suffix = self._suffix(outcome, reply)
        try:
            outcome.handles = await reply.finish(suffix)
        except ReplyFailed as failed:
            _log_refused(prompt, outcome, failed)
            outcome.status = "error"
            outcome.handles = list(reply.handles)
        self._fill(outcome, state, prefill, reply.text.removesuffix(suffix))
        # The reply's row must exist before it is finished. A failed early write still lets the
        # reply finish and its usage be metered; its error is raised afterwards.
        failed_writes = [
            e for e in await asyncio.gather(*writes, return_exceptions=True) if isinstance(e, BaseException)
        ]
        await self._finish_records(outcome, prompt, state, latency=self._clock() - started)
        if failed_writes:
            raise failed_writes[0]

    @staticmethod
    def _suffix(outcome: Outcome, reply: StreamingReply) -> str:
        if outcome.status == "stopped":
            return "" if reply.started else "*(stopped before the model said anything)*"
        if outcome.status == "error":
            return f"\n\n*({outcome.error})*" if reply.started else outcome.error
        return ""

    @staticmethod
    def _fill(outcome: Outcome, state: _Attempt, prefill: str, shown: str) -> None:
        outcome.text = shown
        outcome.stop_reason = state.stop_reason
        outcome.tokens, outcome.cost_micros = state.tokens, state.cost
        outcome.model = state.model
        outcome.provider = state.route.backend.provider if state.route else ""
        outcome.alias = state.route.alias if state.route else outcome.alias

    async def _stream_routes(
        self, state: _Attempt, history: Sequence[Message], reply: StreamingReply, trace_id: str
    ) -> None:
        """Walk the alias's backends; resume mid-reply with the text already shown as prefill."""
        queue = self.router.routes(state.alias)
        resumes = self.settings.routing.resume_attempts
        fell_back = False
        while queue:
            route = queue.pop(0)
            before = len(state.delivered)
            try:
                await self._stream_one(route, state, history, reply)
                self.router.record(route, ok=True)
                return
            except BackendError as error:
                self.router.record(route, ok=False)
                state.failures.append(error)
                self._log_failure(route, error, trace_id)
                if len(state.delivered) > before and resumes > 0:
                    resumes -= 1
                    queue.append(route)  # the stream died mid-reply: give it another turn
            if not queue and not state.delivered and not fell_back:
                fell_back = True  # a different model only when nothing was said yet
                queue = self._fallback_routes(state, reply, trace_id)
        raise self._final_error(state, trace_id)

    def _fallback_routes(self, state: _Attempt, reply: StreamingReply, trace_id: str) -> list[Route]:
        routes = self.router.fallback(state.alias)
        if routes:
            asked = self.settings.models[state.alias].display_name or state.alias
            other = routes[0].settings.display_name or routes[0].alias
            log.warning("falling back from %s to %s [trace %s]", state.alias, routes[0].alias, trace_id)
            # Never silently: the reply itself says which model answered.
            reply.append(f"*({asked} is unavailable right now; this answer is from {other}.)*\n\n")
        return routes

    async def _stream_one(
        self, route: Route, state: _Attempt, history: Sequence[Message], reply: StreamingReply
    ) -> None:
        model = route.settings
        payload = conversation.build(
            history,
            system_prompt=model.system_prompt + state.extra_system,
            budget=model.context_tokens,
            prefill=state.delivered,
        )
        request: dict[str, Any] = {
            "max_tokens": model.max_tokens,
            "messages": payload.messages,
            "temperature": model.temperature,
        }
        if payload.system:
            request["system"] = payload.system
        state.route = route
        first = True
        async for delta in route.client.stream(route.backend.model, request):
            if isinstance(delta, TextDelta):
                text = delta.text
                if first and state.delivered:
                    # The prefill was sent without trailing space; don't let it double up.
                    text = text.lstrip() if state.delivered[-1:].isspace() else text
                    first = False
                state.delivered += text
                reply.append(text)
            elif isinstance(delta, Finished):
                state.tokens = state.tokens + delta.tokens
                state.cost += cost_micros(delta.tokens, model.price)
                state.model, state.stop_reason = delta.model, delta.stop_reason

    @staticmethod
    def _log_failure(route: Route, error: BackendError, trace_id: str) -> None:
        if error.failure is Failure.NOT_FOUND:
            log.error(
                "backend %s answered 404 for model %s: the retired model is not enabled for these "
                "credentials; request access or remove this backend [trace %s]: %s",
                route.backend.provider,
                route.backend.model,
                trace_id,
                error.detail,
            )
        elif error.failure is Failure.REFUSED:
            log.error("backend %s refused the request [trace %s]: %s", route.name, trace_id, error.detail)
        else:
            log.warning(
                "backend %s failed, trying the next [trace %s]: %s", route.name, trace_id, error.detail
            )

    @staticmethod
    def _final_error(state: _Attempt, trace_id: str) -> ModelError:
        kinds = {f.failure for f in state.failures}
        detail = "; ".join(f.detail for f in state.failures) or "no backend is configured"
        if kinds == {Failure.NOT_FOUND}:
            return ModelNotEnabled(detail, trace_id)
        if kinds and Failure.RETRYABLE not in kinds:
            return ModelRequestError(detail, trace_id)
        return ModelUnavailable(detail, trace_id)

    # ------------------------------------------------------------------ records

    async def _save_reply(self, outcome: Outcome, prompt: Message, *, status: str) -> None:
        """Create the reply's row, or (regenerate, continue) mark the existing one: one statement."""
        row = {
            "id": outcome.reply_id,
            "place_key": prompt.place.key,
            "prompt_message_id": prompt.id,
            "requester_id": prompt.author.id,
            "alias": outcome.alias,
            "message_ids": "[]",
            "text": "",
            "status": status,
            "stop_reason": "",
            "created_at": db_now(),
        }
        upsert = (
            self.store.insert(Reply)
            .values(row)
            .on_conflict_do_update(index_elements=["id"], set_={"status": status})
        )
        await self.store.write(lambda conn: conn.execute(upsert))

    async def _finish_records(
        self, outcome: Outcome, prompt: Message, state: _Attempt, latency: float
    ) -> None:
        place = prompt.place
        statements: list[Any] = [
            update(Reply)
            .where(col(Reply.id) == outcome.reply_id)
            .values(
                text=state.delivered,  # a continuation's prefill is the earlier text
                message_ids=json.dumps(outcome.handles),
                status=outcome.status,
                stop_reason=outcome.stop_reason,
            )
        ]
        if state.route is not None:
            record = Usage(
                platform=place.platform,
                workspace_id=place.workspace_id,
                user_id=prompt.author.id,
                place_key=place.key,
                alias=state.route.alias,
                provider=state.route.backend.provider,
                model=state.model or state.route.backend.model,
                input_tokens=state.tokens.input,
                output_tokens=state.tokens.output,
                cache_write_tokens=state.tokens.cache_write,
                cache_read_tokens=state.tokens.cache_read,
                latency_ms=int(latency * 1000),
                cost_micros=state.cost,
                trace_id=outcome.trace_id,
                outcome=outcome.status,
            )
            statements.append(insert(Usage).values(record.model_dump(exclude={"id"})))

        if outcome.handles and outcome.text:
            # ember's own turn, in the same transaction as the reply and its usage.
            bot = User(id="ember", name="ember", platform=place.platform, workspace_id=place.workspace_id)
            said = Message(id=outcome.handles[0], place=place, author=bot, text=outcome.text, from_self=True)
            await transcript.record_message(self.store, said, along_with=statements)
        else:
            await self.store.write(lambda conn: [conn.execute(statement) for statement in statements])

    async def _reply_and_prompt(self, reply_id: str) -> tuple[Reply, Message]:
        async with self.store.session() as session:
            reply = await session.get(Reply, reply_id)
        if reply is None:
            raise LookupError(f"no reply {reply_id}")
        place = _place_from_key(reply.place_key)
        history = await transcript.load_history(self.store, place, limit=1, before_id=reply.prompt_message_id)
        if not history or history[-1].id != reply.prompt_message_id:
            raise LookupError(f"the prompt of reply {reply_id} is no longer stored")
        return reply, history[-1]

    async def _context_upto(self, prompt: Message) -> list[Message]:
        """The history before `prompt` and the prompt itself, from the platform when it can say."""
        reader = self._readers.get(prompt.place.platform)
        if reader is not None:
            context = list(await reader(prompt.place, prompt.id, self.settings.chat.history_messages + 1))
            if context and context[-1].id == prompt.id:
                return context
        return [*await self._history_before(prompt), prompt]

    async def _history_before(self, prompt: Message) -> list[Message]:
        history = await transcript.load_history(
            self.store, prompt.place, limit=self.settings.chat.history_messages + 1, before_id=prompt.id
        )
        return [m for m in history if m.id != prompt.id]


def _log_refused(prompt: Message, outcome: Outcome, failed: ReplyFailed) -> None:
    log.error("could not show the reply in %s [trace %s]: %s", prompt.place.key, outcome.trace_id, failed)


def _place_from_key(key: str) -> Place:
    platform, workspace, channel, thread = key.split(":")
    return Place(
        platform=platform,  # type: ignore[arg-type]
        workspace_id="" if workspace == "-" else workspace,
        channel_id=channel,
        thread_id="" if thread == "-" else thread,
    )
